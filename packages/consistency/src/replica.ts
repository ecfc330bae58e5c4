/**
 * One replica process of the consistency checker: its own event loop, its own
 * connections, a cache with L1 + L2 + bus, and a workload against a versioned source
 * of truth kept in another Redis (never faulted). Driven over IPC by run.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { redisPubSubBus, type RedisPubSubBus } from '@strata/bus-redis-pubsub'
import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { Redis } from 'ioredis'
import { BUS_AUTH, CANARIES } from './forged.js'
import { l1HitProbe, refreshProbe, writeProbe, type ProbeEnv } from './probes.js'
import { TIMEOUTS, type WorkloadResult, type WorkloadSpec } from './protocol.js'

type Versioned = { v: number }

const sentinels = process.env['CACHE_SENTINELS']
/** A URL, or ioredis Sentinel options (`sentinel-failover`). */
const cacheRedis: string | { sentinels: { host: string; port: number }[]; name: string } = sentinels
  ? (JSON.parse(sentinels) as { sentinels: { host: string; port: number }[]; name: string })
  : (process.env['CACHE_REDIS_URL'] as string)
const truth = new Redis(process.env['TRUTH_REDIS_URL'] as string)
let cache: Cache
let ns: Cache
let bus: RedisPubSubBus
/** The `stampede` command's cache (distributedLock), built on first use. */
let lockCache: Cache | undefined
/** L1 hits on canary keys (see `canary`). */
let canaryL1Hits = 0
/** L1 hits on the keys the probes watch, by the cache's name for the key (`prefix::key`). */
const watched = new Map<string, number>()
let prefix = ''
let delay = 5
const events: string[] = []
/** When the bus degraded (ms since the epoch), for the time a fault took to be detected. */
const degradedAt: number[] = []
const now = () => performance.timeOrigin + performance.now()

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => (s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32
}

/** Reads the source, then takes `delay` ms before returning (the window a write can race). */
/** Loads of one key running at once in this process (reported; see Report.maxLoadsInFlight). */
const inFlight = new Map<string, number>()
let maxInFlight = 0
let unhandled = 0
process.on('unhandledRejection', () => unhandled++)

function loader(truthKey: string): () => Promise<Versioned> {
  return async () => {
    const n = (inFlight.get(truthKey) ?? 0) + 1
    inFlight.set(truthKey, n)
    maxInFlight = Math.max(maxInFlight, n)
    try {
      const v = Number((await truth.get(truthKey)) ?? 0)
      await sleep(delay)
      return { v }
    } finally {
      inFlight.set(truthKey, (inFlight.get(truthKey) ?? 1) - 1)
    }
  }
}

const tagOf = (i: number, groups: number) => `g${i % groups}`

