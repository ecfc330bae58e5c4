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
 * What a miss leaves in an empty value key while it loads (a placeholder, PX `leaseTtl`):
 * these bytes, then the load's token. No codec writes a leading zero byte, and the driver
 * answers a placeholder as a miss carrying it as the token (its loader's lease).
 */
export const PLACEHOLDER = '\u0000strata:lease:'
const PLACEHOLDER_LUA = "'\\0strata:lease:'"

/**
 * KEYS[1]: a value key; ARGV[1] token prefix, ARGV[2] lease ttl ms. The read of one key:
 * a hit is a pure read (one GET); an empty key gets a placeholder holding a new token
 * (`<placeholder><prefix>1`). Returns what the key holds then: the value, another
 * misser's placeholder (joined), or the new one.
 */
export const GET_WITH_LEASE = script(`
local v = redis.call('GET', KEYS[1])
if v then return v end
v = ${PLACEHOLDER_LUA} .. ARGV[1] .. 1
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v
`)

/**
 * KEYS: value1, value2, … (one slot); ARGV[1] token prefix, ARGV[2] lease ttl ms. The
 * lease half of a batched read, sent just before a plain MGET of the same keys (values
 * never pass through Lua: each one in and out of it costs Redis about as much as a
 * whole MGET's share). Puts a placeholder in every value key that does not exist and
 * returns them in key order (nil where the key exists: the MGET shows its value or the
 * placeholder another misser left), or an empty array when every key exists (one
 * EXISTS, nothing written: a batch of hits is a pure read).
 */
export const LEASE_MISSING = script(`
local n = #KEYS
local present = redis.call('EXISTS', unpack(KEYS))
if present == n then return {} end
local out = {}
for i = 1, n do
  if present == 0 or redis.call('EXISTS', KEYS[i]) == 0 then
    out[i] = ${PLACEHOLDER_LUA} .. ARGV[1] .. i
    redis.call('SET', KEYS[i], out[i], 'PX', ARGV[2])
  else
    out[i] = false
  end
end
return out
`)

/**
 * KEYS: value1, value2, … (one slot); ARGV[1] token prefix, ARGV[2] lease ttl ms. A
 * token for each key whatever it holds (core found bytes it cannot serve, or replaces a
 * fresh entry): the placeholder a loading misser left (joined), else the key's lease
 * (`<value key>:lease`), taken or joined. Only the first bytes of a value are read.
 */
export const LEASE_MANY = script(`
${TAKE_LEASE}
local p = ${PLACEHOLDER_LUA}
local out = {}
for i = 1, #KEYS do
  if redis.call('GETRANGE', KEYS[i], 0, #p - 1) == p then
    out[i] = redis.call('GET', KEYS[i])
  else
    out[i] = lease(KEYS[i] .. ':lease', ARGV[1] .. i, ARGV[2])
  end
end
return out
`)

/**
 * KEYS: value1, value2, … (one slot); ARGV[1] lease ttl ms, then per item: token, bytes,
 * ttl. Writes each value only while its token holds; returns 1/0 per item.
 * - A placeholder token (a miss of an empty key): one `SET XX GET` writes over the key
 *   only if it exists and says what it held. It held this placeholder: stored. It held
 *   something else (a write, or the fill of another misser that joined the same
 *   placeholder, got there first): that is put back, under this fill's ttl (a value) or
 *   the lease ttl (another placeholder), and the fill is refused; its own bytes are never
 *   seen. Gone (a delete, or the placeholder expired): nothing was written.
 * - A lease token (the key held bytes): the fill writes while `<value key>:lease` (same
 *   slot, derived here) still holds the token. `endLease`: the lease ends with the write
 *   (`replaceMany`); otherwise it stays for the other loads that share it.
 */
function fillScript(endLease: boolean): Script {
  return script(`
local p = ${PLACEHOLDER_LUA}
local out = {}
for i = 1, #KEYS do
  local a = (i - 1) * 3 + 1
  local t = ARGV[a + 1]
  if string.byte(t, 1) == 0 then
    local old = redis.call('SET', KEYS[i], ARGV[a + 2], 'XX', 'GET', 'PX', ARGV[a + 3])
    if old == t then
      out[i] = 1
    else
      if old then
        if string.sub(old, 1, #p) == p then
          redis.call('SET', KEYS[i], old, 'PX', ARGV[1])
        else
          redis.call('SET', KEYS[i], old, 'KEEPTTL')
        end
      end
      out[i] = 0
    end
  else
    local lease = KEYS[i] .. ':lease'
    if redis.call('GET', lease) == t then
      redis.call('SET', KEYS[i], ARGV[a + 2], 'PX', ARGV[a + 3])${endLease ? "\n      redis.call('DEL', lease)" : ''}
      out[i] = 1
    else
      out[i] = 0
    end
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
