import { createCache, errors } from '@strata/core'
import { cacheBehaviourSuite } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { startRedis, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisPubSubBus } from '../src/index.js'

let redis: RedisHandle
let admin: Redis
beforeAll(async () => {
  redis = await startRedis()
  admin = new Redis(redis.url)
})
afterAll(async () => {
  admin.disconnect()
  await redis.stop()
})

/** The URL of an ACL user with these rules (keys and channels of prefix `acl*` only). */
async function user(name: string, rules: string[]): Promise<string> {
  await admin.call(
    'ACL',
    'SETUSER',
    name,
    'reset',
    'on',
    '>pw',
    '~{acl*',
    '~__strata:tag:acl*',
    '&strata:v1:acl*',
    ...rules,
  )
  const u = new URL(redis.url)
  u.username = name
  u.password = 'pw'
  return u.toString()
}

/** The rules docs/operations.md gives for a Strata user (L2 + bus). */
const LEAST = [
  '+get',
  '+getrange',
  '+set',
  '+mget',
  '+exists',
  '+unlink',
  '+del',
  '+pexpire',
  '+time',
  '+evalsha',
  '+eval',
  '+scan',
  '+publish',
  '+subscribe',
  '+info',
  '+ping',
]

// The whole behaviour suite, as the documented least-privilege user (L2 and bus).
let leastUrl: Promise<string> | undefined
let behaviourSeq = 0
cacheBehaviourSuite('as the least-privilege ACL user, L1+L2+bus', {
  create: async () => {
    const url = await (leastUrl ??= user('strata-suite', LEAST))
    const c = createCache({
      prefix: `acl-beh${behaviourSeq++}`,
      l1: memoryL1(),
      l2: redisL2({ redis: url, commandTimeout: 1_000 }),
      bus: redisPubSubBus({ redis: url }),
    })
    await c.ready()
    return c
  },
})

describe('least-privilege Redis users', () => {
  it('the documented ACL is enough: ready() resolves and reads, writes, tags and the bus work', async () => {
    const url = await user('strata-ok', LEAST)
    const c = createCache({
      prefix: 'acl1',
      l1: memoryL1(),
      l2: redisL2({ redis: url }),
      bus: redisPubSubBus({ redis: url }),
    })
    await c.ready()
    expect(await c.getOrSet('k', () => 'v', { tags: ['t'] })).toBe('v')
    await c.invalidateTags(['t'])
    await c.set('k2', 'v2')
    await c.delete('k2')
    expect(c.stats()).toMatchObject({ errors: 0, l2: { errors: 0 }, bus: { state: 'connected' } })
    await c.close()
  })

  it('a user missing a command the scripts run: an error event, stats().l2.probeError and a rejected ready()', async () => {
    for (const command of ['pexpire', 'getrange']) {
      const url = await user(
        `strata-no${command}`,
        LEAST.filter((r) => r !== `+${command}`),
      )
      const c = createCache({ prefix: 'acl2', l1: memoryL1(), l2: redisL2({ redis: url }) })
      const seen: string[] = []
      c.on('error', (e) => seen.push(e.error.code))
      await expect(c.ready()).rejects.toMatchObject({ code: errors.E_NO_PERMISSION })
      expect(seen).toContain(errors.E_NO_PERMISSION)
      expect(c.stats().l2.probeError).toMatch(new RegExp(command.toUpperCase()))
      expect(c.stats().l2.probeError).toMatch(/can't run/)
      await c.close()
    }
  })

  it('a user without channel rights or INFO: the bus never reports connected, L1 stays clamped, ready() rejects', async () => {
    for (const [name, rules, extra, prefix] of [
      ['strata-nochannel', LEAST, ['resetchannels'], 'acl3a'],
      ['strata-noinfo', LEAST.filter((r) => r !== '+info'), [], 'acl3b'],
    ] as const) {
      const url = await user(name, [...rules])
      if (extra.length > 0) await admin.call('ACL', 'SETUSER', name, ...extra)
      const c = createCache({
        prefix,
        degradedL1Ttl: 200,
        l1: memoryL1(),
        l2: redisL2({ redis: url }),
        bus: redisPubSubBus({ redis: url, startTimeout: 1_000 }),
      })
      c.on('error', () => undefined)
      await expect(c.ready()).rejects.toMatchObject({ code: errors.E_BUS_UNAVAILABLE })
      expect(c.stats().bus.state).toBe('connecting')
      await c.getOrSet('k', () => 'v')
      await new Promise((r) => setTimeout(r, 250))
      expect(await c.get('k')).toBe('v') // from L2: the L1 copy lived 200 ms at most
      expect(c.stats().l2.hits).toBe(1)
      await c.close()
    }
  })
})
