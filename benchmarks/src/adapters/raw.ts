import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { Packr, Unpackr } from 'msgpackr'
import type { AdapterFactory, CacheAdapter } from './types.js'

const packr = new Packr({ useRecords: true, moreTypes: true })
const unpackr = new Unpackr({ useRecords: true, moreTypes: true })
export const encode = (v: unknown): Buffer => packr.pack(v)
export const decode = (b: Buffer): unknown => unpackr.unpack(b)

/**
 * The hand-written baseline: lru-cache in front of ioredis with msgpack values and (in
 * tiered mode) "SET + PUBLISH, peers drop their L1 entry". No single-flight, no
 * leases, no gap handling: the raw limit of the same work.
 */
export const raw: AdapterFactory = async ({ mode, redisUrl, prefix, maxEntries }) => {
  const l1 =
    mode === 'l2'
      ? undefined
      : new LRUCache<string, { v: unknown }>({ max: maxEntries ?? 100_000, ttl: 3_600_000 })
  const redis = mode === 'l1' ? undefined : new Redis(redisUrl)
  const sub = mode === 'tiered' ? new Redis(redisUrl) : undefined
  const channel = `raw:${prefix}`
  if (sub) {
    await sub.subscribe(channel)
    sub.on('message', (_c: string, key: string) => l1?.delete(key))
  }
  const k = (key: string) => `${prefix}:${key}`
  const get = async (key: string): Promise<unknown> => {
    const hit = l1?.get(key)
    if (hit) return hit.v
    if (!redis) return undefined
    const b = await redis.getBuffer(k(key))
    if (!b) return undefined
    const v = decode(b)
    l1?.set(key, { v })
    return v
  }
  const adapter: CacheAdapter = {
    name: `hand-written (${mode === 'tiered' ? 'lru-cache + ioredis + pub/sub' : mode === 'l1' ? 'lru-cache' : 'ioredis + msgpackr'})`,
    get,
    async getOrSet(key, load) {
      const v = await get(key)
      if (v !== undefined) return v
      const loaded = await load()
      if (redis) await redis.set(k(key), encode(loaded), 'PX', 3_600_000)
      l1?.set(key, { v: loaded })
      return loaded
    },
    async set(key, value) {
      if (redis) await redis.set(k(key), encode(value), 'PX', 3_600_000)
      l1?.set(key, { v: value })
      if (redis && sub) await redis.publish(channel, key)
    },
    async delete(key) {
      if (redis) await redis.del(k(key))
      l1?.delete(key)
      if (redis && sub) await redis.publish(channel, key)
    },
    async getMany(keys) {
      if (!redis) return keys.map((key) => l1?.get(key)?.v)
      const values = await redis.mgetBuffer(...keys.map(k))
      return values.map((b) => (b ? decode(b) : undefined))
    },
    close: async () => {
      redis?.disconnect()
      sub?.disconnect()
    },
  }
  return adapter
}
