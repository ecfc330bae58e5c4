import { createCache, errors, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { startRedis, waitFor, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  BusAuth,
  channelName,
  encodeMessage,
  redisPubSubBus,
  type BusAuthOptions,
  type RedisPubSubBus,
} from '../src/index.js'

/**
 * The authenticated bus against a real redis-server: signed invalidations flow (with
 * key rotation), and what an attacker with PUBLISH rights sends — garbage, unsigned
 * messages, tampered frames, frames under an unknown key, replays — is dropped and
 * counted without evicting anything or declaring a gap.
 */
const K1 = 'k1-secret-of-at-least-32-bytes-000000'
const K2 = 'k2-secret-of-at-least-32-bytes-111111'

let server: RedisHandle
let admin: Redis
const open: Cache[] = []
beforeAll(async () => {
  server = await startRedis()
  admin = new Redis(server.url)
})
afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
})
afterAll(async () => {
  admin.disconnect()
  await server.stop()
})

function replica(prefix: string, auth?: BusAuthOptions): { cache: Cache; bus: RedisPubSubBus } {
  const bus = redisPubSubBus({
    redis: server.url,
    heartbeat: { interval: 100, timeout: 400 },
    ...(auth ? { auth } : {}),
  })
  const cache = createCache({
    prefix,
    l1: memoryL1(),
    l2: redisL2({ redis: server.url, commandTimeout: 1_000 }),
    bus,
  })
  open.push(cache)
  return { cache, bus }
}

const total = (bus: RedisPubSubBus) => Object.values(bus.rejected).reduce((n, x) => n + x, 0)

describe('authenticated bus', () => {
  it('signed invalidations flow between replicas signing with different keys of one key set', async () => {
    const keys = { k1: K1, k2: K2 }
    const a = replica('auth-rot', { keys, activeKeyId: 'k1' })
    const b = replica('auth-rot', { keys, activeKeyId: 'k2' })
    await Promise.all([a.cache.ready(), b.cache.ready()])
    await a.cache.set('x', 1)
    expect(await b.cache.get('x')).toBe(1)
    await a.cache.set('x', 2)
    await waitFor(async () => (await b.cache.get('x')) === 2, 5_000, 'a → b')
    await b.cache.set('x', 3)
    await waitFor(async () => (await a.cache.get('x')) === 3, 5_000, 'b → a')
    expect(a.bus.rejected).toEqual({ unsigned: 0, unknownKey: 0, forged: 0, replayed: 0 })
    expect(b.bus.rejected).toEqual({ unsigned: 0, unknownKey: 0, forged: 0, replayed: 0 })
    expect(b.cache.stats().bus.degradedCount).toBe(0)
  })

  it('garbage, unsigned, tampered, unknown-key, stale and replayed messages: dropped, counted, nothing evicted', async () => {
    const auth = { keys: { k1: K1 }, activeKeyId: 'k1' }
    const prefix = 'auth-attack'
    const a = replica(prefix, auth)
    const victim = replica(prefix, auth)
    await Promise.all([a.cache.ready(), victim.cache.ready()])
    // Capture one valid signed invalidation off the channel, as an eavesdropper would.
    const spy = new Redis(server.url)
    const captured: Buffer[] = []
    spy.on('messageBuffer', (_c: Buffer, m: Buffer) => captured.push(m))
    await spy.subscribe(channelName(prefix))
    await a.cache.delete('unrelated')
    const isDelete = (m: Buffer) => m.includes('unrelated') // not a heartbeat
    await waitFor(() => captured.some(isDelete), 5_000, 'a captured message')
    spy.disconnect()
    const valid = captured.find(isDelete) as Buffer

    await a.cache.set('v', 'value')
    expect(await victim.cache.get('v')).toBe('value') // now in the victim's L1
    const entries = victim.cache.stats().l1.entries
    const target = `${prefix}::v`
    const msg = (source: string, ts = Date.now()) =>
      encodeMessage({ op: 'delete', source, seq: 1, ts, keys: [target] })
    const tampered = Buffer.from(valid)
    const last = tampered.length - 1
    tampered.writeUInt8(tampered.readUInt8(last) ^ 0xff, last)
    const evil = new BusAuth({ keys: { evil: 'e'.repeat(32) }, activeKeyId: 'evil' })
    const stolen = new BusAuth(auth) // a leaked key cannot replay old messages either
    const attacks = [
      Buffer.from('not a message at all'),
      msg('attacker'), // well-formed, unsigned
      tampered,
      evil.sign(msg('attacker')),
      stolen.sign(msg('long-gone', Date.now() - 120_000)), // older than maxAge
      valid, // replayed: its seq is not above what the victim heard from a
    ]
    for (const frame of attacks) await admin.publish(channelName(prefix), frame)
    await waitFor(() => total(victim.bus) >= attacks.length, 5_000, 'every attack counted')
    expect(victim.bus.rejected).toEqual({ unsigned: 2, unknownKey: 1, forged: 1, replayed: 2 })
    expect(victim.cache.stats().l1.entries).toBe(entries) // nothing evicted
    expect(victim.cache.stats().bus.degradedCount).toBe(0) // no gap, no L1 clear
    // Legitimate writes still reach the victim.
    await a.cache.set('v', 'new')
    await waitFor(async () => (await victim.cache.get('v')) === 'new', 5_000, 'legit write')
  })

  it('without auth, an unreadable message is a gap: L1 cleared (never wrong data)', async () => {
    const prefix = 'no-auth'
    const a = replica(prefix)
    const b = replica(prefix)
    await Promise.all([a.cache.ready(), b.cache.ready()])
    await a.cache.set('v', 'value')
    expect(await b.cache.get('v')).toBe('value')
    await admin.publish(channelName(prefix), Buffer.from('not a message at all'))
    await waitFor(() => b.cache.stats().bus.resyncedCount > 0, 5_000, 'the gap')
    expect(b.cache.stats().l1.entries).toBe(0)
    expect(await b.cache.get('v')).toBe('value') // read again from L2
    expect(b.bus.rejected).toEqual({ unsigned: 0, unknownKey: 0, forged: 0, replayed: 0 })
  })

  it('refuses weak or inconsistent auth options, naming them', () => {
    const bad: unknown[] = [
      { keys: { k1: 'short' }, activeKeyId: 'k1' },
      { keys: { k1: K1 }, activeKeyId: 'k2' },
      { keys: { 'bad id!': K1 }, activeKeyId: 'bad id!' },
      { keys: { k1: K1 }, activeKeyId: 'k1', maxAge: 0 },
    ]
    for (const auth of bad) {
      expect(() => redisPubSubBus({ redis: server.url, auth: auth as BusAuthOptions })).toThrow(
        expect.objectContaining({ code: errors.E_INVALID_OPTION }),
      )
    }
  })
})
