import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { Redis } from 'ioredis'
import type { AdapterFactory } from './types.js'

/** Strata with its default L1 admission, or with `admission: 'tinylfu'` (hit-ratio). */
export const strata: AdapterFactory = (o) => build(o, 'lru')
export const strataTinyLfu: AdapterFactory = (o) => build(o, 'tinylfu')

async function build(
  { mode, redisUrl, prefix, maxEntries }: Parameters<AdapterFactory>[0],
  admission: 'lru' | 'tinylfu',
): ReturnType<AdapterFactory> {
  // Clients from this package's ioredis, the one the raw baselines and layered-loader use:
  // every contender on the same client version (left to itself, Strata would resolve the
  // ioredis 6 its packages develop against, whose reply decoder parses a 128-value MGET
  // ~40% slower than 5.11 here; see docs/benchmarks-notes.md).
  const clients: Redis[] = []
  const client = () => {
    const c = new Redis(redisUrl, {
      enableAutoPipelining: process.env['STRATA_AUTOPIPELINE'] === '1',
    })
    clients.push(c)
    return c
  }
  const cache = createCache({
    prefix,
    ttl: '1h',
    telemetry: false,
    ...(mode !== 'l2' ? { l1: memoryL1({ maxEntries: maxEntries ?? 100_000, admission }) } : {}),
    ...(mode !== 'l1'
      ? {
          l2: redisL2({ redis: client(), commandTimeout: 5_000 }),
        }
      : {}),
    ...(mode === 'tiered' ? { bus: redisPubSubBus({ redis: client() }) } : {}),
  })
  await cache.ready()
  return {
    name: `strata (${mode === 'tiered' ? 'L1+L2+bus' : mode.toUpperCase()}${admission === 'tinylfu' ? ', W-TinyLFU' : ''})`,
    // Wrapped like every peer's adapter. (Bound methods until the sixth session; measured side
    // by side in l1-hit, the bound method was 1–8% slower from the harness's call site.)
    get: (k) => cache.get(k),
    getOrSet: (k, load) => cache.getOrSet(k, load),
    set: (k, v) => cache.set(k, v),
    delete: (k) => cache.delete(k),
    getMany: (keys) => cache.getMany(keys),
    ready: () => cache.ready(),
    close: async () => {
      await cache.close()
      for (const c of clients) c.disconnect()
    },
  }
}
