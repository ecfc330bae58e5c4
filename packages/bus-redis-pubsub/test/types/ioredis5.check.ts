// Type-level check, compiled by `tsconfig.ioredis5.json` where `ioredis` resolves to
// ioredis 5 (as in a project that installed only 5): the published declarations accept
// that project's clients.
import type { Cluster, Redis } from 'ioredis'
import { redisBloomGuard, redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'

declare const r: Redis
declare const c: Cluster
export const drivers = [
  redisL2({ redis: r }),
  redisL2({ redis: c }),
  redisL2({ redis: 'redis://127.0.0.1:6379' }),
  redisBloomGuard({ expectedItems: 10, falsePositiveRate: 0.01, redis: r }),
  redisPubSubBus({ redis: r, publisher: r }),
]
