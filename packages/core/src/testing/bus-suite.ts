import { describe, expect, it } from 'vitest'
import { BusState, type BusDriver, type BusMessage } from '../contracts.js'

export interface BusSuiteOptions {
  /** Two or more drivers connected to the same server / hub. */
  create(count: number): Promise<BusDriver[]> | BusDriver[]
  /** Unique channel for this run. */
  channel: string
}

function inbox() {
  const messages: BusMessage[] = []
  const states: BusState[] = []
  let wake: (() => void) | undefined
  return {
    messages,
    states,
    onMessage(m: BusMessage) {
      messages.push(m)
      wake?.()
    },
    onState(s: BusState) {
      states.push(s)
    },
    async waitFor(n: number, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} messages, got ${messages.length}`)
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, 20)
        })
      }
    },
  }
}

const msg = (seq: number, extra: Partial<BusMessage> = {}): BusMessage => ({
  op: 'delete',
  source: 'a',
  seq,
  ts: 1_700_000_000_000 + seq,
  keys: [`k${seq}`],
  ...extra,
})

export function busDriverSuite(name: string, options: BusSuiteOptions): void {
  describe(`bus driver conformance: ${name}`, () => {
    it('delivers every field of a message to another subscriber, in publish order', async () => {
      const [a, b] = (await options.create(2)) as [BusDriver, BusDriver]
      const ia = inbox()
      const ib = inbox()
      await a.start({ channel: options.channel, source: 'a', ...ia })
      await b.start({ channel: options.channel, source: 'b', ...ib })
      expect(a.state).toBe(BusState.connected)
      expect(b.state).toBe(BusState.connected)
      const sent = [
        msg(1),
        msg(2, { op: 'set', keys: ['x', 'y'] }),
        msg(3, { op: 'tags', keys: undefined, tags: ['users', 'ünï'] }),
        msg(4, { op: 'clear-namespace', keys: undefined, prefixes: ['p:ns:', 'p:ns/'] }),
        msg(5, {
          op: 'clear',
          keys: undefined,
          prefixes: ['p:'],
          trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        }),
      ]
      for (const m of sent) await a.publish(m)
      await ib.waitFor(sent.length)
      expect(ib.messages.map((m) => ({ ...m }))).toEqual(
        sent.map((m) => JSON.parse(JSON.stringify(m)) as BusMessage),
      )
      await a.close()
      await b.close()
    })

    it('keeps delivering after a handler throws', async () => {
      const [a, b] = (await options.create(2)) as [BusDriver, BusDriver]
      const ib = inbox()
      let calls = 0
      await a.start({ channel: options.channel, source: 'a', onMessage() {}, onState() {} })
      await b.start({
        channel: options.channel,
        source: 'b',
        onMessage(m) {
          calls++
          if (calls === 1) throw new Error('handler bug')
          ib.onMessage(m)
        },
        onState() {},
      })
      await a.publish(msg(1))
      await a.publish(msg(2))
      await ib.waitFor(1)
      expect(ib.messages[0]?.seq).toBe(2)
      await a.close()
      await b.close()
    })

    it('does not cross channels, and stops delivering after close()', async () => {
      const [a, b, c] = (await options.create(3)) as [BusDriver, BusDriver, BusDriver]
      const ib = inbox()
      const ic = inbox()
      await a.start({ channel: options.channel, source: 'a', onMessage() {}, onState() {} })
      await b.start({ channel: options.channel, source: 'b', ...ib })
      await c.start({ channel: `${options.channel}-other`, source: 'c', ...ic })
      await a.publish(msg(1))
      await ib.waitFor(1)
      await b.close()
      expect(b.state).toBe(BusState.closed)
      await a.publish(msg(2))
      await a.publish(msg(3))
      // A later message on the same channel proves delivery happened and b saw none of it.
      const [d] = (await options.create(1)) as [BusDriver]
      const id = inbox()
      await d.start({ channel: options.channel, source: 'd', ...id })
      await a.publish(msg(4))
      await id.waitFor(1)
      expect(ib.messages.map((m) => m.seq)).toEqual([1])
      expect(ic.messages).toEqual([])
      await Promise.all([a.close(), c.close(), d.close()])
    })
  })
}
