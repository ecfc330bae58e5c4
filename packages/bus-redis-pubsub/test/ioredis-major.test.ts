import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { startRedis, waitFor } from '@strata/testing'
import { ioredisUnderTest } from '@strata/testing/vitest'
import { Redis } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { expect, it } from 'vitest'
import { redisPubSubBus } from '../src/index.js'

it('runs on the ioredis major STRATA_IOREDIS names (6 by default)', () => {
  expect(ioredisUnderTest(import.meta.url, Redis)).toMatch(/^[56]\./)
})

it('takes a client built by another copy or major of ioredis as a client (by shape)', async () => {
  const server = await startRedis()
  const clients: Redis5[] = []
  const replica = () => {
    // Built by ioredis 5 while the drivers resolve ioredis 6: accepted by type and at run time.
    const redis = new Redis5(server.url)
    clients.push(redis)
    return createCache({
      prefix: 'mixed',
      l1: memoryL1(),
      l2: redisL2({ redis }),
      bus: redisPubSubBus({ redis }),
    })
  }
  const [a, b] = [replica(), replica()]
  try {
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 1)
    expect(await b.get('k')).toBe(1)
    await a.set('k', 2)
    await waitFor(async () => (await b.get('k')) === 2, 5_000, 'the invalidation reaching b')
    expect(b.stats().bus.received).toBeGreaterThan(0)
  } finally {
    await Promise.all([a.close(), b.close()])
    for (const c of clients) c.disconnect()
    await server.stop()
  }
})
