import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'

/** A replica's cache on a Redis URL: L1 + L2 + bus, its own connections. */
export function replica(url: string, prefix: string): Cache {
  return createCache({
    prefix,
    l1: memoryL1({ maxEntries: 10_000 }),
    l2: redisL2({ redis: url, commandTimeout: 1_000 }),
    bus: redisPubSubBus({ redis: url }),
  })
}

export { Source } from './fixtures/source.mjs'
