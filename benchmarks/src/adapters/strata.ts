import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import type { AdapterFactory } from './types.js'

/** Strata with its default L1 admission, or with `admission: 'tinylfu'` (hit-ratio). */
export const strata: AdapterFactory = (o) => build(o, 'lru')
export const strataTinyLfu: AdapterFactory = (o) => build(o, 'tinylfu')

async function build(
  { mode, redisUrl, prefix, maxEntries }: Parameters<AdapterFactory>[0],
  admission: 'lru' | 'tinylfu',
): ReturnType<AdapterFactory> {
  const cache = createCache({
    prefix,
    ttl: '1h',
    telemetry: false,
    ...(mode !== 'l2' ? { l1: memoryL1({ maxEntries: maxEntries ?? 100_000, admission }) } : {}),
    ...(mode !== 'l1'
      ? {
          l2: redisL2({
            redis: redisUrl,
            commandTimeout: 5_000,
            autoPipelining: process.env['STRATA_AUTOPIPELINE'] === '1',
          }),
        }
      : {}),
    ...(mode === 'tiered' ? { bus: redisPubSubBus({ redis: redisUrl }) } : {}),
  })
  await cache.ready()
  return {
    name: `strata (${mode === 'tiered' ? 'L1+L2+bus' : mode.toUpperCase()}${admission === 'tinylfu' ? ', W-TinyLFU' : ''})`,
    // Bound, not wrapped: the harness calls the library's own method, as the raw baselines do.
    get: cache.get.bind(cache),
    getOrSet: cache.getOrSet.bind(cache),
    set: (k, v) => cache.set(k, v),
    delete: (k) => cache.delete(k),
    getMany: (keys) => cache.getMany(keys),
    ready: () => cache.ready(),
    close: () => cache.close(),
  }
}
