import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { startRedis, waitFor, type RedisHandle } from '@strata/testing'
import keyvTestSuite from '@keyv/test-suite'
import { createCache as createCacheManager } from 'cache-manager'
import Keyv from 'keyv'
import * as vitest from 'vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyvStrata } from '../src/index.js'

let server: RedisHandle
const caches: Cache[] = []

beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  for (const c of caches) await c.close()
  await server.stop()
})

/** A replica's Strata cache: L1 + L2 + bus on this file's redis-server. */
function replica(prefix: string): Cache {
  const c = createCache({
    prefix,
    l1: memoryL1(),
    l2: redisL2({ redis: server.url }),
    bus: redisPubSubBus({ redis: server.url }),
  })
  caches.push(c)
  return c
}

let suiteCache: Cache | undefined
let suiteStores = 0
// The published Keyv compliance suite (API, values, namespaces) against one real-Redis
// cache; each store the suite asks for is a fresh Strata namespace of it.
keyvTestSuite(
  vitest,
  Keyv,
  () => new KeyvStrata((suiteCache ??= replica('suite')).namespace(`s${++suiteStores}`)),
)

describe('KeyvStrata beyond the suite', () => {
  it('cache-manager over two replicas: a del on one drops the other replica’s L1 copy', async () => {
    const a = createCacheManager({ stores: [new Keyv({ store: new KeyvStrata(replica('cm')) })] })
    const bCache = replica('cm')
    const b = createCacheManager({ stores: [new Keyv({ store: new KeyvStrata(bCache) })] })
    await bCache.ready()
    await a.set('user:1', { name: 'Ada' }, 60_000)
    // B hears of A's write first (a write tells every replica), then reads it into L1.
    await waitFor(() => bCache.stats().bus.received >= 1, 5_000, 'B heard the write')
    expect(await b.get('user:1')).toEqual({ name: 'Ada' })
    expect(bCache.stats().l1.entries).toBe(1) // served from L1 from now on
    await a.del('user:1')
    await waitFor(async () => (await b.get('user:1')) === undefined, 5_000, 'B drops its copy')
  })

  it('Keyv namespaces are Strata namespaces: clear() leaves the other namespace alone', async () => {
    const cache = replica('ns')
    const one = new Keyv({ store: new KeyvStrata(cache), namespace: 'one' })
    const two = new Keyv({ store: new KeyvStrata(cache), namespace: 'two:with/odd chars' })
    await one.set('k', 1)
    await two.set('k', 2)
    await one.clear()
    expect(await one.get('k')).toBeUndefined()
    expect(await two.get('k')).toBe(2)
  })

  it('a TTL from Keyv becomes the Strata entry TTL; no TTL is maxTtl', async () => {
    const cache = replica('ttl')
    const store = new KeyvStrata(cache, { maxTtl: '1h' })
    const keyv = new Keyv({ store })
    await keyv.set('short', 'x', 50)
    await keyv.set('long', 'y')
    const admin = new (await import('ioredis')).Redis(server.url)
    const short = await admin.pttl('{ttl:keyv:keyv:short}')
    const long = await admin.pttl('{ttl:keyv:keyv:long}')
    admin.disconnect()
    expect(short).toBeGreaterThan(0)
    expect(short).toBeLessThanOrEqual(50)
    expect(long).toBeGreaterThan(3_500_000)
    expect(long).toBeLessThanOrEqual(3_600_000)
    expect(() => new KeyvStrata(null as unknown as Cache)).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
  })
})
