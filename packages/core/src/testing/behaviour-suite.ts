import { afterEach, describe, expect, it } from 'vitest'
import type { Cache } from '../cache.js'
import { CacheError, errors } from '../errors.js'

export interface BehaviourSuiteOptions {
  /** A fresh cache on its own prefix (real drivers, real time). */
  create(): Promise<Cache> | Cache
}

/**
 * Core's behaviour, tier-agnostic and without a fake clock, so driver packages can run
 * it against real servers (core's own tests also cover the time-dependent behaviour
 * with a fake clock over the in-memory tiers).
 */
export function cacheBehaviourSuite(name: string, options: BehaviourSuiteOptions): void {
  describe(`cache behaviour: ${name}`, () => {
    const open: Cache[] = []
    const make = async () => {
      const c = await options.create()
      open.push(c)
      return c
    }
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()))
    })

    it('1 000 concurrent getOrSet of a cold key → one loader call, one value', async () => {
      const c = await make()
      let calls = 0
      const values = await Promise.all(
        Array.from({ length: 1_000 }, () =>
          c.getOrSet('cold', async () => {
            calls++
            await new Promise((r) => setTimeout(r, 20))
            return { id: 1 }
          }),
        ),
      )
      expect(calls).toBe(1)
      expect(values.every((v) => v.id === 1)).toBe(true)
    })

    it('a loader error reaches every concurrent caller as E_LOADER_ERROR with its cause, and is not cached', async () => {
      const c = await make()
      const cause = new Error('db down')
      let calls = 0
      const fail = async () => {
        calls++
        await new Promise((r) => setTimeout(r, 5))
        throw cause
      }
      const results = await Promise.allSettled([c.getOrSet('e', fail), c.getOrSet('e', fail)])
      expect(calls).toBe(1)
      for (const r of results) {
        expect(r.status).toBe('rejected')
        expect(CacheError.is((r as PromiseRejectedResult).reason, errors.E_LOADER_ERROR)).toBe(true)
        expect(((r as PromiseRejectedResult).reason as Error).cause).toBe(cause)
      }
      expect(await c.getOrSet('e', () => 'ok')).toBe('ok')
    })

    it('null is cached as "not found"; undefined is rejected', async () => {
      const c = await make()
      let calls = 0
      expect(await c.getOrSet('nf', () => (calls++, null))).toBeNull()
      expect(await c.getOrSet('nf', () => (calls++, null))).toBeNull()
      expect(calls).toBe(1)
      await expect(c.getOrSet('u', () => undefined)).rejects.toMatchObject({
        code: errors.E_UNDEFINED_VALUE,
      })
    })

    it('set, get, delete, setMany, getMany (key order), deleteMany', async () => {
      const c = await make()
      await c.set('a', { n: 1, d: new Date(5), list: [1, 'x', null] })
      expect(await c.get('a')).toEqual({ n: 1, d: new Date(5), list: [1, 'x', null] })
      await c.setMany([
        { key: 'b', value: 2 },
        { key: 'c', value: 3 },
      ])
      expect(await c.getMany(['c', 'missing', 'b'])).toEqual([3, undefined, 2])
      await c.delete('a')
      await c.deleteMany(['b', 'c'])
      expect(await c.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, undefined])
    })

    it('getOrSetMany of 100 keys with 40 cached → one loader call with the 60 missing', async () => {
      const c = await make()
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
      await c.setMany(keys.slice(0, 40).map((key) => ({ key, value: key })))
      const calls: string[][] = []
      const values = await c.getOrSetMany(keys, (missing) => {
        calls.push(missing)
        return new Map(missing.map((k) => [k, k.toUpperCase()]))
      })
      expect(calls).toEqual([keys.slice(40)])
      expect(values).toEqual(keys.map((k, i) => (i < 40 ? k : k.toUpperCase())))
    })

    it('tags: invalidateTags turns tagged entries (options or ctx.setTags) into misses', async () => {
      const c = await make()
      await c.getOrSet('t1', () => 1, { tags: ['grp'] })
      await c.getOrSet('t2', (ctx) => {
        ctx.setTags(['grp'])
        return 2
      })
      await c.set('other', 3, { tags: ['else'] })
      await c.invalidateTags(['grp'])
      expect(await c.getMany(['t1', 't2', 'other'])).toEqual([undefined, undefined, 3])
      expect(await c.getOrSet('t1', () => 10, { tags: ['grp'] })).toBe(10)
      expect(await c.get('t1')).toBe(10)
    })

    it('namespaces: scoped keys, clear() of one namespace leaves the rest', async () => {
      const c = await make()
      const ns = c.namespace('users')
      await c.set('users:1', 'root')
      await ns.set('1', 'scoped')
      await ns.namespace('admins').set('1', 'nested')
      await ns.clear()
      expect(await ns.get('1')).toBeUndefined()
      expect(await ns.namespace('admins').get('1')).toBeUndefined()
      expect(await c.get('users:1')).toBe('root')
      await c.clear()
      expect(await c.get('users:1')).toBeUndefined()
    })

    it('stats count loads and coalesced callers', async () => {
      const c = await make()
      await Promise.all([c.getOrSet('s', () => 1), c.getOrSet('s', () => 1)])
      const st = c.stats()
      expect(st.loads).toBe(1)
      expect(st.coalesced).toBe(1)
    })
  })
}
