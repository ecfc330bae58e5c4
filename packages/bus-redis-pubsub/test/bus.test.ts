import { fileURLToPath } from 'node:url'
import { createCache, type Cache, type Logger } from '@strata/core'
import { busDriverSuite, cacheBehaviourSuite } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { spawnChild, startRedis, type ChildHandle, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { channelName, encodeMessage, redisPubSubBus, WIRE_VERSION } from '../src/index.js'

const fixture = fileURLToPath(new URL('./fixtures/replica.mjs', import.meta.url))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls until `check` holds; bounded by count and time. */
async function eventually(
  check: () => Promise<boolean> | boolean,
  what: string,
  maxMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + maxMs
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (await check()) return
    await sleep(20)
  }
  throw new Error(`timed out waiting for ${what}`)
}

let redis: RedisHandle
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis.stop()
})

describe('conformance', () => {
  busDriverSuite('redisPubSubBus', {
    create: (n) => Array.from({ length: n }, () => redisPubSubBus({ redis: redis.url })),
    channel: `conf-${process.pid}`,
  })
})

let behaviourSeq = 0
cacheBehaviourSuite('real Redis, L1+L2+bus', {
  create: async () => {
    const c = createCache({
      prefix: `beh${behaviourSeq++}`,
      l1: memoryL1(),
      l2: redisL2({ redis: redis.url, commandTimeout: 1_000 }),
      bus: redisPubSubBus({ redis: redis.url }),
    })
    await c.ready()
    return c
  },
})

