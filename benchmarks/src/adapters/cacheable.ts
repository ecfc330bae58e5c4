// Loads @keyv/redis (and @redis/client): run only in an isolated worker process.
import KeyvRedis from '@keyv/redis'
import { Cacheable, CacheableMemory } from 'cacheable'
import { Keyv } from 'keyv'
import type { AdapterFactory } from './types.js'

export const cacheable: AdapterFactory = async ({ mode, redisUrl, prefix, maxEntries }) => {
  const memory = new Keyv({
    store: new CacheableMemory({ lruSize: maxEntries ?? 100_000, ttl: '1h' }),
  })
  const redis =
    mode === 'l1' ? undefined : new Keyv({ store: new KeyvRedis(redisUrl), namespace: prefix })
  const cache =
    mode === 'l2'
      ? new Cacheable({ primary: redis, ttl: '1h' })
      : new Cacheable({ primary: memory, ...(redis ? { secondary: redis } : {}), ttl: '1h' })
  return {
    name: `cacheable (${mode === 'l1' ? 'memory' : mode === 'l2' ? 'keyv redis' : 'memory + keyv redis'})`,
    get: (k) => cache.get(k),
    getOrSet: (k, load) => cache.getOrSet(k, load),
    set: async (k, v) => {
      await cache.set(k, v)
    },
    delete: async (k) => {
      await cache.delete(k)
    },
    getMany: (keys) => cache.getMany(keys),
    close: async () => {
      await cache.disconnect().catch(() => undefined)
    },
  }
}
