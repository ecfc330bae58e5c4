import { describe, expect, it } from 'vitest'
import type { Entry, L2Driver, L2FillItem, L2ReadResult } from '../contracts.js'

export interface L2SuiteOptions {
  /** A driver on a store no other test uses concurrently (or a unique `prefix`). */
  create(): Promise<L2Driver> | L2Driver
  /** Key prefix for this run, so suites can share a server. */
  prefix: string
  /** Waits `ms` of the store's time (real time for a server, advance for a fake clock). */
  wait(ms: number): Promise<void>
  /** Physical TTL used by the expiry test (short: a real server is waited on). @default 50 */
  ttlMs?: number
}

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : new TextDecoder().decode(b)

export function l2DriverSuite(name: string, options: L2SuiteOptions): void {
  describe(`L2 driver conformance: ${name}`, () => {
    const p = (k: string) => `${options.prefix}:${k}`
    /** Runs `fn` on a new driver's locks (nothing when it has none), then closes it. */
    const withLocks = async (
      fn: (locks: NonNullable<L2Driver['locks']>) => Promise<void>,
    ): Promise<void> => {
      const l2 = await options.create()
      try {
        if (l2.locks) await fn(l2.locks)
      } finally {
        await l2.close()
      }
    }

    it('set/get round-trips bytes; a missing key is undefined', async () => {
      const l2 = await options.create()
      await l2.set(p('a'), bytes('alpha'), 10_000)
      expect(text(await l2.get(p('a')))).toBe('alpha')
      expect(await l2.get(p('nope'))).toBeUndefined()
      await l2.close()
    })

    it('getMany answers in key order with undefined for misses; setMany writes all', async () => {
      const l2 = await options.create()
      await l2.setMany(
        [1, 2, 3].map((i) => ({ key: p(`m${i}`), value: bytes(`v${i}`), ttlMs: 10_000 })),
      )
      const got = await l2.getMany([p('m3'), p('missing'), p('m1'), p('m2')])
      expect(got.map(text)).toEqual(['v3', undefined, 'v1', 'v2'])
      expect(await l2.getMany([])).toEqual([])
      await l2.close()
    })

    it('delete removes keys and counts them', async () => {
      const l2 = await options.create()
      await l2.set(p('d1'), bytes('x'), 10_000)
      await l2.set(p('d2'), bytes('y'), 10_000)
      expect(await l2.delete([p('d1'), p('d2'), p('d3')])).toBe(2)
      expect(await l2.get(p('d1'))).toBeUndefined()
      await l2.close()
    })

    it('clear(prefix) removes exactly the keys under the prefix', async () => {
      const l2 = await options.create()
      await l2.set(p('ns:1'), bytes('1'), 10_000)
      await l2.set(p('ns:2'), bytes('2'), 10_000)
      await l2.set(p('nsx'), bytes('3'), 10_000)
      await l2.set(p('other:1'), bytes('4'), 10_000)
      await l2.clear(p('ns:'))
      expect((await l2.getMany([p('ns:1'), p('ns:2'), p('nsx'), p('other:1')])).map(text)).toEqual([
        undefined,
        undefined,
        '3',
        '4',
      ])
      await l2.close()
    })

    it('expires keys after their physical TTL', async () => {
      const l2 = await options.create()
      const ttl = options.ttlMs ?? 50
      await l2.set(p('ttl'), bytes('t'), ttl)
      expect(text(await l2.get(p('ttl')))).toBe('t')
      await options.wait(ttl * 3)
      expect(await l2.get(p('ttl'))).toBeUndefined()
      await l2.close()
    })

    it('its codec round-trips an entry and rejects bytes it did not write', async () => {
      const l2 = await options.create()
      const e: Entry = {
        value: { n: 1, s: 'x', list: [1, 2], nil: null },
        createdAt: 1,
        freshUntil: 2,
        staleUntil: 3,
        tags: ['t'],
        tagVersions: [4],
        version: 5,
      }
      expect(l2.codec.decode(l2.codec.encode(e))).toEqual(e)
      expect(() => l2.codec.decode(bytes('\u00ffgarbage'))).toThrow()
      expect(() => l2.codec.decode(new Uint8Array())).toThrow()
      await l2.close()
    })

    it('leases: a write or delete between miss and fill revokes the fill; hits take no lease', async () => {
      const l2 = await options.create()
      if (!l2.leases) {
        await l2.close()
        return
      }
      const leases = l2.leases
      const k = p('lease')
      const one = async () => (await leases.getManyWithLease([k]))[0] as L2ReadResult
      const fill = async (token: string | undefined, v: string) =>
        (
          await leases.fillMany([
            { key: k, token: token as string, value: bytes(v), ttlMs: 10_000 },
          ])
        )[0]
      const first = await one()
      expect(first.value).toBeUndefined()
      expect(first.token).toBeDefined()
      await l2.set(k, bytes('new'), 10_000)
      expect(await fill(first.token, 'old')).toBe(false)
      expect(text(await l2.get(k))).toBe('new')
      const hit = await one()
      expect(text(hit.value)).toBe('new')
      expect(hit.token).toBeUndefined()
      await l2.delete([k])
      const second = await one()
      await l2.delete([k])
      expect(await fill(second.token, 'old')).toBe(false)
      expect(await l2.get(k)).toBeUndefined()
      const third = await one()
      expect(await fill(third.token, 'ok')).toBe(true)
      expect(text(await l2.get(k))).toBe('ok')
      // Bytes core cannot serve (expired, tag-invalidated): leaseMany takes a lease anyway.
      const [forced] = await leases.leaseMany([k])
      expect(forced).toBeDefined()
      expect(await fill(forced, 'reloaded')).toBe(true)
      const [revoked] = await leases.leaseMany([k])
      await l2.set(k, bytes('newer'), 10_000)
      expect(await fill(revoked, 'older')).toBe(false)
      expect(text(await l2.get(k))).toBe('newer')
      // Many keys in one call: each miss its own token, hits none.
      const [a, b] = [p('lease-a'), p('lease-b')]
      await l2.set(a, bytes('A'), 10_000)
      const many = await leases.getManyWithLease([a, b])
      expect(text(many[0]?.value)).toBe('A')
      expect(many[0]?.token).toBeUndefined()
      expect(many[1]?.token).toBeDefined()
      expect(
        await leases.fillMany([
          { key: b, token: many[1]?.token as string, value: bytes('B'), ttlMs: 10_000 },
        ]),
      ).toEqual([true])
      expect(text(await l2.get(b))).toBe('B')
      await l2.close()
    })

    it('leases: replaceMany writes while the lease holds and ends it (sharers can no longer fill)', async () => {
      const l2 = await options.create()
      const leases = l2.leases
      if (!leases?.replaceMany) {
        await l2.close()
        return
      }
      const replace = async (items: L2FillItem[]) => (await leases.replaceMany?.(items)) ?? []
      const k = p('replace')
      const item = (token: string | undefined, v: string) => ({
        key: k,
        token: token as string,
        value: bytes(v),
        ttlMs: 10_000,
      })
      const [miss] = await leases.getManyWithLease([k])
      const [joined] = await leases.leaseMany([k])
      expect(joined).toBe(miss?.token) // a sharer of the load's lease
      expect(await replace([item(joined, 'expired')])).toEqual([true])
      expect(await leases.fillMany([item(miss?.token, 'late load')])).toEqual([false])
      expect(text(await l2.get(k))).toBe('expired')
      // A write after the lease was taken wins over the replace.
      const [t] = await leases.leaseMany([k])
      await l2.set(k, bytes('newer'), 10_000)
      expect(await replace([item(t, 'older')])).toEqual([false])
      expect(text(await l2.get(k))).toBe('newer')
      await l2.close()
    })

    it('tags: bump() raises versions; a tag never seen gets a version above every earlier one', async () => {
      const l2 = await options.create()
      if (!l2.tags) {
        await l2.close()
        return
      }
      const [a, b] = [p('tag-a'), p('tag-b')]
      const before = await l2.tags.versions([a, b])
      expect(await l2.tags.versions([a, b])).toEqual(before)
      await l2.tags.bump([a])
      const after = await l2.tags.versions([a, b])
      expect(after[0]).toBeGreaterThan(before[0] as number)
      expect(after[1]).toBe(before[1])
      const [never] = await l2.tags.versions([p('never')])
      expect(never).toBeGreaterThan(after[0] as number)
      await l2.close()
    })

    it('locks: one holder at a time; release is compare-and-delete; the TTL frees a lost holder', async () => {
      await withLocks(async (locks) => {
        const k = p('lock')
        const t1 = await locks.tryAcquire(k, 10_000)
        expect(t1).toBeDefined()
        expect(await locks.tryAcquire(k, 10_000)).toBeUndefined()
        await locks.release(k, 'not-the-token')
        expect(await locks.tryAcquire(k, 10_000)).toBeUndefined()
        expect(await locks.extend(k, 'not-the-token', 10_000)).toBe(false)
        expect(await locks.extend(k, t1 as string, 10_000)).toBe(true)
        await locks.release(k, t1 as string)
        expect(await locks.extend(k, t1 as string, 10_000)).toBe(false)
        const t2 = await locks.tryAcquire(k, options.ttlMs ?? 50)
        expect(t2).toBeDefined()
        await options.wait((options.ttlMs ?? 50) * 3)
        expect(await locks.tryAcquire(k, 10_000)).toBeDefined()
      })
    })

    it('locks: an attempt with a token is idempotent (a retry after a timed-out attempt finds the lock its own)', async () => {
      await withLocks(async (locks) => {
        const k = p('lock-token')
        expect(await locks.tryAcquire(k, 10_000, 'mine')).toBe('mine')
        expect(await locks.tryAcquire(k, 10_000, 'mine')).toBe('mine')
        expect(await locks.tryAcquire(k, 10_000, 'theirs')).toBeUndefined()
        expect(await locks.tryAcquire(k, 10_000)).toBeUndefined()
        // Found its own, the lock lives ttl from this attempt (not from the first one).
        const k3 = p('lock-token-3')
        expect(await locks.tryAcquire(k3, options.ttlMs ?? 50, 'mine')).toBe('mine')
        expect(await locks.tryAcquire(k3, 10_000, 'mine')).toBe('mine')
        await options.wait((options.ttlMs ?? 50) * 3)
        expect(await locks.tryAcquire(k3, 10_000, 'theirs')).toBeUndefined()
        // A holder whose lock expired and went to someone else cannot take it back or free it.
        const k2 = p('lock-token-2')
        expect(await locks.tryAcquire(k2, options.ttlMs ?? 50, 'old')).toBe('old')
        await options.wait((options.ttlMs ?? 50) * 3)
        expect(await locks.tryAcquire(k2, 10_000, 'new')).toBe('new')
        await locks.release(k2, 'old')
        expect(await locks.tryAcquire(k2, 10_000, 'old')).toBeUndefined()
        expect(await locks.extend(k2, 'new', 10_000)).toBe(true)
      })
    })
  })
}
