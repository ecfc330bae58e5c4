import { defineScripts } from '@strata/core'
import type { Cluster, Redis } from 'ioredis'

/**
 * The queue's Redis side. Per partition (one hash tag, so one slot on a cluster):
 *
 *   <tag>:s  the stream of writes: fields i (id), v (version), o ('s' set | 'd' delete), d (value bytes)
 *   <tag>:v  hash id → the id's last version (HINCRBY: versions increase per id)
 *   <tag>:p  hash id → the id's newest unpersisted write: `<o><version>:<bytes>`
 *   <tag>:d  the dead-letter stream
 *
 * An entry is removed from the stream (XACK + XDEL) once persisted, superseded or
 * dead-lettered, so XLEN is the number of unpersisted writes and the first entry's id
 * is the oldest one's age. The pending hash loses an id only when the write it names is
 * the one persisted (or dead-lettered), so a load never goes behind a queued write.
 */

/** KEYS: stream, versions, pending. ARGV: id, op, bytes, max pending, fallback (1 = write-through when full). → [version, queued] */
const ENQUEUE = `
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  if ARGV[5] ~= '1' then return {-1, 0} end
  local v = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  redis.call('HDEL', KEYS[3], ARGV[1])
  return {v, 0}
end
local v = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('XADD', KEYS[1], '*', 'i', ARGV[1], 'v', v, 'o', ARGV[2], 'd', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. v .. ':' .. ARGV[3])
return {v, 1}
`

/**
 * KEYS: stream, pending. ARGV: group, n, n entry ids, then (id, version) pairs whose
 * pending write may now be forgotten (only if it is still that version).
 */
const DONE = `
local n = tonumber(ARGV[2])
if n > 0 then
  local ids = {}
  for i = 3, 2 + n do ids[#ids + 1] = ARGV[i] end
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
end
for i = 3 + n, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  if cur and string.match(cur, '^.(%d+):') == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return n
`

/** KEYS: stream, pending, dead. ARGV: group, entry id, id, version, op, bytes, error, deliveries. */
const DEAD = `
redis.call('XADD', KEYS[3], '*', 'i', ARGV[3], 'v', ARGV[4], 'o', ARGV[5], 'd', ARGV[6], 'error', ARGV[7], 'deliveries', ARGV[8], 'entry', ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if cur and string.match(cur, '^.(%d+):') == ARGV[4] then redis.call('HDEL', KEYS[2], ARGV[3]) end
return 1
`

/**
 * KEYS: stream. ARGV: group, consumer. Removes the consumer only if it holds nothing, in
 * one step (a consumer removed with entries pending would orphan them).
 */
const FORGET = `
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`

export interface Scripted {
  strataWbEnqueue(
    stream: string,
    versions: string,
    pending: string,
    id: string,
    op: string,
    bytes: Buffer,
    maxPending: number,
    fallback: string,
  ): Promise<[number, number]>
  strataWbDone(stream: string, pending: string, ...args: (string | number)[]): Promise<number>
  strataWbDead(
    stream: string,
    pending: string,
    dead: string,
    ...args: (string | number | Buffer)[]
  ): Promise<number>
  strataWbForget(stream: string, group: string, consumer: string): Promise<number>
}

/** Defines the scripts on a connection once (EVALSHA, loaded again after a restart). */
export function scripted(redis: Redis | Cluster): Scripted {
  return defineScripts<Scripted>(redis, {
    strataWbEnqueue: { keys: 3, lua: ENQUEUE },
    strataWbDone: { keys: 2, lua: DONE },
    strataWbDead: { keys: 3, lua: DEAD },
    strataWbForget: { keys: 1, lua: FORGET },
  })
}
