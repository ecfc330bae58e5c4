import { createHash } from 'node:crypto'

export interface Script {
  readonly source: string
  readonly sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * KEYS[1] value, KEYS[2] lease set; ARGV[1] token, ARGV[2] lease ttl ms.
 * Reads the value and registers a lease token that a later write or delete revokes.
 */
export const GET_WITH_LEASE = script(`
local v = redis.call('GET', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return v
`)

/**
 * KEYS[1] value, KEYS[2] lease set; ARGV[1] token, ARGV[2] bytes, ARGV[3] ttl ms.
 * Writes only while the token is still valid (no write or delete happened since the miss).
 */
export const FILL_WITH_LEASE = script(`
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

/** KEYS[1] lock; ARGV[1] token. Compare-and-delete. */
export const RELEASE_LOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