describe('two replicas in this process (separate connections)', () => {
  const opened: Cache[] = []
  const replica = (prefix: string, heartbeat = { interval: 100, timeout: 300 }) => {
    const c = createCache({
      prefix,
      ttl: '1h',
      l1: memoryL1(),
      l2: redisL2({ redis: redis.url, commandTimeout: 500 }),
      bus: redisPubSubBus({ redis: redis.url, heartbeat }),
    })
    c.on('error', () => undefined)
    opened.push(c)
    return c
  }
  afterAll(async () => {
    await Promise.all(opened.map((c) => c.close()))
  })

  it('a set on A reaches B: B drops its L1 copy and serves the new value', async () => {
    const a = replica('two')
    const b = replica('two')
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    await a.set('k', 'v2')
    await eventually(async () => (await b.get('k')) === 'v2', 'B to serve v2')
    await a.invalidateTags(['nope'])
    await a.delete('k')
    await eventually(async () => (await b.get('k')) === undefined, 'B to drop k')
    expect(b.stats().bus.received).toBeGreaterThanOrEqual(3)
  })

  it('garbage on our own channel is a gap (L1 cleared); forged sources do not grow the peer table without bound', async () => {
    const a = replica('forge')
    await a.ready()
    await a.set('k', 'v')
    expect(a.stats().l1.entries).toBe(1)
    const admin = new Redis(redis.url)
    await admin.publish(channelName('forge'), Buffer.from([WIRE_VERSION, 0xff, 0x00]))
    await eventually(() => a.stats().bus.resyncedCount === 1, 'the gap')
    expect(a.stats().l1.entries).toBe(0)
    // 20 000 forged sources: every one a valid message, each from a "new peer".
    const bus = redisPubSubBus({ redis: redis.url })
    const seen: number[] = []
    await bus.start({
      channel: 'forge-table',
      source: 'me',
      onMessage: () => seen.push(1),
      onState: () => undefined,
    })
    const pipe = admin.pipeline()
    for (let i = 0; i < 20_000; i++)
      pipe.publish(
        channelName('forge-table'),
        encodeMessage({ op: 'delete', source: `forged-${i}`, seq: 1, ts: 1, keys: ['x'] }),
      )
    await pipe.exec()
    await eventually(() => seen.length === 20_000, 'every forged message')
    expect(bus.peerCount).toBeLessThanOrEqual(10_000)
    await bus.close()
    admin.disconnect()
  })

  it('Redis down at boot: ready() rejects, L1 lifetimes are clamped meanwhile, the bus connects once Redis is up', async () => {
    const late = await startRedis()
    await late.kill()
    const c = createCache({
      prefix: 'late',
      ttl: '1h',
      degradedL1Ttl: 200,
      l1: memoryL1(),
      bus: redisPubSubBus({
        redis: late.url,
        startTimeout: 300,
        heartbeat: { interval: 100, timeout: 300 },
      }),
    })
    c.on('error', () => undefined)
    await expect(c.ready()).rejects.toMatchObject({ code: 'E_BUS_UNAVAILABLE' })
    expect(c.stats().bus.state).toBe('connecting')
    await c.getOrSet('k', () => 'v')
    expect(await c.get('k')).toBe('v')
    await sleep(250)
    expect(await c.get('k')).toBeUndefined() // clamped: no invalidation could have reached us
    await late.restart()
    await eventually(() => c.stats().bus.state === 'connected', 'the retried start', 15_000)
    await c.getOrSet('k', () => 'v2')
    await sleep(250)
    expect(await c.get('k')).toBe('v2') // connected: full lifetimes again
    await c.close()
    await late.stop()
  })

  it('CLIENT KILL TYPE pubsub → degraded (L1 cleared) → resynced after a heartbeat round trip', async () => {
    const a = replica('kill')
    await a.ready()
    const events: string[] = []
    a.on('bus:degraded', () => events.push('degraded'))
    a.on('bus:resynced', () => events.push('resynced'))
    await a.set('k', 'v')
    expect(a.stats().l1.entries).toBe(1)
    const admin = new Redis(redis.url)
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await eventually(() => events.includes('resynced'), 'resync')
    expect(events.slice(0, 2)).toEqual(['degraded', 'resynced'])
    expect(a.stats().l1.entries).toBe(0)
    expect(a.stats().bus.state).toBe('connected')
    expect(await a.get('k')).toBe('v')
    admin.disconnect()
  })

  it('health() says degraded while the bus is deaf and ok once resynced; both transitions are logged', async () => {
    const lines: { level: string; msg: string | undefined }[] = []
    const log = (level: string) => (_obj: object, msg?: string) => lines.push({ level, msg })
    const logger: Logger = {
      child: () => logger,
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
    }
    const c = createCache({
      prefix: 'health',
      l1: memoryL1(),
      l2: redisL2({ redis: redis.url }),
      bus: redisPubSubBus({ redis: redis.url, heartbeat: { interval: 250, timeout: 250 } }),
      logger,
    })
    await c.ready()
    expect((await c.health()).status).toBe('ok')
    const states: string[] = []
    c.on('bus:state', ({ state }) => {
      if (state === 'degraded') void c.health().then((h) => states.push(h.status))
    })
    const admin = new Redis(redis.url)
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await eventually(() => c.stats().bus.resyncedCount === 1, 'resync')
    await eventually(() => states.length === 1, 'health read while degraded')
    expect(states).toEqual(['degraded'])
    const h = await c.health()
    expect(h.status).toBe('ok')
    expect(h.bus.state).toBe('connected')
    expect(h.bus.since).toBeGreaterThan(0)
    expect(lines.filter((l) => l.level !== 'debug').map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'strata: bus degraded, L1 cleared or clamped',
        'strata: bus resynced',
      ]),
    )
    admin.disconnect()
    await c.close()
  })

  it('a frozen Redis (SIGSTOP) → DEGRADED within 2 × heartbeat interval, while still frozen; resynced after thaw', async () => {
    const own = await startRedis()
    const interval = 250
    const c = createCache({
      prefix: 'frozen',
      l1: memoryL1(),
      l2: redisL2({ redis: own.url, commandTimeout: 100 }),
      bus: redisPubSubBus({
        redis: own.url,
        heartbeat: { interval, timeout: 300 },
        publishTimeout: 100,
      }),
    })
    c.on('error', () => undefined)
    await c.ready()
    await c.set('k', 'v')
    await own.freeze()
    try {
      // The acceptance bound itself: detection = timeout + interval / 4 = 362 ms < 500 ms.
      await sleep(2 * interval)
      expect(c.stats().bus.state).toBe('degraded')
      expect(c.stats().l1.entries).toBe(0)
    } finally {
      await own.thaw()
    }
    await eventually(() => c.stats().bus.state === 'connected', 'resync after thaw')
    expect(c.stats().bus.resyncedCount).toBe(1)
    await c.close()
    await own.stop()
  })
})

interface Report {
  stats: { bus: { state: string; degradedCount: number; resyncedCount: number } }
  events: string[]
}

