// Loads @keyv/redis (and @redis/client): run only in an isolated worker process.
import KeyvRedis from '@keyv/redis'
import { createCache } from 'cache-manager'
import { CacheableMemory } from 'cacheable'
import { Keyv } from 'keyv'
import type { AdapterFactory } from './types.js'

export const cacheManager: AdapterFactory = async ({ mode, redisUrl, prefix, maxEntries }) => {
  const stores: Keyv[] = []
  if (mode !== 'l2')
    stores.push(
      new Keyv({ store: new CacheableMemory({ lruSize: maxEntries ?? 100_000, ttl: 3_600_000 }) }),
    )
  if (mode !== 'l1') stores.push(new Keyv({ store: new KeyvRedis(redisUrl), namespace: prefix }))
  const cache = createCache({ stores, ttl: 3_600_000 })
  return {
    name: `cache-manager (${mode === 'l1' ? 'memory' : mode === 'l2' ? 'keyv redis' : 'memory + keyv redis'})`,
    get: (k) => cache.get(k),
    getOrSet: (k, load) => cache.wrap(k, load),
    set: async (k, v) => {
      await cache.set(k, v)
    },
    delete: async (k) => {
      await cache.del(k)
    },
    getMany: (keys) => cache.mget(keys),
    close: async () => {
      await cache.disconnect().catch(() => undefined)
    },
  }
}
