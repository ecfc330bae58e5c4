import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { Redis } from 'ioredis'

/** A replica's cache on a Redis URL: L1 + L2 + bus, its own connections. */
export function replica(url: string, prefix: string): Cache {
  return createCache({
    prefix,
    l1: memoryL1({ maxEntries: 10_000 }),
    l2: redisL2({ redis: url, commandTimeout: 1_000 }),
    bus: redisPubSubBus({ redis: url }),
  })
}

/**
 * A source of truth kept in Redis (a hash of `{version, value}` per id) that applies a
 * write only when its version is newer, and records what it saw. Shared by processes.
 */
export const SOURCE_SAVE = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
redis.call('HINCRBY', KEYS[3], 'calls', 1)
if tonumber(ARGV[2]) <= cur then
  redis.call('HINCRBY', KEYS[3], 'older', 1)
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`

export class Source {
  readonly redis: Redis
  readonly name: string
  constructor(url: string, name: string) {
    this.redis = new Redis(url)
    this.name = name
    this.redis.defineCommand('sourceSave', { numberOfKeys: 3, lua: SOURCE_SAVE })
  }
  save(id: string, value: unknown, version: number): Promise<number> {
    return (
      this.redis as unknown as {
        sourceSave(a: string, b: string, c: string, ...args: (string | number)[]): Promise<number>
      }
    ).sourceSave(
      `${this.name}:ver`,
      `${this.name}:val`,
      `${this.name}:stats`,
      id,
      version,
      JSON.stringify(value),
    )
  }
  async get(id: string): Promise<unknown> {
    const raw = await this.redis.hget(`${this.name}:val`, id)
    return raw === null ? null : (JSON.parse(raw) as unknown)
  }
  async versions(): Promise<Record<string, string>> {
    return this.redis.hgetall(`${this.name}:ver`)
  }
  async stats(): Promise<{ calls: number; older: number }> {
    const s = await this.redis.hgetall(`${this.name}:stats`)
    return { calls: Number(s['calls'] ?? 0), older: Number(s['older'] ?? 0) }
  }
  close(): void {
    this.redis.disconnect()
  }
}
