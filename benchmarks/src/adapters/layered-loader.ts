import { Loader, RedisCache, createNotificationPair } from 'layered-loader'
import { Redis } from 'ioredis'
import type { AdapterFactory } from './types.js'

/**
 * layered-loader (16.x loads and runs on Node 20.20 here, although its `engines` says 22):
 * an in-memory layer (l1), a RedisCache layer (l2), or both with its Redis notification
 * pair so that a write on one instance evicts the others' memory copies (tiered). Its data
 * source is whatever the current getOrSet passes.
 */
export const layeredLoader: AdapterFactory = async ({ mode, redisUrl, prefix, maxEntries }) => {
  let source: () => Promise<unknown> = () => Promise.resolve(null)
  const clients: Redis[] = []
  const client = () => {
    const c = new Redis(redisUrl)
    clients.push(c)
    return c
  }
  const inMemory = { ttlInMsecs: 3_600_000, maxItems: maxEntries ?? 100_000 }
  const asyncCache =
    mode === 'l1'
      ? undefined
      : new RedisCache<unknown>(client(), { ttlInMsecs: 3_600_000, prefix, json: true })
  let notifications
  if (mode === 'tiered') {
    const { publisher, consumer } = createNotificationPair<unknown>({
      channel: `ll:${prefix}`,
      consumerRedis: client(),
      publisherRedis: client(),
    })
    notifications = { notificationConsumer: consumer, notificationPublisher: publisher }
  }
  const loader = new Loader<unknown>({
    ...(mode !== 'l2' ? { inMemoryCache: inMemory } : {}),
    ...(asyncCache ? { asyncCache } : {}),
    ...(notifications ?? {}),
    dataSourceGetOneFn: () => source(),
  })
  if (notifications) await loader.init()
  return {
    name: `layered-loader (${mode === 'tiered' ? 'memory + redis + notifications' : mode === 'l1' ? 'memory' : 'redis'})`,
    // Its own read path (memory, then Redis); the source is only asked on a miss.
    get: (k) => loader.get(k),
    getOrSet: (k, load) => {
      source = load
      return loader.get(k)
    },
    set: (k, v) => loader.forceSetValue(k, v),
    delete: (k) => loader.invalidateCacheFor(k),
    close: async () => {
      await loader.close()
      for (const c of clients) c.disconnect()
    },
  }
}
