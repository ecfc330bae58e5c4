import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { startRedisCluster, type RedisClusterHandle } from '@strata/testing'
import calculateSlot from 'cluster-key-slot'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { partitions, redisStreamsWriteBehind } from '../src/index.js'

let cluster: RedisClusterHandle
let client: Cluster

beforeAll(async () => {
  cluster = await startRedisCluster(3)
  client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
  await new Promise<void>((resolve) => client.once('ready', () => resolve()))
}, 60_000)
afterAll(async () => {
  client.disconnect()
  await cluster.stop()
})

describe('write-behind on a local 3-primary Redis Cluster', () => {
  it('partitions spread over slots on every primary; order per id holds; everything drains', async () => {
    const parts = partitions('wbc', 'items', 8)
    const slots = new Set(parts.map((p) => calculateSlot(p.stream)))
    expect(slots.size).toBe(8)
    for (const p of parts) {
      expect(
        new Set([p.stream, p.versions, p.pending, p.dead].map((k) => calculateSlot(k))).size,
      ).toBe(1)
    }
    const saved = new Map<string, number[]>()
    const cache = createCache({
      prefix: 'wbc',
      l1: memoryL1(),
      l2: redisL2({ redis: client, commandTimeout: 2_000 }),
    })
    const repo = cache.repository<number>('items', {
      load: () => null,
      save: (id, value, { version }) => {
        const list = saved.get(id) ?? []
        list.push(version)
        saved.set(id, list)
        expect(value).toBe(version)
      },
      write: redisStreamsWriteBehind({ redis: client, partitions: 8, flushInterval: 5 }),
    })
    for (let round = 1; round <= 3; round++) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => repo.set(`id-${i}`, round)))
      await repo.flush({ timeoutMs: 20_000 })
    }
    const perNode = await Promise.all(
      client.nodes('master').map(async (n) => (await n.keys('{wbc:wb:items:*')).length),
    )
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2)
    expect(saved.size).toBe(200)
    for (const versions of saved.values()) expect(versions).toEqual([1, 2, 3])
    expect(await repo.get('id-7')).toBe(3)
    await cache.close()
  }, 60_000)
})
