import { createHash } from 'node:crypto'

export interface Script {
  readonly source: string
  readonly sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * Lua: takes the lease at key `k` for token `t` (ttl `ms`), or joins the live one: returns
 * the token that holds it, and whether it was there before. One command on Redis 7.0+
 * (`SET NX GET`); Redis 6.2 refuses NX with GET, and there it falls back to GET then SET.
 */
const TAKE_LEASE = `
local function lease(k, t, ms)
  local ok, old = pcall(redis.call, 'SET', k, t, 'NX', 'PX', ms, 'GET')
  if not ok then
    old = redis.call('GET', k)
    if not old then redis.call('SET', k, t, 'PX', ms) end
  end
  return old or t, old ~= false
end`

/**
 * KEYS[1]: a value key; ARGV[1] token prefix, ARGV[2] lease ttl ms. The read of one key:
 * a hit is a pure read; a miss takes the key's lease (`<value key>:lease`, same slot):
 * the live token if one exists (concurrent missers share it), else a new one
 * (`<prefix>1`). Returns { value, token } (nil where absent).
 */
export const GET_WITH_LEASE = script(`
${TAKE_LEASE}
local v = redis.call('GET', KEYS[1])
if v then return { v, false } end
return { false, lease(KEYS[1] .. ':lease', ARGV[1] .. 1, ARGV[2]) }
`)

/**
 * KEYS: value1, value2, … (one slot); ARGV[1] token prefix, ARGV[2] lease ttl ms. The
 * lease half of a batched read, sent just before a plain MGET of the same keys (values
 * never pass through Lua: each one in and out of it costs Redis about as much as a
 * whole MGET's share). Takes or joins the lease (`<value key>:lease`, same slot) of every
 * value key that does not exist; returns the tokens in key order (nil where the value
 * exists), or an empty array when every value exists (one EXISTS, no lease bookkeeping:
 * a batch of hits is a pure read). Lease keys are derived here, not passed: half the
 * arguments to build, send and parse for every batch.
 */
export const LEASE_MISSING = script(`
${TAKE_LEASE}
local n = #KEYS
local present = redis.call('EXISTS', unpack(KEYS))
if present == n then return {} end
local out = {}
for i = 1, n do
  if present == 0 or redis.call('EXISTS', KEYS[i]) == 0 then
    out[i] = lease(KEYS[i] .. ':lease', ARGV[1] .. i, ARGV[2])
  else
    out[i] = false
  end
end
return out
`)

/**
 * KEYS: value1, value2, … (one slot); ARGV[1] token prefix, ARGV[2] lease ttl ms. Takes
 * or joins each key's lease (`<value key>:lease`) whatever the value holds (core found
 * bytes it cannot serve).
 */
export const LEASE_MANY = script(`
${TAKE_LEASE}
local out = {}
for i = 1, #KEYS do out[i] = lease(KEYS[i] .. ':lease', ARGV[1] .. i, ARGV[2]) end
return out
`)

/**
 * KEYS: value1, value2, … (one slot); ARGV: token1, bytes1, ttl1, token2, … Writes each
 * value only while its lease (`<value key>:lease`, same slot, derived here rather than
 * passed: half the keys to build and send per fill) still holds the token (no write or
 * delete since the miss). Returns 1/0 per item. `endLease`: the lease ends with the write
 * (`replaceMany`); otherwise it stays for the other missers that share it.
 */
function fillScript(endLease: boolean): Script {
  return script(`
local out = {}
for i = 1, #KEYS do
  local a = (i - 1) * 3
  local lease = KEYS[i] .. ':lease'
  if redis.call('GET', lease) == ARGV[a + 1] then
    redis.call('SET', KEYS[i], ARGV[a + 2], 'PX', ARGV[a + 3])${endLease ? "\n    redis.call('DEL', lease)" : ''}
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`)
}

export const FILL_MANY_WITH_LEASE = fillScript(false)
export const REPLACE_MANY_WITH_LEASE = fillScript(true)

/**
 * KEYS: tag version keys (one slot). Returns each tag's version; a tag with no version
 * (never bumped, evicted, or lost in a restart without persistence) gets one from the
 * server clock in microseconds, above every version handed out before, so an entry
 * recorded under an old version never matches again. Strings keep all 16 digits.
 */
export const TAG_VERSIONS = script(`
local out = {}
local now = nil
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    if not now then
      local t = redis.call('TIME')
      now = t[1] .. string.format('%06d', tonumber(t[2]))
    end
    redis.call('SET', KEYS[i], now, 'NX')
    v = redis.call('GET', KEYS[i])
  end
  out[i] = v
end
return out
`)

/** KEYS: tag version keys (one slot). Moves each to max(current + 1, server clock in µs). */
export const BUMP_TAGS = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  local nxt = math.max(cur + 1, now)
  redis.call('SET', KEYS[i], string.format('%.0f', nxt))
end
return 1
`)

/**
 * KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. Takes the lock, or answers who holds it:
 * the caller holds it when the answer is its own token (also when an earlier attempt with
 * that token timed out on the client but ran here: its lifetime then starts again, as a
 * new acquisition's would).
 */
export const ACQUIRE_LOCK = script(`
${TAKE_LEASE}
local holder, had = lease(KEYS[1], ARGV[1], ARGV[2])
if had and holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return holder
`)

/** KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. Compare-and-PEXPIRE. */
export const EXTEND_LOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
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
