import { defineScripts } from '@strata/core'
import type { Cluster, Redis } from 'ioredis'

/**
 * The Bloom filter's Redis side, one hash tag per repository (one slot on a cluster):
 *
 *   <tag>        the live bitmap (m bits)
 *   <tag>:meta   hash { m, k } of the live bitmap: every replica hashes with these
 *   <tag>:build  while a rebuild runs: "<build key> <m> <k>" (adds land in both; the build
 *                key shares the tag, so scripts reach it on a cluster)
 *   <tag>:turn   the rebuild turn: SET NX PX rebuildEvery by the replica that rebuilds
 *
 * Positions are computed by the client (one 64-bit xxHash, double hashing); a client
 * whose m differs from the live one (a rebuild changed the sizing) is told so and
 * refreshes: its check passes (fail-open) meanwhile.
 */

/** KEYS: live, meta. ARGV: m, k, then k positions per id. → per id 1/0; {-1} no filter; {-2} sizing changed. */
const CHECK = `
local m = redis.call('HGET', KEYS[2], 'm')
if not m or redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if m ~= ARGV[1] then return {-2} end
local k = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, k do
  local all = 1
  for j = i, i + k - 1 do
    if redis.call('GETBIT', KEYS[1], ARGV[j]) == 0 then all = 0 break end
  end
  out[#out + 1] = all
end
return out
`

/**
 * KEYS: live, meta, build marker. ARGV: m, L, L live positions, then the configured m, k
 * and positions for them. Sets the live bits and, while a rebuild with that sizing runs,
 * the build bits too — in one step, so a swap cannot fall between them. Returns '' when
 * done; the marker when a rebuild with another sizing runs (the caller adds to it with
 * SET_BITS_IF); -1 no filter; -2 the live sizing changed.
 */
const ADD = `
local m = redis.call('HGET', KEYS[2], 'm')
if not m then return -1 end
if m ~= ARGV[1] then return -2 end
local L = tonumber(ARGV[2])
for i = 3, 2 + L do redis.call('SETBIT', KEYS[1], ARGV[i], 1) end
local mk = redis.call('GET', KEYS[3])
if not mk then return '' end
local build, bm, bk = string.match(mk, '^(%S+) (%d+) (%d+)$')
if bm ~= ARGV[3 + L] or bk ~= ARGV[4 + L] then return mk end
for i = 5 + L, #ARGV do redis.call('SETBIT', build, ARGV[i], 1) end
return ''
`

/** KEYS: build key, marker. ARGV: expected marker, positions. 0 if the marker changed (swapped). */
const SET_BITS_IF = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV do redis.call('SETBIT', KEYS[1], ARGV[i], 1) end
return 1
`

/** KEYS: a build bitmap. ARGV: positions. Sets them; the key expires in 1 h unless swapped in (a builder that died leaves nothing behind). */
const SET_BITS = `
for i = 1, #ARGV do redis.call('SETBIT', KEYS[1], ARGV[i], 1) end
if redis.call('TTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], 3600000) end
return #ARGV
`

/** KEYS: build key, live, meta, marker. ARGV: m, k, expected marker. Atomic swap. */
const SWAP = `
if redis.call('GET', KEYS[4]) ~= ARGV[3] then return 0 end
redis.call('SETBIT', KEYS[1], tonumber(ARGV[1]) - 1, redis.call('GETBIT', KEYS[1], tonumber(ARGV[1]) - 1))
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
redis.call('HSET', KEYS[3], 'm', ARGV[1], 'k', ARGV[2])
redis.call('DEL', KEYS[4])
return 1
`

export interface BloomScripts {
  strataBloomCheck(live: string, meta: string, ...args: (string | number)[]): Promise<number[]>
  strataBloomAdd(
    live: string,
    meta: string,
    marker: string,
    ...args: (string | number)[]
  ): Promise<string | number>
  strataBloomSet(key: string, ...positions: number[]): Promise<number>
  strataBloomSetIf(build: string, marker: string, ...args: (string | number)[]): Promise<number>
  strataBloomSwap(
    build: string,
    live: string,
    meta: string,
    marker: string,
    m: number,
    k: number,
    expected: string,
  ): Promise<number>
}

export function bloomScripts(redis: Redis | Cluster): BloomScripts {
  return defineScripts<BloomScripts>(redis, {
    strataBloomCheck: { keys: 2, lua: CHECK },
    strataBloomAdd: { keys: 3, lua: ADD },
    strataBloomSet: { keys: 1, lua: SET_BITS },
    strataBloomSetIf: { keys: 2, lua: SET_BITS_IF },
    strataBloomSwap: { keys: 4, lua: SWAP },
  })
}
