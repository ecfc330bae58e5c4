import { createCache, memoryL2, MemoryBusHub, type Cache } from '@strata/core'
import { createFakeClock, setTestHooks } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { afterEach, describe, expect, it } from 'vitest'
import { deferred, settle, setup, type Setup } from './matrix.js'

describe('invalidation bus between replicas (in-process bus)', () => {
  let s: Setup
  afterEach(async () => {
    await s.close()
  })

  it('a set on one replica makes the other serve the new value on its next read', async () => {
    s = setup('l1+l2+bus')
    const a = s.cache
    const b = s.peer!
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1') // B's L1 now holds v1
    await a.set('k', 'v2')
    await settle()
    expect(await b.get('k')).toBe('v2')
    await a.delete('k')
    await settle()
    expect(await b.get('k')).toBeUndefined()
  })

  it('tags, namespace clears and clears propagate', async () => {
    s = setup('l1+l2+bus')
    const a = s.cache
    const b = s.peer!
    await b.getOrSet('t', () => 'tagged', { tags: ['grp'] })
    await b.namespace('ns').set('x', 'in-ns')
    await b.set('root', 'r')
    await a.invalidateTags(['grp'])
    await a.namespace('ns').clear()
    await settle()
    expect(await b.get('t')).toBeUndefined()
    expect(await b.namespace('ns').get('x')).toBeUndefined()
    expect(await b.get('root')).toBe('r')
    await a.clear()
    await settle()
    expect(await b.get('root')).toBeUndefined()
  })

  it('keys written in one tick go out as one message; fills after a miss are not broadcast', async () => {
    s = setup('l1+l2+bus')
    await Promise.all([
      s.cache.set('a', 1),
      s.cache.set('b', 2),
      s.cache.delete('c'),
      s.cache.delete('d'),
    ])
    await s.cache.getOrSet('filled', () => 'x')
    await settle()
    expect(s.cache.stats().bus.published).toBe(2) // one 'set' batch, one 'delete' batch
    expect(s.peer!.stats().bus.received).toBe(2)
  })

  it('failed publishes are retried in order with backoff, and the peer converges', async () => {
    s = setup('l1+l2+bus')
    const errors: string[] = []
    s.cache.on('error', (e) => errors.push(e.error.code))
    await s.peer!.set('a', 'old-a')
    await s.peer!.set('b', 'old-b')
    await settle()
    expect(await s.peer!.getMany(['a', 'b'])).toEqual(['old-a', 'old-b'])
    // Make the writer's bus fail three times, then recover.
    const hub = s.hub!
    const original = hub.deliver.bind(hub)
    let failures = 3
    const seen: string[][] = []
    hub.deliver = (channel, message) => {
      if (failures > 0 && message.keys?.length) {
        failures--
        throw new Error('publish refused')
      }
      if (message.keys) seen.push([...message.keys])
      original(channel, message)
    }
    await s.cache.set('a', 'new-a')
    await s.cache.set('b', 'new-b')
    expect(errors.filter((c) => c === 'E_BUS_UNAVAILABLE').length).toBeGreaterThan(0)
    for (let i = 0; i < 10 && seen.length < 2; i++) await s.clock.advanceAsync(1_000)
    await settle()
    expect(seen).toEqual([['test::a'], ['test::b']])
    expect(await s.peer!.getMany(['a', 'b'])).toEqual(['new-a', 'new-b'])
  })

  it('a replica ignores its own messages', async () => {
    s = setup('l1+l2+bus')
    await s.cache.set('k', 1)
    await settle()
    expect(s.cache.stats().bus.received).toBe(0)
    expect(await s.cache.get('k')).toBe(1)
  })

  it('a bus gap clears L1, fires bus:degraded then bus:resynced, and resumes', async () => {
    s = setup('l1+l2+bus')
    const events: string[] = []
    s.peer!.on('bus:degraded', () => events.push('degraded'))
    s.peer!.on('bus:resynced', () => events.push('resynced'))
    await s.peer!.set('k', 'v')
    expect(s.peer!.stats().l1.entries).toBe(1)
    s.hub!.simulateGap()
    await settle()
    expect(events).toEqual(['degraded', 'resynced'])
    expect(s.peer!.stats().l1.entries).toBe(0)
    expect(s.peer!.stats().bus).toMatchObject({
      state: 'connected',
      degradedCount: 1,
      resyncedCount: 1,
    })
    expect(await s.peer!.get('k')).toBe('v') // from L2
  })
})