const handlers: Record<string, (msg: Record<string, unknown>) => unknown> = {
  async init(msg) {
    prefix = msg['prefix'] as string
    cache = createCache({
      prefix,
      // Not in scenarios that saturate the CPU on purpose (see SCENARIOS in run.ts).
      ...(msg['hard'] === false ? {} : { timeouts: { hard: TIMEOUTS.hard } }),
      // refresh: short-lived entries refreshed ahead (refresh-ahead-outage), else 1 h.
      ...(msg['refresh'] === true ? { ttl: '1s', refreshAhead: 0.5, grace: '60s' } : { ttl: '1h' }),
      l1: memoryL1({ maxEntries: 100_000 }),
      l2: redisL2({
        redis: cacheRedis,
        codec: msg['codec'] === 'json' ? 'json' : 'msgpack',
        commandTimeout: TIMEOUTS.command,
        breaker: { failures: 50, openFor: 200 },
      }),
      bus: (bus = redisPubSubBus({
        redis: process.env['CACHE_BUS_URL'] ?? cacheRedis,
        heartbeat: { interval: 200, timeout: 600 },
        publishTimeout: TIMEOUTS.publish,
        ...(msg['auth'] === true ? { auth: BUS_AUTH } : {}),
      })),
    })
    ns = cache.namespace('ns')
    cache.on('error', () => undefined)
    cache.on('hit', (e) => {
      if (e.tier !== 'l1') return
      const n = watched.get(e.key)
      if (n !== undefined) watched.set(e.key, n + 1)
      if (e.key.includes('::canary')) canaryL1Hits++
    })
    cache.on('bus:degraded', (e) => {
      events.push(`degraded: ${e.reason}`)
      degradedAt.push(Date.now())
    })
    cache.on('bus:resynced', (e) => events.push(`resynced: ${e.reason}`))
    await cache.ready()
    return cache.stats().bus.state
  },

  async run(msg) {
    const spec = msg['spec'] as WorkloadSpec
    delay = spec.loaderDelayMs
    const random = rng(spec.seed)
    const pick = (n: number) => Math.floor(random() * n)
    const owned = (n: number) => {
      // A key this replica writes: only its owner writes a key, one write at a time, so
      // two writers' cache updates can never land in the opposite order of their source writes.
      const i = pick(Math.ceil(n / spec.replicas)) * spec.replicas + spec.replica
      return i < n ? i : spec.replica
    }
    const result: WorkloadResult = {
      reads: [],
      writes: [],
      failedWrites: 0,
      readErrors: 0,
      ops: 0,
      readP99Ms: 0,
      l1HitP99Ms: 0,
      readMaxMs: 0,
      writeMaxMs: 0,
      writeProbe: undefined,
      refreshProbe: undefined,
    }
    /** Times one cache write into `writeMaxMs`. */
    const timed = async <T>(call: () => Promise<T>): Promise<T> => {
      const t = performance.now()
      try {
        return await call()
      } finally {
        result.writeMaxMs = Math.max(result.writeMaxMs, performance.now() - t)
      }
    }
    const chains = new Map<string, Promise<void>>()
    const serial = (key: string, fn: () => Promise<void>) => {
      const next = (chains.get(key) ?? Promise.resolve()).then(fn, fn)
      chains.set(key, next)
      return next
    }
    const deadline = Date.now() + spec.maxMs
    const keep = spec.record !== false
    let remaining = spec.ops

    const write = async () => {
      if (random() < 0.5) {
        const i = owned(spec.rootKeys)
        const key = `k${i}`
        const del = random() < 0.5
        await serial(key, async () => {
          const v = await truth.incr(`truth:${key}`)
          try {
            await timed(() => (del ? cache.delete(key) : cache.set(key, { v })))
            if (keep) result.writes.push([key, v, now(), del ? 'delete' : 'set'])
          } catch {
            result.failedWrites++
          }
        })
      } else {
        const i = owned(spec.taggedKeys)
        const key = `t${i}`
        const tag = tagOf(i, spec.tagGroups)
        const viaTag = random() < 0.5
        await serial(key, async () => {
          const v = await truth.incr(`truth:${key}`)
          try {
            await timed(() =>
              viaTag ? ns.invalidateTags([tag]) : ns.set(key, { v }, { tags: [tag] }),
            )
            if (keep) result.writes.push([`ns:${key}`, v, now(), viaTag ? 'invalidateTags' : 'set'])
          } catch {
            result.failedWrites++
          }
        })
      }
    }

    const read = async () => {
      const r = random()
      const start = now()
      const t0 = performance.now()
      try {
        if (r < 0.45) {
          const key = `k${pick(spec.rootKeys)}`
          const got = await cache.getOrSet(key, loader(`truth:${key}`))
          if (keep) result.reads.push([key, got.v, start, 'getOrSet'])
        } else if (r < 0.65) {
          const keys = [...new Set(Array.from({ length: 4 }, () => `k${pick(spec.rootKeys)}`))]
          const got = await cache.getOrSetMany<Versioned>(keys, async (missing) => {
            const values = await truth.mget(...missing.map((k) => `truth:${k}`))
            await sleep(delay)
            return new Map(missing.map((k, j) => [k, { v: Number(values[j] ?? 0) }]))
          })
          if (keep)
            keys.forEach((k, j) =>
              result.reads.push([k, (got[j] as Versioned).v, start, 'getOrSetMany']),
            )
        } else {
          const i = pick(spec.taggedKeys)
          const key = `t${i}`
          const got = await ns.getOrSet(key, loader(`truth:${key}`), {
            tags: [tagOf(i, spec.tagGroups)],
          })
          if (keep) result.reads.push([`ns:${key}`, got.v, start, 'tagged'])
        }
      } catch {
        result.readErrors++
      }
      // The last 100 000 read latencies (fixed memory, also over a 10-minute soak).
      const ms = performance.now() - t0
      latencies[lat++ % latencies.length] = ms
      result.readMaxMs = Math.max(result.readMaxMs, ms)
    }
    const latencies = new Float64Array(100_000)
    let lat = 0

    const worker = async () => {
      while (remaining > 0 && Date.now() < deadline) {
        remaining--
        result.ops++
        await (random() < spec.writeShare ? write() : read())
      }
    }
    const env: ProbeEnv = {
      cache,
      prefix,
      replica: spec.replica,
      l1HitsOn: (key) => {
        const full = `${prefix}::${key}`
        const n = watched.get(full)
        if (n === undefined) watched.set(full, 0)
        return n ?? 0
      },
      running: () => remaining > 0 && Date.now() < deadline,
    }
    const raw = spec.writeProbe ? new Redis(cacheRedis as string) : undefined
    try {
      const [l1HitP99Ms, wp, rp] = await Promise.all([
        l1HitProbe(env),
        raw ? writeProbe(env, raw) : undefined,
        spec.hotKeys ? refreshProbe(env, spec.hotKeys) : undefined,
        ...Array.from({ length: spec.concurrency }, worker),
      ])
      result.l1HitP99Ms = l1HitP99Ms
      result.writeProbe = wp
      result.refreshProbe = rp
    } finally {
      raw?.disconnect()
    }
    await Promise.all(chains.values())
    const seen = latencies.subarray(0, Math.min(lat, latencies.length)).sort()
    result.readP99Ms = seen[Math.floor(seen.length * 0.99)] ?? 0
    return result
  },

  /** After the quiesce: every key read through the cache, compared with the source. */
  async check(msg) {
    const rootKeys = msg['rootKeys'] as number
    const taggedKeys = msg['taggedKeys'] as number
    const tagGroups = msg['tagGroups'] as number
    const wrong: [string, number, number][] = []
    for (let i = 0; i < rootKeys; i++) {
      const key = `k${i}`
      const got = await cache.getOrSet(key, loader(`truth:${key}`))
      const want = Number((await truth.get(`truth:${key}`)) ?? 0)
      if (got.v !== want) wrong.push([key, got.v, want])
    }
    for (let i = 0; i < taggedKeys; i++) {
      const key = `t${i}`
      const got = await ns.getOrSet(key, loader(`truth:${key}`), { tags: [tagOf(i, tagGroups)] })
      const want = Number((await truth.get(`truth:${key}`)) ?? 0)
      if (got.v !== want) wrong.push([`ns:${key}`, got.v, want])
    }
    return wrong
  },

  /** A replica whose event loop is stuck (a long synchronous task): nothing runs meanwhile. */
  block(msg) {
    const until = Date.now() + (msg['ms'] as number)
    for (let i = 0; i < 1e12 && Date.now() < until; i++);
    return true
  },

  /**
   * Canary keys nobody writes: `set` writes them (one replica), `warm` reads them into
   * this replica's L1, `check` reads them again and answers how many were L1 hits.
   */
  async canary(msg) {
    const before = canaryL1Hits
    if (msg['op'] === 'set') for (const k of CANARIES) await cache.set(k, { v: 0 })
    else for (const k of CANARIES) await cache.get(k)
    return canaryL1Hits - before
  },

  /**
   * `stampede-under-stall`: `callers` concurrent getOrSet of one cold key through a cache
   * of its own with `distributedLock`; each loader call is logged in the source Redis
   * (`loads`, with this replica's number and the time) before it waits `loadMs`.
   */
  async stampede(msg) {
    lockCache ??= createCache({
      prefix: msg['prefix'] as string,
      l1: memoryL1({ maxEntries: 1_000 }),
      l2: redisL2({ redis: cacheRedis, commandTimeout: 300 }),
      distributedLock: true,
      lockTtl: msg['lockTtl'] as number,
    })
    lockCache.on('error', () => undefined)
    const c = lockCache
    await c.ready()
    const loader = async () => {
      await truth.rpush(
        `loads:${msg['key'] as string}`,
        `${msg['replica'] as number}:${Date.now()}`,
      )
      await sleep(msg['loadMs'] as number)
      return { v: 1 }
    }
    let ok = 0
    let errors = 0
    await Promise.all(
      Array.from({ length: msg['callers'] as number }, () =>
        c.getOrSet<Versioned>(msg['key'] as string, loader).then(
          (v) => (v.v === 1 ? ok++ : errors++),
          () => errors++,
        ),
      ),
    )
    return { ok, errors }
  },

  /** With `gc`, after a full collection (the replicas run with --expose-gc): the live heap. */
  stats(msg) {
    const gc = (globalThis as { gc?: () => void }).gc
    if (msg['gc'] === true && gc) gc()
    return {
      stats: cache.stats(),
      events,
      maxInFlight,
      unhandled,
      rejected: bus.rejected,
      degradedAt,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      heapMb: process.memoryUsage().heapUsed / 2 ** 20,
    }
  },

  async close() {
    await lockCache?.close()
    await (cache as Cache | undefined)?.close()
    truth.disconnect()
    return true
  },
}

process.on('message', (raw) => {
  const msg = raw as Record<string, unknown> & { id: number; cmd: string }
  const handler = handlers[msg.cmd]
  void (async () => {
    try {
      if (!handler) throw new Error(`unknown command ${msg.cmd}`)
      process.send?.({ id: msg.id, result: await handler(msg) })
    } catch (err) {
      process.send?.({ id: msg.id, error: String((err as Error).stack ?? err) })
    }
  })()
})
