import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { startRedisCluster, type RedisClusterHandle } from '@strata/testing'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisPubSubBus } from '../src/index.js'

let cluster: RedisClusterHandle
const clients: Cluster[] = []

beforeAll(async () => {
  cluster = await startRedisCluster(3)
}, 60_000)
afterAll(async () => {
  for (const c of clients) c.disconnect()
  await cluster.stop()
})

async function client(): Promise<Cluster> {
  const c = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
  clients.push(c)
  await new Promise<void>((resolve) => c.once('ready', () => resolve()))
  return c
}

/** What `cache` serves for `key` once it serves `want`, or after 5 s (bounded polling). */
async function served(cache: Cache, key: string, want: unknown): Promise<unknown> {
  const deadline = Date.now() + 5_000
  let seen: unknown
  for (let i = 0; i < 250 && Date.now() < deadline; i++) {
    if ((seen = await cache.get(key)) === want) break
    await new Promise((r) => setTimeout(r, 20))
  }
  return seen
}

describe('sharded pub/sub on a local 3-primary cluster', () => {
  it('a set on A reaches B through SPUBLISH/SSUBSCRIBE; heartbeats keep the bus connected', async () => {
    const replicas: Cache[] = []
    for (let i = 0; i < 2; i++) {
      const c = await client()
      const cache = createCache({
        prefix: 'shard',
        l1: memoryL1(),
        l2: redisL2({ redis: c, commandTimeout: 1_000 }),
        bus: redisPubSubBus({ redis: c, heartbeat: { interval: 100, timeout: 500 } }),
      })
      cache.on('error', () => undefined)
      await cache.ready()
      replicas.push(cache)
    }
    const [a, b] = replicas as [Cache, Cache]
    expect(a.stats().bus.state).toBe('connected')
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    await a.set('k', 'v2')
    expect(await served(b, 'k', 'v2')).toBe('v2')
    // Several heartbeat intervals later the bus is still healthy (heartbeats round-trip).
    await new Promise((r) => setTimeout(r, 600))
    expect(b.stats().bus).toMatchObject({ state: 'connected', degradedCount: 0 })
    await Promise.all(replicas.map((r) => r.close()))
  })

  it('a Cluster client handed over before its slot map loaded: the bus waits for it and every replica hears invalidations', async () => {
    const replicas: Cache[] = []
    for (let i = 0; i < 2; i++) {
      // Not awaited: exactly what `new Cluster(nodes)` passed straight to the drivers does.
      const c = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
      clients.push(c)
      const cache = createCache({
        prefix: 'early',
        l1: memoryL1(),
        l2: redisL2({ redis: c, commandTimeout: 1_000 }),
        bus: redisPubSubBus({ redis: c, heartbeat: { interval: 100, timeout: 500 } }),
      })
      cache.on('error', () => undefined)
      replicas.push(cache)
    }
    await Promise.all(replicas.map((r) => r.ready()))
    const [a, b] = replicas as [Cache, Cache]
    expect(b.stats().bus.state).toBe('connected')
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    await a.invalidateTags(['none'])
    await a.set('k', 'v2')
    expect(await served(b, 'k', 'v2')).toBe('v2')
    await Promise.all(replicas.map((r) => r.close()))
  })
})
