import { createCache, MemoryBusHub } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { waitFor } from '@strata/testing'
import { describe, expect, it } from 'vitest'
import { realRedis } from './replicas.js'

const r = realRedis()
let seq = 0
// An in-process bus (the Redis one lives in a package that depends on this one): enough
// to count what a cache publishes.
const hub = new MemoryBusHub()
const cache = (prefix: string) => r.cache(prefix, undefined, { bus: hub.bus() })

async function* keys(n: number) {
  for (let i = 0; i < n; i++) yield `k${i}`
}

describe('cache.warm', () => {
  it('100 000 keys, batchSize 100: ≤ 1 000 loadMany calls, only what is missing, no bus message, progress reported', async () => {
    const prefix = `warm${++seq}`
    const c = cache(prefix)
    await c.ready()
    // 1 000 keys are cached already; every 10th key does not exist in the source.
    await c.setMany(
      Array.from({ length: 1_000 }, (_, i) => ({ key: `k${i}`, value: `cached-${i}` })),
    )
    const published = c.stats().bus.published
    let calls = 0
    const progress: number[] = []
    const result = await c.warm(keys(100_000), {
      batchSize: 100,
      loadMany: (missing) => {
        calls++
        return new Map(
          missing.filter((k) => Number(k.slice(1)) % 10 !== 3).map((k) => [k, `v-${k}`]),
        )
      },
      onProgress: (p) => progress.push(p.alreadyCached + p.loaded + p.notFound),
    })
    expect(result).toEqual({
      alreadyCached: 1_000,
      loaded: 89_100,
      notFound: 9_900,
      failed: 0,
      cancelled: false,
    })
    expect(calls).toBeLessThanOrEqual(1_000)
    expect(calls).toBe(990) // the 10 fully cached batches never reached the loader
    expect(c.stats().bus.published).toBe(published)
    expect(progress.at(-1)).toBe(100_000)
    expect(progress.length).toBe(1_000)
    // Warmed into L2: a fresh replica reads them without loading.
    const other = cache(prefix)
    expect(await other.getMany(['k5000', 'k99999', 'k1003', 'k3'])).toEqual([
      'v-k5000',
      'v-k99999',
      null,
      'cached-3',
    ])
  }, 120_000)

  it('cancel: stops scheduling batches, batches in flight finish', async () => {
    const prefix = `warm${++seq}`
    const c = cache(prefix)
    const ac = new AbortController()
    let calls = 0
    const result = await c.warm(keys(50_000), {
      batchSize: 100,
      concurrency: 2,
      signal: ac.signal,
      loadMany: (missing) => {
        if (++calls === 5) ac.abort()
        return new Map(missing.map((k) => [k, 1]))
      },
    })
    expect(result.cancelled).toBe(true)
    expect(calls).toBeLessThan(10)
    expect(result.loaded).toBe(calls * 100)
  })

  it('a delete while the batch is loading is never undone by the warm fill (lease-guarded)', async () => {
    const prefix = `warm${++seq}`
    const c = cache(prefix)
    const writer = cache(prefix)
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let loading!: () => void
    const started = new Promise<void>((r) => (loading = r))
    const warming = c.warm(['a', 'b', 'c'], {
      loadMany: async (missing) => {
        loading()
        await gate // the source read happened; the rows are about to be cached
        return new Map(missing.map((k) => [k, `old-${k}`]))
      },
    })
    await started
    await writer.delete('b') // the row changed in the source: every replica drops b
    release()
    expect(await warming).toMatchObject({ loaded: 3 })
    expect(await r.admin.exists(`{${prefix}::b}`)).toBe(0)
    expect(await r.admin.exists(`{${prefix}::a}`)).toBe(1)
    expect(await writer.get('b')).toBeUndefined()
    expect(await c.get('b')).toBeUndefined()
  })

  it('refuses bad options', async () => {
    const c = cache(`warm${++seq}`)
    await expect(c.warm(['a'], { loadMany: () => new Map(), batchSize: 0 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    await expect(c.warm(['a'], {} as never)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
  })
})

describe('warm start', () => {
  it("a new replica loads the fleet's hottest keys from L2 into L1 before ready(), without loader calls", async () => {
    const prefix = `warm${++seq}`
    const a = r.cache(prefix, undefined, { hotSet: { interval: 100, top: 100 } })
    const users = a.namespace('users')
    // 200 keys: u0…u39 are read 256 times each (about 16 sampled hits each), the other 160 once.
    for (let i = 0; i < 200; i++) await users.set(`u${i}`, { i })
    for (let round = 0; round < 256; round++) {
      for (let i = 0; i < (round === 0 ? 200 : 40); i++) await users.get(`u${i}`)
    }
    // Wait for the merges (interval 100 ms) to bring every hot key to Redis.
    const zset = `{__strata:hot:${prefix}}:ns:users`
    const hot = Array.from({ length: 40 }, (_, i) => `${prefix}:users:u${i}`)
    await waitFor(
      async () => (await r.admin.zmscore(zset, ...hot)).every((x) => x !== null),
      10_000,
      'hot set merged',
    )
    const b = r.cache(prefix, undefined, { warmStart: { keys: 50, budget: '5s' } })
    await b.ready()
    expect(b.stats().warmStarted).toBe(50)
    const l2Hits = b.stats().l2.hits
    let loads = 0
    for (let i = 0; i < 40; i++) {
      expect(await b.namespace('users').getOrSet(`u${i}`, () => ++loads)).toEqual({ i })
    }
    expect(loads).toBe(0)
    expect(b.stats().l2.hits).toBe(l2Hits) // all 40 from L1
    expect(b.stats().l1.hits).toBe(40)
  }, 60_000)

  it('warmStart is refused without an L2 that keeps a hot set', () => {
    expect(() => createCache({ l1: memoryL1(), warmStart: { keys: 10 } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
  })
})
