import { createCache, type Cache, type CacheOptions } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { startRedis, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { redisL2 } from '../src/index.js'

/**
 * A real redis-server for a test file, an admin connection, and replica caches (L1 + L2,
 * each with its own connections; no bus: the bus package depends on this one) closed
 * after every test.
 */
export function realRedis() {
  const ctx = {
    server: undefined as unknown as RedisHandle,
    admin: undefined as unknown as Redis,
    /** A replica's cache on `url` (default: this file's server). */
    cache(prefix: string, url?: string, extra: Partial<CacheOptions> = {}): Cache {
      const u = url ?? ctx.server.url
      const c = createCache({
        prefix,
        l1: memoryL1({ maxEntries: 1_000 }),
        l2: redisL2({ redis: u, commandTimeout: 1_000 }),
        ...extra,
      })
      open.push(c)
      return c
    },
  }
  const open: Cache[] = []
  beforeAll(async () => {
    ctx.server = await startRedis()
    ctx.admin = new Redis(ctx.server.url)
  })
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close()
  })
  afterAll(async () => {
    ctx.admin.disconnect()
    await ctx.server.stop()
  })
  return ctx
}
