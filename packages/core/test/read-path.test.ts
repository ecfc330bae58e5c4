import { CacheError, createCache, errors, memoryL2 } from '@strata/core'
import { createFakeClock } from '@strata/core/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { deferred, MATRIX, settle, setup, type Setup } from './matrix.js'

describe.each(MATRIX)('read path [%s]', (tiers) => {
  let s: Setup
  afterEach(async () => {
    await s.close()
  })

  it('getOrSet loads once, then serves the cached value until the TTL passes', async () => {
    s = setup(tiers, { ttl: 1000 })
    let calls = 0
    const load = () => ++calls
    expect(await s.cache.getOrSet('k', load)).toBe(1)
    expect(await s.cache.getOrSet('k', load)).toBe(1)
    expect(await s.cache.get('k')).toBe(1)
    s.clock.advance(1001)
    expect(await s.cache.get('k')).toBeUndefined()
    expect(await s.cache.getOrSet('k', load)).toBe(2)
    expect(calls).toBe(2)
  })

  it('10 000 concurrent getOrSet of one cold key call the loader exactly once', async () => {
    s = setup(tiers)
    let calls = 0
    const gate = deferred<string>()
    const results = Array.from({ length: 10_000 }, () =>
      s.cache.getOrSet('cold', () => {
        calls++
        return gate.promise
      }),
    )
    await settle()
    gate.resolve('value')
    const values = await Promise.all(results)
    expect(calls).toBe(1)
    expect(new Set(values)).toEqual(new Set(['value']))
    expect(s.cache.stats().coalesced).toBe(9_999)
  })

  it('concurrent callers share one loader error; the error is not cached', async () => {
    s = setup(tiers)
    let calls = 0
    const boom = new Error('db down')
    const load = async () => {
      calls++
      await Promise.resolve()
      throw boom
    }
    const settled = await Promise.allSettled([
      s.cache.getOrSet('e', load),
      s.cache.getOrSet('e', load),
    ])
    expect(calls).toBe(1)
    for (const r of settled) {
      expect(r.status).toBe('rejected')
      const err = (r as PromiseRejectedResult).reason as CacheError
      expect(err).toBeInstanceOf(CacheError)
      expect(err.code).toBe(errors.E_LOADER_ERROR)
      expect(err.cause).toBe(boom)
    }
    expect(await s.cache.getOrSet('e', () => 'ok')).toBe('ok')
    expect(calls).toBe(1)
  })

  it('fail-safe: a loader error with a stale value in grace serves stale, then backs off', async () => {
    s = setup(tiers, { ttl: 1000, grace: 60_000, graceBackoff: 5_000 })
    const stale: string[] = []
    s.cache.on('stale', (e) => stale.push(e.reason))
    await s.cache.getOrSet('g', () => 'v1')
    s.clock.advance(1500)
    let calls = 0
    const failing = () => {
      calls++
      throw new Error('upstream 500')
    }
    expect(await s.cache.getOrSet('g', failing)).toBe('v1')
    expect(stale).toEqual(['loader-error'])
    expect(s.cache.stats().staleServed).toBe(1)
    // Within the backoff the failing loader is not called again.
    expect(await s.cache.getOrSet('g', failing)).toBe('v1')
    expect(calls).toBe(1)
    s.clock.advance(5_001)
    expect(await s.cache.getOrSet('g', () => 'v2')).toBe('v2')
  })

  it('without a stale value a failing loader rejects with a CacheError carrying the cause', async () => {
    s = setup(tiers, { ttl: 1000, grace: 60_000 })
    const cause = new Error('nope')
    await expect(s.cache.getOrSet('x', () => Promise.reject(cause))).rejects.toMatchObject({
      code: errors.E_LOADER_ERROR,
      cause,
    })
  })

  it('soft timeout: a slow loader with stale present returns stale now and stores the fresh value later', async () => {
    s = setup(tiers, { ttl: 1000, grace: 60_000, timeouts: { soft: 50, hard: 10_000 } })
    await s.cache.getOrSet('s', () => 'old')
    s.clock.advance(1001)
    const slow = deferred<string>()
    const pending = s.cache.getOrSet('s', () => slow.promise)
    await settle()
    await s.clock.advanceAsync(51)
    expect(await pending).toBe('old')
    expect(s.cache.stats().staleServed).toBe(1)
    slow.resolve('new')
    await settle()
    expect(await s.cache.get('s')).toBe('new')
    expect(await s.cache.getOrSet('s', () => 'unused')).toBe('new')
  })

  it('hard timeout without stale rejects E_LOADER_TIMEOUT and aborts the signal', async () => {
    s = setup(tiers, { timeouts: { hard: 100 } })
    let signal: AbortSignal | undefined
    const pending = s.cache.getOrSet('h', (ctx) => {
      signal = ctx.signal
      return new Promise<string>(() => undefined)
    })
    const check = expect(pending).rejects.toMatchObject({ code: errors.E_LOADER_TIMEOUT })
    await settle()
    await s.clock.advanceAsync(101)
    await check
    expect(signal?.aborted).toBe(true)
  })

  it('hard timeout with stale in grace serves stale', async () => {
    s = setup(tiers, { ttl: 1000, grace: 60_000, timeouts: { hard: 100 } })
    await s.cache.getOrSet('h2', () => 'old')
    s.clock.advance(1001)
    const pending = s.cache.getOrSet('h2', () => new Promise<string>(() => undefined))
    await settle()
    await s.clock.advanceAsync(101)
    expect(await pending).toBe('old')
  })

  it('refresh-ahead: a hit past the threshold returns the current value and refreshes exactly once', async () => {
    s = setup(tiers, { ttl: 1000, refreshAhead: 0.8 })
    let calls = 0
    const gate = deferred<void>()
    const load = async () => {
      calls++
      if (calls > 1) await gate.promise
      return `v${calls}`
    }
    expect(await s.cache.getOrSet('r', load)).toBe('v1')
    s.clock.advance(850)
    expect(await s.cache.getOrSet('r', load)).toBe('v1')
    expect(await s.cache.getOrSet('r', load)).toBe('v1')
    await settle()
    if (tiers === 'l2') {
      // Without L1 there is no hit path to refresh from: the value simply stays until its TTL.
      expect(calls).toBe(1)
      return
    }
    expect(calls).toBe(2)
    gate.resolve()
    await settle()
    expect(await s.cache.getOrSet('r', load)).toBe('v2')
    expect(calls).toBe(2)
  })

  it('negative caching: null is cached for negativeTtl; undefined is rejected', async () => {
    s = setup(tiers, { ttl: 10_000, negativeTtl: 100 })
    let calls = 0
    const find = () => {
      calls++
      return null
    }
    expect(await s.cache.getOrSet('missing', find)).toBeNull()
    expect(await s.cache.getOrSet('missing', find)).toBeNull()
    expect(calls).toBe(1)
    s.clock.advance(101)
    expect(await s.cache.getOrSet('missing', find)).toBeNull()
    expect(calls).toBe(2)
    await expect(s.cache.getOrSet('u', () => undefined)).rejects.toMatchObject({
      code: errors.E_UNDEFINED_VALUE,
    })
  })

  it('the loader context sets TTL and tags (adaptive TTL) and sees the stale value', async () => {
    s = setup(tiers, { ttl: 1000, grace: 10_000 })
    const seen: unknown[] = []
    await s.cache.getOrSet('a', (ctx) => {
      seen.push(ctx.staleValue)
      expect(ctx.key).toBe('a')
      ctx.setTtl('5s')
      ctx.setTags(['t1'])
      return 'long'
    })
    s.clock.advance(4_000)
    expect(await s.cache.get('a')).toBe('long')
    s.clock.advance(1_001)
    expect(await s.cache.get('a')).toBeUndefined()
    await s.cache.getOrSet('a', (ctx) => {
      seen.push(ctx.staleValue)
      return 'again'
    })
    expect(seen).toEqual([undefined, 'long'])
    await s.cache.invalidateTags(['t1'])
    expect(await s.cache.get('a')).toBe('again') // 'again' was stored without tags
  })

  it('jitter spreads TTLs within ±jitter', async () => {
    s = setup(tiers, { ttl: 1000, jitter: 0.2 })
    for (let i = 0; i < 50; i++) await s.cache.set(`j${i}`, i)
    s.clock.advance(799)
    expect(
      (await s.cache.getMany(Array.from({ length: 50 }, (_, i) => `j${i}`))).every(
        (v) => v !== undefined,
      ),
    ).toBe(true)
    s.clock.advance(402)
    expect(
      (await s.cache.getMany(Array.from({ length: 50 }, (_, i) => `j${i}`))).every(
        (v) => v === undefined,
      ),
    ).toBe(true)
  })

  it('getOrSetMany of 100 keys with 40 cached calls the loader once with the 60 missing keys', async () => {
    s = setup(tiers)
    const keys = Array.from({ length: 100 }, (_, i) => `b${i}`)
    await s.cache.setMany(keys.slice(0, 40).map((key) => ({ key, value: `cached-${key}` })))
    const calls: string[][] = []
    const values = await s.cache.getOrSetMany(keys, (missing) => {
      calls.push(missing)
      return new Map(missing.map((k) => [k, `loaded-${k}`]))
    })
    expect(calls).toHaveLength(1)
    expect(calls[0]).toEqual(keys.slice(40))
    expect(values).toEqual(keys.map((k, i) => (i < 40 ? `cached-${k}` : `loaded-${k}`)))
    // now all cached
    await s.cache.getOrSetMany(keys, (missing) => {
      calls.push(missing)
      return new Map()
    })
    expect(calls).toHaveLength(1)
  })

  it('getOrSetMany caches keys the loader leaves out as null, and joins in-flight single loads', async () => {
    s = setup(tiers)
    const gate = deferred<string>()
    const single = s.cache.getOrSet('k1', () => gate.promise)
    await settle()
    const calls: string[][] = []
    const many = s.cache.getOrSetMany(['k1', 'k2', 'k3'], (missing) => {
      calls.push(missing)
      return new Map([['k2', 'two']])
    })
    await settle()
    gate.resolve('one')
    expect(await many).toEqual(['one', 'two', null])
    expect(await single).toBe('one')
    expect(calls).toEqual([['k2', 'k3']])
  })

  it('getMany returns values in key order with undefined for misses', async () => {
    s = setup(tiers)
    await s.cache.set('a', 1)
    await s.cache.set('c', 3)
    expect(await s.cache.getMany(['c', 'b', 'a', 'a'])).toEqual([3, undefined, 1, 1])
  })

  it('durations accept strings', async () => {
    s = setup(tiers, { ttl: '2s' })
    await s.cache.set('d', 'x', { ttl: '1m' })
    await s.cache.set('e', 'y')
    s.clock.advance(2_001)
    expect(await s.cache.get('d')).toBe('x')
    expect(await s.cache.get('e')).toBeUndefined()
  })
})