describe('guarded L1 fills (design §6.1)', () => {
  function replicas(seed: number) {
    const clock = createFakeClock()
    const l2 = memoryL2({ clock })
    const hub = new MemoryBusHub()
    const make = () =>
      createCache({ prefix: `race${seed}`, clock, l1: memoryL1({ clock }), l2, bus: hub.bus() })
    return { a: make(), b: make(), l2 }
  }

  it('1 000 seeded iterations: an L1 fill racing a peer write never keeps the old value', async () => {
    let rng = 42
    const random = () => (rng = (rng * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31
    let stale = 0
    for (let i = 0; i < 1_000; i++) {
      const { a, b } = replicas(i)
      await a.set('k', 'old')
      // B misses L1, reads 'old' from L2, and pauses before its L1 write.
      const gate = deferred<void>()
      let paused = false
      setTestHooks(b, {
        beforeL1Fill: async () => {
          paused = true
          await gate.promise
        },
      })
      const read = random() < 0.5 ? b.get('k') : b.getOrSet('k', () => 'loaded')
      await settle()
      expect(paused).toBe(true)
      // A writes a new value; the invalidation reaches B while its fill is paused.
      await (random() < 0.5 ? a.set('k', 'new') : a.delete('k'))
      await settle()
      gate.resolve()
      await read
      setTestHooks(b, undefined)
      const now = await b.get('k')
      if (now === 'old') stale++
      await Promise.all([a.close(), b.close()])
    }
    expect(stale).toBe(0)
  })

  it('a fill racing a tag invalidation or a clear is discarded too', async () => {
    for (const invalidate of [(c: Cache) => c.invalidateTags(['t']), (c: Cache) => c.clear()]) {
      const { a, b } = replicas(9)
      await a.set('k', 'old', { tags: ['t'] })
      const gate = deferred<void>()
      setTestHooks(b, { beforeL1Fill: () => gate.promise })
      const read = b.get('k')
      await settle()
      await invalidate(a)
      await a.set('k2', 'unrelated')
      await settle()
      gate.resolve()
      expect(await read).toBe('old') // the caller gets what it read; L1 does not keep it
      setTestHooks(b, undefined)
      expect(b.stats().discardedFills).toBe(1)
      await Promise.all([a.close(), b.close()])
    }
  })
})

describe('guarded L2 fills (design §6.2, leases)', () => {
  it('1 000 seeded iterations: reader misses, writer deletes, reader fills the old value → not in L2', async () => {
    let resurrected = 0
    for (let i = 0; i < 1_000; i++) {
      const clock = createFakeClock()
      const l2 = memoryL2({ clock })
      const reader = createCache({ prefix: 'lease', clock, l2 })
      const writer = createCache({ prefix: 'lease', clock, l2 })
      const gate = deferred<void>()
      setTestHooks(reader, { beforeL2Fill: () => gate.promise })
      // The reader loads the "old" database row and pauses before filling L2.
      const read = reader.getOrSet('k', () => `old-${i}`)
      await settle()
      await (i % 2 === 0 ? writer.delete('k') : writer.set('k', `new-${i}`))
      gate.resolve()
      await read
      const after = await writer.get('k')
      if (after === `old-${i}`) resurrected++
      await reader.close()
      await writer.close()
    }
    expect(resurrected).toBe(0)
  })
})
