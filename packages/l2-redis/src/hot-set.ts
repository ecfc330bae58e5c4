import { defineScripts, type L2HotSet } from '@strata/core'
import type { Cluster, Redis } from 'ioredis'

/**
 * The fleet's hot keys in Redis, under one hash tag per cache prefix (one slot):
 *
 *   {__strata:hot:<prefix>}          set of namespace paths that have hot keys
 *   {__strata:hot:<prefix>}:ns:<ns>  sorted set: full key → decayed hit score
 *   {__strata:hot:<prefix>}:decay    hash: namespace → when its scores were last halved
 */
const PUSH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if now - last >= tonumber(ARGV[3]) then
  if last > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', 0.5)
  end
  redis.call('HSET', KEYS[3], ARGV[1], now)
end
for i = 4, #ARGV, 2 do redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i]) end
redis.call('SADD', KEYS[2], ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[2])
if n > max then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - max - 1) end
return n
`

interface Scripted {
  strataHotPush(
    zset: string,
    index: string,
    decay: string,
    ...args: (string | number)[]
  ): Promise<number>
}

export class RedisHotSet implements L2HotSet {
  readonly #client: () => Redis | Cluster

  constructor(client: () => Redis | Cluster) {
    this.#client = client
  }

  #scripted(): Scripted {
    return defineScripts<Scripted>(this.#client(), { strataHotPush: { keys: 3, lua: PUSH } })
  }

  async pushHot(
    prefix: string,
    namespace: string,
    items: readonly { key: string; score: number }[],
    max: number,
    decayEvery: number,
  ): Promise<void> {
    if (items.length === 0) return
    const tag = `{__strata:hot:${prefix}}`
    await this.#scripted().strataHotPush(
      `${tag}:ns:${namespace}`,
      tag,
      `${tag}:decay`,
      namespace,
      max,
      decayEvery,
      ...items.flatMap((i) => [i.key, i.score]),
    )
  }

  async topHot(prefix: string, n: number): Promise<string[]> {
    const c = this.#client()
    const tag = `{__strata:hot:${prefix}}`
    const namespaces = await c.smembers(tag)
    const lists = await Promise.all(
      namespaces.map((ns) => c.zrevrange(`${tag}:ns:${ns}`, 0, n - 1, 'WITHSCORES')),
    )
    const all: { key: string; score: number }[] = []
    for (const list of lists) {
      for (let i = 0; i + 1 < list.length; i += 2) {
        all.push({ key: list[i] as string, score: Number(list[i + 1]) })
      }
    }
    return all
      .sort((a, b) => b.score - a.score)
      .slice(0, n)
      .map((x) => x.key)
  }
}