describe('4 replica processes, random workload, faults injected', () => {
  let truthDb: RedisHandle
  beforeAll(async () => {
    truthDb = await startRedis()
  })
  afterAll(async () => {
    await truthDb.stop()
  })

  async function runScenario(
    name: string,
    fault: (cacheRedis: RedisHandle, round: number, children: ChildHandle[]) => Promise<void>,
    rounds: number,
  ) {
    const cacheRedis = await startRedis()
    const truth = new Redis(truthDb.url)
    await truth.del('truth', 'progress')
    const children: ChildHandle[] = Array.from({ length: 4 }, () =>
      spawnChild(fixture, [], { CACHE_REDIS_URL: cacheRedis.url, TRUTH_REDIS_URL: truthDb.url }),
    )
    try {
      await Promise.all(children.map((c) => c.request({ cmd: 'init', prefix: name })))
      const ops = 25_000
      const work = Promise.all(
        children.map((c, replica) =>
          c.request<{ done: number; dirty: number }>(
            {
              cmd: 'workload',
              replica,
              replicas: 4,
              ops,
              keys: 300,
              seed: replica + 1,
              maxMs: 90_000,
            },
            120_000,
          ),
        ),
      )
      for (let round = 1; round <= rounds; round++) {
        // Inject each fault at a quarter, half, three quarters of the 100 000 operations.
        await eventually(
          async () => Number(await truth.get('progress')) >= (100_000 * round) / (rounds + 1),
          `progress ${round}`,
          60_000,
        )
        await fault(cacheRedis, round, children)
      }
      const results = await work
      // One more fault after the workload, then every replica writes every key it owns at
      // once, inside the gap: with no later writes to heal them, a lost invalidation would
      // leave old values in a peer's L1 (TTL 1 h) unless gap handling clears it.
      await fault(cacheRedis, rounds + 1, children)
      const failedBurst = await Promise.all(
        children.map((c, replica) =>
          c.request<number>({ cmd: 'burst', replica, replicas: 4, keys: 300 }),
        ),
      )
      expect(failedBurst.length).toBe(4)
      expect(results.reduce((n, r) => n + r.done, 0)).toBe(100_000)
      expect(results.every((r) => r.dirty === 0)).toBe(true)
      // Quiesce: every replica back to CONNECTED, then 2 s for the last messages.
      await eventually(
        async () => {
          const reports = await Promise.all(
            children.map((c) => c.request<Report>({ cmd: 'stats' })),
          )
          return reports.every((r) => r.stats.bus.state === 'connected')
        },
        'all replicas connected',
        20_000,
      )
      await sleep(2_000)
      const wrong = await Promise.all(
        children.map((c) => c.request<unknown[]>({ cmd: 'check', keys: 300 })),
      )
      expect(wrong.flat()).toEqual([])
      return await Promise.all(children.map((c) => c.request<Report>({ cmd: 'stats' })))
    } finally {
      await Promise.all(children.map((c) => c.kill()))
      truth.disconnect()
      await cacheRedis.stop()
    }
  }

  it('a set on one of 4 replica processes → every other replica serves the new value once the invalidation arrives', async () => {
    const cacheRedis = await startRedis()
    const children = Array.from({ length: 4 }, () =>
      spawnChild(fixture, [], { CACHE_REDIS_URL: cacheRedis.url, TRUTH_REDIS_URL: truthDb.url }),
    )
    try {
      await Promise.all(children.map((c) => c.request({ cmd: 'init', prefix: 'four' })))
      // Pub/sub is asynchronous: each replica serves the new value once the invalidation
      // has arrived (bounded wait; the propagation benchmark measures how long it takes).
      const writeAndAwait = async (writer: ChildHandle, value: string) => {
        await writer.request({ cmd: 'set', key: 'shared', value })
        for (const c of children) {
          await eventually(
            async () => (await c.request({ cmd: 'get', key: 'shared' })) === value,
            `${value} everywhere`,
            5_000,
          )
        }
      }
      for (let round = 0; round < 5; round++) {
        await writeAndAwait(children[round % 4] as ChildHandle, `v${round}`)
        await writeAndAwait(children[(round + 1) % 4] as ChildHandle, `w${round}`)
      }
    } finally {
      await Promise.all(children.map((c) => c.kill()))
      await cacheRedis.stop()
    }
  })

  it('CLIENT KILL TYPE pubsub three times during 100 000 operations → 0 keys differ from the source of truth', async () => {
    const reports = await runScenario(
      'killpubsub',
      async (r) => {
        const admin = new Redis(r.url)
        await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
        admin.disconnect()
      },
      3,
    )
    for (const r of reports) expect(r.stats.bus.degradedCount).toBeGreaterThanOrEqual(4)
  }, 180_000)

  it('Redis SIGKILL + restart (empty) under the same workload → 0 differing keys; every replica degraded→resynced', async () => {
    const reports = await runScenario(
      'restart',
      async (r) => {
        await r.kill()
        await sleep(300)
        await r.restart()
      },
      1,
    )
    for (const r of reports) {
      expect(r.stats.bus.degradedCount).toBeGreaterThanOrEqual(2)
      expect(r.stats.bus.resyncedCount).toBe(r.stats.bus.degradedCount)
    }
  }, 180_000)
})
