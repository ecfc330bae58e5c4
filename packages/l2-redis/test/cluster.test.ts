import { createCache } from '@strata/core'
import { l2DriverSuite } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { startRedisCluster, type RedisClusterHandle } from '@strata/testing'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisL2 } from '../src/index.js'

let cluster: RedisClusterHandle
let client: Cluster

const newClient = () =>
  new Cluster(cluster.nodes, {
    enableOfflineQueue: true,
    redisOptions: { maxRetriesPerRequest: 1 },
  })

beforeAll(async () => {
  cluster = await startRedisCluster(3)
  client = newClient()
  await new Promise<void>((resolve) => client.once('ready', () => resolve()))
}, 60_000)
afterAll(async () => {
  client.disconnect()
  await cluster.stop()
})

describe('redisL2 on a local 3-primary Redis Cluster', () => {
  l2DriverSuite('redisL2 (cluster)', {
    create: () => redisL2({ redis: client, commandTimeout: 2_000 }),
    prefix: 'clu',
    wait: (ms) => new Promise((r) => setTimeout(r, ms)),
  })

  it('getMany spans slots on every primary, clear(prefix) scans every primary, tags and leases work', async () => {
    const c = createCache({
      prefix: 'clu2',
      l1: memoryL1(),
      l2: redisL2({ redis: client, commandTimeout: 2_000 }),
    })
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
    await c.setMany(keys.map((key) => ({ key, value: key, options: { tags: ['all'] } })))
    const slotsPerNode = await Promise.all(client.nodes('master').map((n) => n.dbsize()))
    expect(slotsPerNode.every((n) => n > 0)).toBe(true)
    const fresh = createCache({
      prefix: 'clu2',
      l2: redisL2({ redis: client, commandTimeout: 2_000 }),
    })
    expect(await fresh.getMany(keys)).toEqual(keys)
    await c.invalidateTags(['all'])
    expect((await fresh.getMany(keys)).every((v) => v === undefined)).toBe(true)
    await c.setMany(keys.map((key) => ({ key, value: `v-${key}` })))
    await c.namespace('other').set('keep', 1)
    await c.clear()
    expect((await fresh.getMany(keys)).every((v) => v === undefined)).toBe(true)
    let calls = 0
    expect(await fresh.getOrSet('loaded', () => ++calls)).toBe(1)
    expect(await fresh.getOrSet('loaded', () => ++calls)).toBe(1)
    await c.close()
    await fresh.close()
  })
})