describe('L2 batching', () => {
  it('1 000 getOrSets of one key in one tick are one leased read of one key, however many batches the tick fills', async () => {
    const clock = createFakeClock()
    const l2 = memoryL2({ clock })
    const cache = createCache({ prefix: 'stampede', clock, l2 })
    const reads: number[] = []
    const getManyWithLease = l2.leases.getManyWithLease.bind(l2.leases)
    l2.leases.getManyWithLease = (keys) => {
      reads.push(keys.length)
      return getManyWithLease(keys)
    }
    let loads = 0
    const cold = Array.from({ length: 300 }, (_, i) => `c${i}`)
    const got = await Promise.all([
      ...Array.from({ length: 1_000 }, () => cache.getOrSet('hot', () => ++loads)),
      ...cold.map((k) => cache.getOrSet(k, () => k)),
    ])
    expect(got.slice(0, 1_000)).toEqual(Array(1_000).fill(1))
    expect(got.slice(1_000)).toEqual(cold)
    expect(loads).toBe(1)
    // 301 distinct keys: 'hot' once, in the first batch of 128.
    expect(reads).toEqual([128, 128, 45])
    await cache.close()
  })

  it('a get issued with no read out leaves at once; the misses of one tick issued while one is out go as commands of at most 128 keys, all sent before any answers', async () => {
    const clock = createFakeClock()
    const l2 = memoryL2({ clock })
    const cache = createCache({ prefix: 'batch', clock, l2 })
    const sizes: number[] = []
    const gate = deferred<void>()
    const getMany = l2.getMany.bind(l2)
    const get = l2.get.bind(l2)
    l2.getMany = async (keys) => {
      sizes.push(keys.length)
      await gate.promise
      return getMany(keys)
    }
    l2.get = async (key) => {
      sizes.push(1)
      await gate.promise
      return get(key)
    }
    const first = cache.get('first')
    expect(sizes).toEqual([1]) // sent before this tick ends
    const reads = Array.from({ length: 300 }, (_, i) => cache.get(`k${i}`))
    expect(sizes).toEqual([1]) // these wait for the tick
    await settle()
    expect(sizes).toEqual([1, 128, 128, 44])
    gate.resolve()
    expect(await first).toBeUndefined()
    expect(await Promise.all(reads)).toEqual(Array(300).fill(undefined))
    // One call's keys are never split: a getMany of 300 is one command.
    sizes.length = 0
    await cache.getMany(Array.from({ length: 300 }, (_, i) => `m${i}`))
    expect(sizes).toEqual([300])
    await cache.close()
  })
})
