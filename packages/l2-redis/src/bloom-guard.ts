import {
  CacheError,
  errors,
  invalidOption,
  toMs,
  withDeadline,
  type BoundGuard,
  type Duration,
  type Guard,
  type GuardBinding,
  type IoredisClientLike,
  type GuardStats,
  type RebuildReport,
} from '@strata/core'
import type { Cluster, Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import xxhash from 'xxhash-wasm'
import { bloomScripts, type BloomScripts } from './bloom-scripts.js'
import { RedisL2 } from './redis-l2.js'

const PKG = 'l2-redis'

type Progress = (ids: number) => void

export interface RedisBloomGuardOptions {
  /** How many ids the filter is sized for. */
  expectedItems: number
  /** The false-positive rate at `expectedItems` (0 < rate < 1). */
  falsePositiveRate: number
  /** Every id in the source, for the first build and for rebuilds. */
  ids?: () => AsyncIterable<string> | Iterable<string>
  /** One replica rebuilds the filter this often (ids deleted from the source drop out). */
  rebuildEvery?: Duration
  /** The connection; by default the cache's `redisL2` connection. */
  redis?: Redis | Cluster | IoredisClientLike
  /** A check that has not answered after this long passes (fail-open). @default 200ms */
  timeout?: Duration
  /**
   * A rebuild waits this long after announcing itself before it reads `ids()`, so a write
   * whose id was added just before is in the source by then. @default 5s
   */
  settle?: Duration
}

/** Bits and hash count for n items at false-positive rate p. */
export function bloomSizing(n: number, p: number): { m: number; k: number } {
  const m = Math.ceil((-n * Math.log(p)) / Math.LN2 ** 2)
  const k = Math.min(30, Math.max(1, Math.round((m / n) * Math.LN2)))
  return { m, k }
}

let hasher: Promise<Awaited<ReturnType<typeof xxhash>>> | undefined
const encoder = new TextEncoder()

/** k bit positions of an id in m bits: one 64-bit xxHash, double hashing (h1 + i·h2). */
export async function positions(ids: readonly string[], m: number, k: number): Promise<number[]> {
  const h64 = await (hasher ??= xxhash())
  const out: number[] = []
  for (const id of ids) {
    const h = h64.h64Raw(encoder.encode(id))
    const h1 = Number(h & 0xffffffffn)
    const h2 = Number((h >> 32n) | 1n)
    for (let i = 0; i < k; i++) out.push((h1 + i * h2) % m)
  }
  return out
}

/**
 * A penetration guard shared by every replica: a Bloom filter in a Redis bitmap (see
 * docs/patterns.md#penetration-guard). Checks fail open; writes add ids before they are
 * published; rebuilds go to a new key and are swapped in atomically.
 */
export function redisBloomGuard(options: RedisBloomGuardOptions): Guard {
  const n = options.expectedItems
  const p = options.falsePositiveRate
  if (!Number.isSafeInteger(n) || n < 1 || n > 1e9) {
    throw invalidOption(PKG, 'redisBloomGuard: expectedItems', 'must be an integer in [1, 1e9]')
  }
  if (typeof p !== 'number' || !(p > 0 && p < 1)) {
    throw invalidOption(PKG, 'redisBloomGuard: falsePositiveRate', 'must be in (0, 1)')
  }
  const sizing = bloomSizing(n, p)
  if (sizing.m > 2 ** 32) throw invalidOption(PKG, 'redisBloomGuard', 'needs more than 2^32 bits')
  if (options.ids !== undefined && typeof options.ids !== 'function') {
    throw invalidOption(PKG, 'redisBloomGuard: ids', 'must be a function returning an iterable')
  }
  const o = {
    ...options,
    sizing,
    timeout: toMs(options.timeout, 'redisBloomGuard: timeout', PKG) ?? 200,
    settle: toMs(options.settle, 'redisBloomGuard: settle', PKG) ?? 5_000,
    rebuildEvery: toMs(options.rebuildEvery, 'redisBloomGuard: rebuildEvery', PKG),
  }
  return {
    kind: 'guard',
    bind(binding: GuardBinding): BoundGuard {
      const redis =
        (o.redis as Redis | Cluster | undefined) ??
        (binding.l2 instanceof RedisL2 ? binding.l2.client : undefined)
      if (!redis) {
        throw invalidOption(
          PKG,
          'redisBloomGuard',
          "needs `redis` when the cache's L2 is not redisL2",
        )
      }
      return new BloomGuard(o, redis, binding)
    },
  }
}

type Resolved = RedisBloomGuardOptions & {
  sizing: { m: number; k: number }
  timeout: number
  settle: number
  rebuildEvery: number | undefined
}

const SAMPLE_MS = 30_000

class BloomGuard implements BoundGuard {
  readonly #o: Resolved
  readonly #redis: Redis | Cluster
  readonly #r: BloomScripts
  readonly #b: GuardBinding
  readonly #live: string
  readonly #meta: string
  readonly #marker: string
  readonly #turn: string
  /** The live filter's sizing (from its meta), or the configured one before it exists. */
  #sizing: { m: number; k: number }
  readonly #timers: NodeJS.Timeout[] = []
  readonly #stats: GuardStats = {
    checked: 0,
    rejected: 0,
    failOpen: 0,
    added: 0,
    fillRatio: 0,
    estimatedFalsePositiveRate: 0,
    rebuilds: 0,
    lastRebuild: undefined,
  }
  #building: Promise<RebuildReport> | undefined
  /** The rebuild that starts when `#building` ends, shared by every caller until it starts. */
  #queued: { listeners: Progress[]; done: Promise<RebuildReport> } | undefined
  #lastReport = 0
  #closed = false

  constructor(o: Resolved, redis: Redis | Cluster, b: GuardBinding) {
    this.#o = o
    this.#redis = redis
    this.#r = bloomScripts(redis)
    this.#b = b
    const tag = `{${b.prefix}:bloom:${b.repository}}`
    this.#live = tag
    this.#meta = `${tag}:meta`
    this.#marker = `${tag}:build`
    this.#turn = `${tag}:turn`
    this.#sizing = o.sizing
    this.#boot(0)
    this.#every(SAMPLE_MS, () => this.#sample())
    if (o.rebuildEvery) this.#every(Math.min(o.rebuildEvery, 60_000), () => this.#maybeBuild())
  }

  /** Reads the live sizing and builds a missing filter; retried while Redis is not reachable yet. */
  #boot(attempt: number): void {
    if (this.#closed) return
    this.#refresh()
      .then(() => this.#maybeBuild())
      .catch((err: unknown) => {
        this.#report(err, 'guard')
        if (attempt >= 10) return
        const delay = Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random())
        const t = setTimeout(() => this.#boot(attempt + 1), delay)
        t.unref()
      })
  }

  #every(ms: number, fn: () => Promise<unknown>): void {
    const t = setInterval(() => void fn().catch((err: unknown) => this.#report(err, 'guard')), ms)
    t.unref()
    this.#timers.push(t)
  }

  async mightContain(ids: readonly string[]): Promise<boolean[]> {
    this.#stats.checked += ids.length
    const pass = () => {
      this.#stats.failOpen += ids.length
      return ids.map(() => true)
    }
    try {
      const { m, k } = this.#sizing
      const pos = await positions(ids, m, k)
      const r = await this.#deadline(this.#r.strataBloomCheck(this.#live, this.#meta, m, k, ...pos))
      if (r[0] === -1) {
        void this.#maybeBuild()
        return pass()
      }
      if (r[0] === -2) {
        void this.#refresh()
        return pass()
      }
      const out = r.map((x) => x === 1)
      for (const x of out) if (!x) this.#stats.rejected++
      return out
    } catch (err) {
      this.#report(err, 'guard.check')
      return pass()
    }
  }

  async add(ids: readonly string[]): Promise<void> {
    const conf = this.#o.sizing
    const confPos = await positions(ids, conf.m, conf.k)
    for (let attempt = 0; attempt < 3; attempt++) {
      const { m, k } = this.#sizing
      const live = m === conf.m && k === conf.k ? confPos : await positions(ids, m, k)
      const r = await this.#deadline(
        this.#r.strataBloomAdd(
          this.#live,
          this.#meta,
          this.#marker,
          m,
          live.length,
          ...live,
          conf.m,
          conf.k,
          ...confPos,
        ),
      )
      if (r === -2) {
        await this.#refresh()
        continue
      }
      if (typeof r === 'string' && r !== '') {
        // A rebuild with another sizing runs (another replica's configuration).
        const [build, bm, bk] = r.split(' ')
        const pos = await positions(ids, Number(bm), Number(bk))
        const ok = await this.#deadline(
          this.#r.strataBloomSetIf(build as string, this.#marker, r, ...pos),
        )
        if (ok === 0) continue // swapped in between: add to the new live filter
      }
      this.#stats.added += ids.length
      return
    }
    throw new CacheError(
      errors.E_L2_UNAVAILABLE,
      '[l2-redis] guard: the filter kept changing under an add',
    )
  }

  /**
   * A rebuild that reads `ids()` after this call. One under way may have read them before
   * it (a deletion the caller just made would stay in its filter), so the caller gets the
   * next one, shared with every caller until it starts.
   */
  rebuild(options: { onProgress?: Progress } = {}): Promise<RebuildReport> {
    const listeners = options.onProgress ? [options.onProgress] : []
    if (this.#building === undefined) return this.#start(listeners)
    if (this.#queued !== undefined) {
      this.#queued.listeners.push(...listeners)
      return this.#queued.done
    }
    const start = (): Promise<RebuildReport> => {
      this.#queued = undefined
      return this.#start(listeners)
    }
    this.#queued = { listeners, done: this.#building.then(start, start) }
    return this.#queued.done
  }

  #start(listeners: Progress[]): Promise<RebuildReport> {
    if (this.#closed)
      return Promise.reject(new CacheError(errors.E_CLOSED, '[l2-redis] the guard is closed'))
    const building: Promise<RebuildReport> = this.#rebuild({
      onProgress: (n) => {
        for (const l of listeners) l(n)
      },
    }).finally(() => {
      if (this.#building === building) this.#building = undefined
    })
    this.#building = building
    return building
  }

  async #rebuild(options: { onProgress?: Progress }): Promise<RebuildReport> {
    const ids = this.#o.ids
    if (!ids) throw new CacheError(errors.E_UNSUPPORTED, '[l2-redis] redisBloomGuard has no ids()')
    const started = Date.now()
    const { m, k } = this.#o.sizing
    const build = `${this.#live}:b:${randomBytes(6).toString('hex')}`
    const marker = `${build} ${m} ${k}`
    // Announce first: adds from now on land in both filters.
    await this.#redis.set(this.#marker, marker, 'PX', 3_600_000)
    await new Promise((r) => setTimeout(r, this.#o.settle))
    let count = 0
    let batch: string[] = []
    const flush = async () => {
      if (batch.length === 0) return
      await this.#r.strataBloomSet(build, ...(await positions(batch, m, k)))
      count += batch.length
      batch = []
      options.onProgress?.(count)
    }
    for await (const id of ids()) {
      if (this.#closed) throw new CacheError(errors.E_CLOSED, '[l2-redis] the guard is closed')
      batch.push(id)
      if (batch.length >= 500) await flush()
    }
    await flush()
    const swapped = await this.#r.strataBloomSwap(
      build,
      this.#live,
      this.#meta,
      this.#marker,
      m,
      k,
      marker,
    )
    if (swapped !== 1) {
      await this.#redis.del(build)
      throw new CacheError(
        errors.E_UNSUPPORTED,
        '[l2-redis] another rebuild took over; this one was discarded',
      )
    }
    this.#sizing = { m, k }
    const report = { ids: count, ms: Date.now() - started, at: Date.now() }
    this.#stats.rebuilds++
    this.#stats.lastRebuild = report
    await this.#sample()
    return report
  }

  /** Builds when the filter is missing or its period is over, if this replica gets the turn. */
  async #maybeBuild(): Promise<void> {
    if (!this.#o.ids || this.#building || this.#queued || this.#closed) return
    const exists = (await this.#redis.exists(this.#live)) === 1
    const period = this.#o.rebuildEvery ?? 3_600_000
    if (exists && !this.#o.rebuildEvery) return
    const got = await this.#redis.set(
      this.#turn,
      String(process.pid),
      'PX',
      exists ? period : 60_000,
      'NX',
    )
    if (got !== 'OK') return
    await this.rebuild().catch((err: unknown) => this.#report(err, 'guard.rebuild'))
  }

  async #refresh(): Promise<void> {
    const [m, k] = await this.#redis.hmget(this.#meta, 'm', 'k')
    if (m && k) this.#sizing = { m: Number(m), k: Number(k) }
  }

  async #sample(): Promise<void> {
    const bits = await this.#redis.bitcount(this.#live)
    const { m, k } = this.#sizing
    this.#stats.fillRatio = bits / m
    this.#stats.estimatedFalsePositiveRate = (bits / m) ** k
  }

  stats(): GuardStats {
    return { ...this.#stats }
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const t of this.#timers) clearInterval(t)
    await this.#building?.catch(() => undefined)
    await this.#queued?.done.catch(() => undefined)
  }

  #deadline<T>(p: Promise<T>): Promise<T> {
    const ms = this.#o.timeout
    return withDeadline(
      p,
      ms,
      () => new CacheError(errors.E_L2_TIMEOUT, `[l2-redis] guard: no answer in ${ms} ms`),
    )
  }

  #report(err: unknown, op: string): void {
    const now = Date.now()
    if (now - this.#lastReport < 5_000) return
    this.#lastReport = now
    this.#b.report(err, op)
  }
}
