import { fileURLToPath } from 'node:url'
import { spawnChild, startRedis, type ChildHandle, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/replica.mjs', import.meta.url))

describe('distributed stampede protection across real processes', () => {
  let redis: RedisHandle
  let children: ChildHandle[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await Promise.all(children.map((c) => c.kill()))
    await redis.stop()
  })

  it('4 processes × 250 concurrent getOrSet of one cold key → exactly 1 loader call in total', async () => {
    const prefix = 'stampede'
    children = Array.from({ length: 4 }, () =>
      spawnChild(fixture, [], { REDIS_TEST_URL: redis.url }),
    )
    await Promise.all(children.map((c) => c.request({ cmd: 'init', prefix })))
    const results = await Promise.all(
      children.map((c) =>
        c.request<{ distinct: string[]; count: number }>({
          cmd: 'stampede',
          prefix,
          key: 'cold',
          n: 250,
        }),
      ),
    )
    for (const r of results) {
      expect(r.count).toBe(250)
      expect(r.distinct).toEqual(['loaded-once'])
    }
    const raw = new Redis(redis.url)
    expect(await raw.get(`${prefix}:loader-calls`)).toBe('1')
    raw.disconnect()
    await Promise.all(children.map((c) => c.request({ cmd: 'close' })))
  })
})
