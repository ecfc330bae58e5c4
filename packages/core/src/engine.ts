/**
 * The engine: every policy of Strata in one place. Drivers store; this file decides.
 *
 * ## Consistency
 * The promise: after a write is acknowledged, no replica serves the old value for longer
 * than the staleness bound (bus propagation when healthy, `degradedL1Ttl` when the bus
 * is degraded), and no replica keeps a stale value indefinitely. Writes go L2 first,
 * then the local L1, then an invalidation on the bus; peers *drop* their copy and read
 * L2 again, they never receive values over the bus, so a lost message costs a miss at
 * worst once the bus resyncs (FusionCache's backplane works the same way; Redis
 * client-side caching's "flush on reconnect" rule is why a gap clears L1 [2]).
 *
 * ## Invalidation epochs (guarded L1 fills, design §6.1)
 * A fill is the L1 write after an L2 read or a loader call. Both are asynchronous, so an
 * invalidation can arrive between the read and the write; writing anyway would put the
 * old value back for the whole TTL. Every invalidation this process learns of (its own
 * writes, bus messages, tag invalidations, clears, bus gaps) bumps `#epoch`. A fill
 * records the epoch when it starts and is discarded if its key, one of its tags, or
 * everything (clear/gap) was invalidated after that. Per-key records exist only while
 * a fill of that key is in flight, so memory stays bounded by concurrency, not keyspace.
 * Tags are also checked lazily on L1 hits (an entry filled before a tag's last
 * invalidation is a miss) without scanning keys; the hit path pays one comparison
 * against `#tagFloor` until some tag is invalidated.
 *
 * ## Guarded L2 fills (design §6.2)
 * A fill after a miss carries the lease token the L2 gave at miss time; a write or
 * delete of the key revokes it and the L2 rejects the late fill atomically (Meta's
 * memcache leases [1]). Drivers without leases fall back to plain writes.
 *
 * ## Stampede protection
 * One load per key per process: concurrent callers join the flight (L2 read + loader)
 * of the first. Across replicas, `distributedLock` takes an L2 lock; waiters poll L2
 * with backoff and load themselves only if the holder never fills (it crashed: they
 * wait at most `lockTtl`).
 *
 * ## Failure modes
 * L2 errors are reported and treated as misses on reads (the L2 driver owns command
 * timeouts and its circuit breaker, so a call never waits on a dead Redis). A loader
 * error or timeout serves a stale value within grace when one exists (fail-safe) and
 * backs off before calling the loader again; otherwise it fails with a `CacheError`
 * carrying the cause. Corrupt bytes in L2 are a counted miss and the key is deleted.
 *
 * [1] Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013, §3.2.1 (leases).
 * [2] Redis docs, "Client-side caching", the section on connection loss and flushing.
 */
import { randomUUID } from 'node:crypto'
import {
  BusState,
  type BusMessage,
  type Entry,
  type EvictionReason,
  type L1Driver,
  type L1Entry,
  L1Record,
  type L2Driver,
} from './contracts.js'
import { toMs, type Duration } from './duration.js'
import { CacheError, errors } from './errors.js'
import { Counters, Emitter, type CacheStats } from './events.js'
import {
  NO_TAGS,
  resolveCall,
  type CallPolicy,
  type EntryOptions,
  type ResolvedOptions,
} from './options.js'
import { coarseNow, systemClock } from './clock.js'
import { Publisher } from './publisher.js'
import { Telemetry, type Probe } from './telemetry.js'

/** What a loader gets. */
export interface LoaderContext<V = unknown> {
  /** The key as the caller passed it (without prefix or namespace). */
  readonly key: string
  /** Aborted when the hard timeout fires. */
  readonly signal: AbortSignal
  /** The stale value within grace, if any (e.g. for conditional requests upstream). */
  readonly staleValue: V | undefined
  /** Overrides the TTL for this result (adaptive TTL). */
  setTtl(ttl: Duration): void
  /** Replaces the tags for this result. */
  setTags(tags: readonly string[]): void
}

export type Loader<V> = (ctx: LoaderContext<V>) => V | Promise<V>
export type BatchLoader<V> = (
  missingKeys: string[],
  ctx: { signal: AbortSignal },
) => Map<string, V> | Promise<Map<string, V>>

interface Outcome {
  entry: Entry
  tier: 'l2' | 'loader'
  stale: boolean
}

/**
 * One load of one key that every concurrent caller awaits. `result` settles with the
 * load's outcome, or earlier with a stale outcome when the soft timeout fires (the load
 * then goes on in `done` and still stores its value).
 */
interface Flight {
  result: Promise<Outcome>
  settle: (o: Outcome) => void
  fail: (e: unknown) => void
  done: Promise<void>
}

function newFlight(): Flight {
  let settle!: (o: Outcome) => void
  let fail!: (e: unknown) => void
  const result = new Promise<Outcome>((resolve, reject) => {
    settle = resolve
    fail = reject
  })
  // Nobody may be waiting (refresh-ahead): the rejection is observed by whoever awaits.
  result.catch(() => undefined)
  return { result, settle, fail, done: Promise.resolve() }
}

/** "Nothing servable" (a cached value can be `null`, never this). */
export const NONE: unique symbol = Symbol('none')

/** Maps the strings of a bus message through `f`, dropping what is not ours (undefined). */
function mapOwn(
  items: readonly unknown[] | undefined,
  f: (s: string) => string | undefined,
): string[] {
  const out: string[] = []
  for (const item of items ?? []) {
    const mapped = typeof item === 'string' ? f(item) : undefined
    if (mapped !== undefined) out.push(mapped)
  }
  return out
}

/** Everything one load needs, from the miss to the fill. */
interface LoadJob {
  key: string
  userKey: string
  loader: Loader<unknown>
  p: CallPolicy
  flight: Flight
  start: number
  stale: Entry | undefined
  /** Lease token from the miss (replaced if the lock holder re-reads). */
  token: string | undefined
}

/** Test hook points (deterministic race tests); undefined in production. */
export interface EngineHooks {
  /** Awaited after an L2 read answered and before the L1 fill. */
  beforeL1Fill?: (key: string) => Promise<void> | void
  /** Awaited after the loader resolved and before the L2 fill. */
  beforeL2Fill?: (key: string) => Promise<void> | void
}

export class Engine {
  readonly o: ResolvedOptions
  readonly l1: L1Driver | undefined
  readonly l2: L2Driver | undefined
  readonly events = new Emitter()
  readonly counters = new Counters()
  readonly source = randomUUID()
  readonly tel: Telemetry
  /** Time for L1 freshness checks: millisecond-coarse with the system clock (see coarseNow). */
  readonly now: () => number
  hooks: EngineHooks | undefined

  #epoch = 0
  /** Highest epoch of any tag invalidation; entries with `gen >= #tagFloor` skip tag checks. */
  tagFloor = 0
  readonly #tagEpoch = new Map<string, number>()
  /** Epoch of the last clear / namespace clear / bus gap (discards every older fill). */
  #broadEpoch = 0
  /** In-flight fills per key, and the epoch of the key's last invalidation while they run. */
  readonly #pending = new Map<string, { count: number; invalidatedAt: number }>()
  readonly #flights = new Map<string, Flight>()
  readonly #publisher: Publisher | undefined
  #busState: BusState | 'none'
  #clampTimer: ReturnType<ResolvedOptions['clock']['setTimeout']> | undefined
  #lastVersion = 0
  #closed = false
  readonly ready: Promise<void>

  constructor(options: ResolvedOptions) {
    this.o = options
    const clock = options.clock
    this.now = clock === systemClock ? coarseNow : () => clock.now()
    this.#p1 = `${options.prefix}:`
    this.#rootFull = `${options.prefix}::`
    this.l1 = options.l1
    this.l2 = options.l2
    this.tel = new Telemetry(options.telemetry !== false, options.telemetry || {}, options.name, {
      entries: () => this.l1?.size ?? 0,
      bytes: () => this.l1?.bytes ?? 0,
      busState: () => (options.bus ? options.bus.state : 'none'),
    })
    this.tel.fullKey = (k) => this.fullOf(k)
    this.l1?.onEvict?.((key, reason) => this.#onEvict(key, reason))
    const bus = options.bus
    this.#busState = bus ? BusState.connecting : 'none'
    if (bus) {
      this.#publisher = new Publisher(
        bus,
        options.clock,
        this.source,
        (err) => {
          this.counters.publishErrors++
          this.reportError(err, 'bus.publish', undefined, errors.E_BUS_UNAVAILABLE)
        },
        () => this.counters.published++,
      )
      this.ready = bus
        .start({
          channel: options.prefix,
          source: this.source,
          onMessage: (m) => this.#onBusMessage(m),
          onState: (state, info) => this.#onBusState(state, info.reason, info.resynced === true),
        })
        .catch((err: unknown) => {
          this.reportError(err, 'bus.start', undefined, errors.E_BUS_UNAVAILABLE)
        })
    } else {
      this.ready = Promise.resolve()
    }
  }

  // ---------------------------------------------------------------- keys
  //
  // L1 is private to this cache, so its keys need no prefix: root keys are the caller's
  // key as is (the hit path does no string building), namespaced keys are
  // `\u0001<ns>\u0001<key>`, and a root key that itself starts with \u0001 gets one
  // more (namespace names never start with \u0001, so nothing collides). L2 and the bus
  // use the full key `<prefix>:<ns>:<key>`; the engine converts on the slow path.

  /** `<prefix>:` */
  readonly #p1: string
  /** `<prefix>::` (full keys of the root namespace) */
  readonly #rootFull: string

  /** The L2 / bus key of an L1 key. */
  fullOf(k: string): string {
    if (k.charCodeAt(0) !== 1) return this.#rootFull + k
    if (k.charCodeAt(1) === 1) return this.#rootFull + k.slice(1)
    const end = k.indexOf('\u0001', 1)
    return `${this.#p1}${k.slice(1, end)}:${k.slice(end + 1)}`
  }

  /** The L1 key of a full key of this prefix (undefined for anything else). */
  l1Of(full: string): string | undefined {
    if (!full.startsWith(this.#p1)) return undefined
    const i = full.indexOf(':', this.#p1.length)
    if (i < 0) return undefined
    const ns = full.slice(this.#p1.length, i)
    const key = full.slice(i + 1)
    if (ns !== '') return `\u0001${ns}\u0001${key}`
    return key.charCodeAt(0) === 1 ? `\u0001${key}` : key
  }

  /** The L1 prefix of a full prefix (`''` = everything). */
  l1PrefixOf(fullPrefix: string): string | undefined {
    if (!fullPrefix.startsWith(this.#p1)) return undefined
    const rest = fullPrefix.slice(this.#p1.length)
    if (rest === '') return ''
    if (rest.endsWith(':')) return `\u0001${rest.slice(0, -1)}\u0001`
    if (rest.endsWith('/')) return `\u0001${rest}`
    return undefined
  }

  // ---------------------------------------------------------------- helpers

  assertOpen(): void {
    if (this.#closed) throw new CacheError(errors.E_CLOSED, '[core] the cache is closed')
  }

  reportError(
    err: unknown,
    operation: string,
    key?: string,
    code: CacheError['code'] = errors.E_L2_UNAVAILABLE,
  ): CacheError {
    const error =
      err instanceof CacheError
        ? err
        : new CacheError(
            code,
            `[core] ${operation} failed: ${String((err as Error | undefined)?.message ?? err)}`,
            { cause: err },
          )
    this.counters.errors++
    if (this.events.has.error)
      this.events.emit('error', {
        error,
        operation,
        key: key === undefined ? undefined : this.fullOf(key),
      })
    return error
  }

  /** A failed L2 round trip: counted in `stats().l2.errors`, reported, returned for rethrow. */
  l2Failure(err: unknown, operation: string, key?: string): CacheError {
    this.counters.l2Errors++
    return this.reportError(err, operation, key)
  }

  #nextVersion(now: number): number {
    const v = Math.max(now * 1000, this.#lastVersion + 1)
    this.#lastVersion = v
    return v
  }

  #jitter(ttl: number): number {
    const j = this.o.jitter
    return j > 0 ? Math.max(1, Math.round(ttl * (1 - j + Math.random() * 2 * j))) : ttl
  }

  buildEntry(
    value: unknown,
    p: CallPolicy,
    ttl: number,
    tags: readonly string[],
    tagVersions: readonly number[] | undefined,
  ): Entry {
    const now = this.o.clock.now()
    const negative = value === null
    const life = this.#jitter(negative ? (p.negativeTtl ?? ttl) : ttl)
    const entry: Entry = {
      value,
      createdAt: now,
      freshUntil: now + life,
      staleUntil: now + life + p.grace,
      tags,
      version: this.#nextVersion(now),
    }
    if (tagVersions) entry.tagVersions = tagVersions
    if (negative) entry.negative = true
    return entry
  }

  /** Tags are scoped by prefix in L2: two caches with different prefixes never share a tag. */
  l2TagNames(tags: readonly string[]): string[] {
    return tags.map((t) => `${this.o.prefix}:${t}`)
  }

  /**
   * The current L2 versions of `tags`, to record in an entry written under them;
   * undefined without tags, without an L2 that keeps them, or when L2 fails (reported).
   */
  async tagVersionsFor(
    tags: readonly string[],
    key?: string,
  ): Promise<readonly number[] | undefined> {
    const tagsL2 = this.l2?.tags
    if (tags.length === 0 || !tagsL2) return undefined
    try {
      return await tagsL2.versions(this.l2TagNames(tags))
    } catch (err) {
      this.reportError(err, 'l2.tags', key)
      return undefined
    }
  }

  out<V>(value: V): V {
    return this.o.clone && value !== null && typeof value === 'object'
      ? structuredClone(value)
      : value
  }

  /** The value of what L1 returned if it may be served now, else `NONE`. */
  freshL1(stored: unknown, now: number): unknown {
    if (stored === undefined) return NONE
    if (!(stored instanceof L1Record)) return stored
    return stored.freshUntil > now && (stored.gen >= this.tagFloor || this.tagsValid(stored))
      ? stored.value
      : NONE
  }

  /**
   * One L1 pass over many keys: servable values go into `out` (hits counted), and the
   * indexes still to look up elsewhere are returned (misses counted when there is an L1).
   */
  readL1Many(keys: readonly string[], out: unknown[]): number[] {
    const l1 = this.l1
    const now = this.o.clock.now()
    const missing: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const value = this.freshL1(l1?.get(keys[i] as string), now)
      if (value !== NONE) {
        this.counters.l1Hits++
        out[i] = this.out(value)
      } else {
        if (l1) this.counters.l1Misses++
        missing.push(i)
      }
    }
    return missing
  }

  /** Valid w.r.t. tag invalidations this process knows of. */
  tagsValid(e: L1Entry): boolean {
    for (const t of e.tags) {
      const at = this.#tagEpoch.get(t)
      if (at !== undefined && at > e.gen) return false
    }
    return true
  }

  // ------------------------------------------------------------- epochs

  /** Starts a guarded fill of `key`; pair with `endFill`. Returns the start epoch. */
  beginFill(key: string): number {
    const p = this.#pending.get(key)
    if (p) p.count++
    else this.#pending.set(key, { count: 1, invalidatedAt: 0 })
    return this.#epoch
  }

  endFill(key: string): void {
    const p = this.#pending.get(key)
    if (p && --p.count === 0) this.#pending.delete(key)
  }

  #fillAllowed(key: string, tags: readonly string[], start: number): boolean {
    if (this.#broadEpoch > start) return false
    const p = this.#pending.get(key)
    if (p && p.invalidatedAt > start) return false
    for (const t of tags) {
      const at = this.#tagEpoch.get(t)
      if (at !== undefined && at > start) return false
    }
    return true
  }

  /** Records an invalidation of `keys` and drops them from L1. */
  invalidateKeysLocal(keys: readonly string[]): void {
    const epoch = ++this.#epoch
    for (const k of keys) {
      const p = this.#pending.get(k)
      if (p) p.invalidatedAt = epoch
      this.l1?.delete(k)
    }
  }

  invalidateTagsLocal(tags: readonly string[]): void {
    const epoch = ++this.#epoch
    for (const t of tags) this.#tagEpoch.set(t, epoch)
    this.tagFloor = epoch
    // Bounded: past this many distinct invalidated tags, fall back to a full L1 clear.
    if (this.#tagEpoch.size > 100_000) {
      this.#tagEpoch.clear()
      this.clearLocal([''])
    }
  }

  /** L1 prefixes; `''` clears everything. */
  clearLocal(prefixes: readonly string[]): void {
    this.#broadEpoch = ++this.#epoch
    for (const p of prefixes) this.l1?.clear(p === '' ? undefined : p)
  }

  // --------------------------------------------------------------- L1 / L2

  /** Writes an entry to L1 unless an invalidation raced the fill. */
  fillL1(key: string, entry: Entry, start: number, p: CallPolicy | undefined): void {
    const l1 = this.l1
    if (!l1) return
    if (!this.#fillAllowed(key, entry.tags, start)) {
      this.counters.discardedFills++
      return
    }
    this.#writeL1(key, entry, start, p?.l1Ttl ?? this.o.l1Ttl, p)
  }

  #writeL1(key: string, entry: Entry, gen: number, cap: number, p: CallPolicy | undefined): void {
    const l1 = this.l1 as L1Driver
    const now = this.o.clock.now()
    let freshUntil = entry.freshUntil
    let life = entry.staleUntil - now
    if (cap > 0) freshUntil = Math.min(freshUntil, now + cap)
    if (this.#busState === BusState.degraded) {
      // No invalidations arrive while degraded: bound how long this copy can be served.
      freshUntil = Math.min(freshUntil, now + this.o.degradedL1Ttl)
      life = Math.min(life, this.o.degradedL1Ttl)
    }
    if (life <= 0) return
    const ra = this.o.refreshAhead
    const refreshAt =
      ra > 0 && p !== undefined
        ? entry.createdAt + (entry.freshUntil - entry.createdAt) * ra
        : Infinity
    if (entry.tags.length === 0 && entry.staleUntil <= entry.freshUntil && refreshAt === Infinity) {
      // Nothing to check on a hit but freshness: store the bare value, its TTL is the freshness.
      const fresh = freshUntil - now
      if (fresh > 0) l1.set(key, entry.value, fresh)
      return
    }
    l1.set(
      key,
      new L1Record(
        entry.value,
        entry.createdAt,
        freshUntil,
        entry.staleUntil,
        entry.tags,
        entry.version,
        gen,
        refreshAt,
      ),
      life,
    )
  }

  /** Writes a fresh entry after a local `set` (not a fill: nothing to guard against). */
  setL1(key: string, entry: Entry, p: CallPolicy): void {
    if (this.l1) this.#writeL1(key, entry, this.#epoch, p.l1Ttl, undefined)
  }

  encode(key: string, entry: Entry): Uint8Array {
    const l2 = this.l2 as L2Driver
    let bytes: Uint8Array
    try {
      bytes = l2.codec.encode(entry)
    } catch (err) {
      throw new CacheError(
        errors.E_NOT_SERIALIZABLE,
        `[core] the value for key "${key}" cannot be encoded by the ${l2.codec.name} codec`,
        { cause: err },
      )
    }
    if (bytes.length > this.o.maxValueBytes) {
      throw new CacheError(
        errors.E_VALUE_TOO_LARGE,
        `[core] the value for key "${key}" is ${bytes.length} bytes encoded, over maxValueBytes (${this.o.maxValueBytes})`,
      )
    }
    return bytes
  }

  #decode(key: string, bytes: Uint8Array): Entry | undefined {
    try {
      return (this.l2 as L2Driver).codec.decode(bytes)
    } catch (err) {
      this.counters.corrupt++
      this.reportError(
        new CacheError(
          errors.E_CORRUPT_ENTRY,
          `[core] L2 holds bytes for key "${key}" that are not a valid entry; deleted`,
          { cause: err },
        ),
        'l2.decode',
        key,
      )
      void this.l2?.delete([this.fullOf(key)]).catch(() => undefined)
      return undefined
    }
  }

  async #tagsCurrent(entries: readonly Entry[]): Promise<boolean[]> {
    const tagsL2 = this.l2?.tags
    const result = entries.map(() => true)
    if (!tagsL2) return result
    const all = [...new Set(entries.flatMap((e) => e.tags))]
    if (all.length === 0) return result
    const versions = await tagsL2.versions(this.l2TagNames(all))
    const current = new Map(all.map((t, i) => [t, versions[i] ?? 0]))
    entries.forEach((e, i) => {
      e.tags.forEach((t, j) => {
        if ((e.tagVersions?.[j] ?? 0) !== current.get(t)) result[i] = false
      })
    })
    return result
  }

  /** Reads one key from L2: decoded, tag-checked; errors are reported and read as a miss. */
  async l2Read(
    key: string,
    lease: boolean,
  ): Promise<{ entry?: Entry | undefined; token?: string | undefined }> {
    const l2 = this.l2 as L2Driver
    try {
      let bytes: Uint8Array | undefined
      let token: string | undefined
      const leases = lease ? l2.leases : undefined
      const full = this.fullOf(key)
      if (leases)
        ({ value: bytes, token } = await this.#l2Span('get', () => leases.getWithLease(full)))
      else bytes = await this.#l2Span('get', () => l2.get(full))
      if (bytes === undefined) return { token }
      const entry = this.#decode(key, bytes)
      if (!entry) return { token }
      if (entry.tags.length > 0 && !(await this.#tagsCurrent([entry]))[0]) return { token }
      return { entry, token }
    } catch (err) {
      this.l2Failure(err, 'l2.get', key)
      return {}
    }
  }

  async l2ReadMany(keys: readonly string[]): Promise<(Entry | undefined)[]> {
    const l2 = this.l2 as L2Driver
    try {
      const full = keys.map((k) => this.fullOf(k))
      const raw = await this.#l2Span('mget', () => l2.getMany(full))
      const entries = raw.map((b, i) =>
        b === undefined ? undefined : this.#decode(keys[i] as string, b),
      )
      const tagged = entries.filter((e): e is Entry => e !== undefined && e.tags.length > 0)
      if (tagged.length > 0) {
        const ok = await this.#tagsCurrent(tagged)
        const bad = new Set(tagged.filter((_, i) => !ok[i]))
        return entries.map((e) => (e && bad.has(e) ? undefined : e))
      }
      return entries
    } catch (err) {
      this.l2Failure(err, 'l2.getMany')
      return keys.map(() => undefined)
    }
  }

  #l2Span<T>(command: string, fn: () => Promise<T>): Promise<T> {
    return this.tel.l2Spans ? this.tel.l2(command, fn) : fn()
  }

  /** Stores a loaded entry in L2, through the lease when there is one. Never throws. */
  async #fillL2(
    key: string,
    entry: Entry,
    token: string | undefined,
    start: number,
  ): Promise<void> {
    const l2 = this.l2
    if (!l2) return
    try {
      const bytes = this.encode(key, entry)
      if (this.hooks?.beforeL2Fill) await this.hooks.beforeL2Fill(key)
      const ttl = entry.staleUntil - this.o.clock.now()
      const leases = l2.leases
      const full = this.fullOf(key)
      if (token !== undefined && leases) {
        await this.#l2Span('fill', () => leases.fill(full, token, bytes, ttl))
      } else if (this.#fillAllowed(key, entry.tags, start)) {
        await this.#l2Span('set', () => l2.set(full, bytes, ttl))
      }
    } catch (err) {
      if (!CacheError.is(err)) this.counters.l2Errors++
      this.reportError(err, 'l2.fill', key)
    }
  }

  // -------------------------------------------------------------- read path

  /** The L1 copy of `key` if it may still be served stale (within grace, tags valid). */
  staleFromL1(key: string): Entry | undefined {
    const e = this.l1?.get(key)
    // Bare values have no grace: past their TTL they are gone.
    if (!(e instanceof L1Record) || e.staleUntil <= this.o.clock.now()) return undefined
    return e.gen >= this.tagFloor || this.tagsValid(e) ? e : undefined
  }

  /** `get` after an L1 miss. */
  async getSlow(key: string, probe?: Probe): Promise<unknown> {
    if (this.l1) this.counters.l1Misses++
    if (!this.l2) {
      if (this.events.has.miss) this.events.emit('miss', { key: this.fullOf(key) })
      return undefined
    }
    const start = this.beginFill(key)
    try {
      const { entry } = await this.l2Read(key, false)
      if (entry && entry.freshUntil > this.o.clock.now()) {
        this.counters.l2Hits++
        if (this.hooks?.beforeL1Fill) await this.hooks.beforeL1Fill(key)
        this.fillL1(key, entry, start, undefined)
        if (this.events.has.hit)
          this.events.emit('hit', { key: this.fullOf(key), tier: 'l2', stale: false })
        if (probe) {
          probe.tier = 'l2'
          probe.hit = true
        }
        return entry.value
      }
      this.counters.l2Misses++
      if (this.events.has.miss) this.events.emit('miss', { key: this.fullOf(key) })
      return undefined
    } finally {
      this.endFill(key)
    }
  }

  /** `getOrSet` after an L1 miss: join or start the key's flight. */
  async getOrSetSlow<V>(
    key: string,
    userKey: string,
    loader: Loader<V>,
    options: EntryOptions | undefined,
    probe?: Probe,
  ): Promise<V> {
    if (this.l1) this.counters.l1Misses++
    let flight = this.#flights.get(key)
    if (flight) {
      this.counters.coalesced++
      if (probe) probe.coalesced = true
    } else {
      flight = this.#startFlight(
        key,
        userKey,
        loader as Loader<unknown>,
        resolveCall(this.o, options),
        undefined,
      )
    }
    const outcome = await flight.result
    if (probe) {
      probe.tier = outcome.tier
      probe.hit = outcome.tier === 'l2'
      probe.stale = outcome.stale
    }
    return this.out(outcome.entry.value) as V
  }

  /** A hit past the refresh-ahead point: refresh once in the background. */
  refreshAhead(
    key: string,
    userKey: string,
    loader: Loader<unknown>,
    options: EntryOptions | undefined,
    current: L1Entry,
  ): void {
    if (this.#flights.has(key)) return
    let policy: CallPolicy
    try {
      policy = resolveCall(this.o, options)
    } catch {
      return
    }
    this.#startFlight(key, userKey, loader, policy, current)
  }

  #startFlight(
    key: string,
    userKey: string,
    loader: Loader<unknown>,
    p: CallPolicy,
    refreshing: Entry | undefined,
  ): Flight {
    const flight = newFlight()
    const start = this.beginFill(key)
    this.#flights.set(key, flight)
    flight.done = this.#runFlight(key, userKey, loader, p, flight, start, refreshing)
      .then(flight.settle, flight.fail)
      .finally(() => {
        this.endFill(key)
        if (this.#flights.get(key) === flight) this.#flights.delete(key)
      })
    return flight
  }

  async #runFlight(
    key: string,
    userKey: string,
    loader: Loader<unknown>,
    p: CallPolicy,
    flight: Flight,
    start: number,
    refreshing: Entry | undefined,
  ): Promise<Outcome> {
    const clock = this.o.clock
    let stale = refreshing ?? this.staleFromL1(key)
    let token: string | undefined
    if (this.l2) {
      const read = await this.l2Read(key, true)
      token = read.token
      const e = read.entry
      if (e) {
        const now = clock.now()
        const newer = refreshing === undefined || e.version > refreshing.version
        if (e.freshUntil > now && newer) {
          this.counters.l2Hits++
          if (this.hooks?.beforeL1Fill) await this.hooks.beforeL1Fill(key)
          this.fillL1(key, e, start, p)
          if (this.events.has.hit)
            this.events.emit('hit', { key: this.fullOf(key), tier: 'l2', stale: false })
          return { entry: e, tier: 'l2', stale: false }
        }
        if (e.staleUntil > now && (stale === undefined || e.version > stale.version)) stale = e
      }
      this.counters.l2Misses++
      if (p.distributedLock && this.l2.locks) {
        return this.#loadUnderLock({ key, userKey, loader, p, flight, start, stale, token })
      }
    }
    if (this.events.has.miss) this.events.emit('miss', { key: this.fullOf(key) })
    return this.#load({ key, userKey, loader, p, flight, start, stale, token })
  }

  async #loadUnderLock(job: LoadJob): Promise<Outcome> {
    const { key, p, start } = job
    const locks = (this.l2 as L2Driver).locks as NonNullable<L2Driver['locks']>
    const clock = this.o.clock
    const deadline = clock.now() + this.o.lockTtl
    let delay = 5
    let lock: string | undefined
    for (;;) {
      try {
        lock = await locks.tryAcquire(this.fullOf(key), this.o.lockTtl)
      } catch (err) {
        this.reportError(err, 'l2.lock', key)
        break
      }
      if (lock !== undefined) {
        // Someone may have filled between our miss and the lock.
        const again = await this.l2Read(key, true)
        job.token = again.token
        if (again.entry && again.entry.freshUntil > clock.now()) {
          await locks.release(this.fullOf(key), lock).catch(() => undefined)
          this.fillL1(key, again.entry, start, p)
          return { entry: again.entry, tier: 'l2', stale: false }
        }
        break
      }
      await new Promise<void>((resolve) => clock.setTimeout(resolve, delay))
      delay = Math.min(delay * 2, 100)
      const read = await this.l2Read(key, false)
      if (read.entry && read.entry.freshUntil > clock.now()) {
        this.counters.l2Hits++
        this.fillL1(key, read.entry, start, p)
        return { entry: read.entry, tier: 'l2', stale: false }
      }
      if (clock.now() >= deadline) break
    }
    try {
      return await this.#load(job)
    } finally {
      if (lock !== undefined) await locks.release(this.fullOf(key), lock).catch(() => undefined)
    }
  }

  async #load(job: LoadJob): Promise<Outcome> {
    const { key, userKey, loader, p, flight, start, stale, token } = job
    const clock = this.o.clock
    this.counters.loads++
    // Mutable through the loader context (an object, so the compiler sees the writes).
    const chosen = { ttl: p.ttl, tags: p.tags, tagsChanged: false }
    // Capture tag versions before loading: an invalidation during the load must win.
    let tagVersions = await this.tagVersionsFor(p.tags, key)
    // AbortController is costly to build: only when the loader asks for the signal.
    let controller: AbortController | undefined
    const ctx: LoaderContext = {
      key: userKey,
      get signal() {
        return (controller ??= new AbortController()).signal
      },
      staleValue: stale?.value,
      setTtl: (d) => {
        const ms = toMs(d, 'ctx.setTtl')
        if (ms !== undefined && ms > 0) chosen.ttl = ms
      },
      setTags: (t) => {
        chosen.tags = [...t]
        chosen.tagsChanged = true
      },
    }
    let softTimer: ReturnType<typeof clock.setTimeout> | undefined
    if (stale !== undefined && p.soft > 0) {
      const staleEntry = stale
      softTimer = clock.setTimeout(() => {
        this.#servedStale(key, 'soft-timeout')
        flight.settle({ entry: staleEntry, tier: 'loader', stale: true })
      }, p.soft)
    }
    const loading = this.tel.on
      ? this.tel.load(async () => loader(ctx))
      : (async () => loader(ctx))()
    let value: unknown
    try {
      value = await this.#underHardTimeout(loading, p.hard, `loader for key "${userKey}"`, (err) =>
        controller?.abort(err),
      )
    } catch (err) {
      const error = err as CacheError
      this.reportError(error, 'loader', key)
      if (stale !== undefined)
        return this.#failSafe(
          key,
          stale,
          start,
          error.code === errors.E_LOADER_TIMEOUT ? 'hard-timeout' : 'loader-error',
        )
      throw error
    } finally {
      if (softTimer !== undefined) clock.clearTimeout(softTimer)
    }
    if (value === undefined) {
      throw new CacheError(
        errors.E_UNDEFINED_VALUE,
        `[core] loader for key "${userKey}" returned undefined; return null to cache "not found"`,
      )
    }
    const tags = chosen.tags
    if (chosen.tagsChanged) tagVersions = await this.tagVersionsFor(tags, key)
    const entry = this.buildEntry(
      value,
      p,
      chosen.ttl,
      tags.length > 0 ? tags : NO_TAGS,
      tagVersions,
    )
    await this.#fillL2(key, entry, token, start)
    this.fillL1(key, entry, start, p)
    return { entry, tier: 'loader', stale: false }
  }

  /**
   * Awaits a loader under the hard timeout (0 = none). Rejects with E_LOADER_TIMEOUT
   * (after calling `abort`) or E_LOADER_ERROR carrying the loader's error as `cause`.
   */
  async #underHardTimeout<T>(
    loading: Promise<T>,
    hard: number,
    what: string,
    abort: (err: CacheError) => void,
  ): Promise<T> {
    const clock = this.o.clock
    let timer: ReturnType<typeof clock.setTimeout> | undefined
    try {
      if (hard <= 0) return await loading
      loading.catch(() => undefined)
      return await Promise.race([
        loading,
        new Promise<never>((_, reject) => {
          timer = clock.setTimeout(() => {
            const err = new CacheError(
              errors.E_LOADER_TIMEOUT,
              `[core] ${what} did not finish within the hard timeout (${hard} ms)`,
            )
            abort(err)
            reject(err)
          }, hard)
        }),
      ])
    } catch (err) {
      this.counters.loadErrors++
      if (CacheError.is(err, errors.E_LOADER_TIMEOUT)) throw err
      throw new CacheError(
        errors.E_LOADER_ERROR,
        `[core] ${what} failed: ${String((err as Error | undefined)?.message ?? err)}`,
        { cause: err },
      )
    } finally {
      if (timer !== undefined) clock.clearTimeout(timer)
    }
  }

  #servedStale(key: string, reason: 'loader-error' | 'soft-timeout' | 'hard-timeout'): void {
    this.counters.staleServed++
    if (this.tel.on) this.tel.staleServed()
    if (this.events.has.stale) this.events.emit('stale', { key: this.fullOf(key), reason })
  }

  /** Loader failed with a stale copy at hand: serve it, and back off before the next load. */
  #failSafe(
    key: string,
    stale: Entry,
    start: number,
    reason: 'loader-error' | 'hard-timeout',
  ): Outcome {
    this.#servedStale(key, reason)
    const backoff = this.o.graceBackoff
    if (backoff > 0 && this.l1 && this.#fillAllowed(key, stale.tags, start)) {
      const now = this.o.clock.now()
      const until = Math.min(now + backoff, stale.staleUntil)
      this.#writeL1(key, { ...stale, freshUntil: until }, start, 0, undefined)
    }
    return { entry: stale, tier: 'loader', stale: true }
  }

  // ------------------------------------------------------------- batch path

  async getOrSetMany<V>(
    keys: readonly string[],
    userKeys: readonly string[],
    loader: BatchLoader<V>,
    options: EntryOptions | undefined,
  ): Promise<(V | null)[]> {
    const p = resolveCall(this.o, options)
    const n = keys.length
    const results = new Array<unknown>(n)
    const waiting = new Map<string, Promise<Outcome>>()
    let todo = this.readL1Many(keys, results)
    if (todo.length === 0) return results as (V | null)[]
    // Keys someone is already loading: join their flights.
    const fresh: number[] = []
    for (const i of todo) {
      const k = keys[i] as string
      const f = this.#flights.get(k)
      if (f) {
        this.counters.coalesced++
        waiting.set(k, f.result)
      } else fresh.push(i)
    }
    todo = fresh
    // One flight for the rest, registered per key so single getOrSet calls join it.
    const unique = [...new Set(todo.map((i) => keys[i] as string))]
    if (unique.length > 0) {
      const starts = new Map(unique.map((k) => [k, this.beginFill(k)]))
      const batch = this.#batchFlight(unique, keys, userKeys, loader, p, starts)
      unique.forEach((k, j) => {
        const flight = newFlight()
        this.#flights.set(k, flight)
        flight.done = batch
          .then((outs) => {
            const o = outs[j] as Outcome | Error
            if (o instanceof Error) flight.fail(o)
            else flight.settle(o)
          }, flight.fail)
          .finally(() => {
            this.endFill(k)
            if (this.#flights.get(k) === flight) this.#flights.delete(k)
          })
        waiting.set(k, flight.result)
      })
    }
    const pendingIdx: number[] = []
    for (let i = 0; i < n; i++) if (results[i] === undefined) pendingIdx.push(i)
    // Promise.all observes every rejection, so one failed key leaves no unhandled ones.
    const outs = await Promise.all(
      pendingIdx.map((i) => waiting.get(keys[i] as string) as Promise<Outcome>),
    )
    pendingIdx.forEach((i, j) => (results[i] = this.out((outs[j] as Outcome).entry.value)))
    return results as (V | null)[]
  }

  /** Resolves, per key in `unique` order, an outcome or the error for that key. */
  async #batchFlight<V>(
    unique: readonly string[],
    keys: readonly string[],
    userKeys: readonly string[],
    loader: BatchLoader<V>,
    p: CallPolicy,
    starts: Map<string, number>,
  ): Promise<(Outcome | Error)[]> {
    const clock = this.o.clock
    const stale = new Map<string, Entry>()
    for (const k of unique) {
      const s = this.staleFromL1(k)
      if (s) stale.set(k, s)
    }
    const outs = new Array<Outcome | Error | undefined>(unique.length)
    let missing = unique.map((_, j) => j)
    if (this.l2) {
      const found = await this.l2ReadMany(unique)
      const now = clock.now()
      missing = []
      found.forEach((e, j) => {
        const k = unique[j] as string
        if (e && e.freshUntil > now) {
          this.counters.l2Hits++
          this.fillL1(k, e, starts.get(k) ?? 0, p)
          outs[j] = { entry: e, tier: 'l2', stale: false }
          return
        }
        this.counters.l2Misses++
        if (e && e.staleUntil > now) {
          const s = stale.get(k)
          if (!s || e.version > s.version) stale.set(k, e)
        }
        missing.push(j)
      })
    }
    if (missing.length === 0) return outs as (Outcome | Error)[]
    const toUser = new Map<string, string>()
    keys.forEach((k, i) => toUser.set(k, userKeys[i] as string))
    const missingUser = missing.map((j) => toUser.get(unique[j] as string) as string)
    this.counters.loads++
    const controller = new AbortController()
    let loaded: Map<string, V>
    try {
      const loading = (async () => {
        const map = await loader(missingUser, { signal: controller.signal })
        if (!(map instanceof Map))
          throw new TypeError(`batch loader must resolve a Map (got ${typeof map})`)
        return map
      })()
      loaded = await this.#underHardTimeout(loading, p.hard, 'batch loader', (err) =>
        controller.abort(err),
      )
    } catch (err) {
      const error = err as CacheError
      this.reportError(error, 'loader')
      for (const j of missing) {
        const k = unique[j] as string
        const s = stale.get(k)
        outs[j] = s ? this.#failSafe(k, s, starts.get(k) ?? 0, 'loader-error') : error
      }
      return outs as (Outcome | Error)[]
    }
    const tagVersions = await this.tagVersionsFor(p.tags)
    const toStore: { key: string; entry: Entry; j: number }[] = []
    for (const j of missing) {
      const k = unique[j] as string
      const uk = toUser.get(k) as string
      // A key the loader did not return is "not found": cached as a negative entry.
      const value = loaded.has(uk) ? loaded.get(uk) : null
      if (value === undefined) {
        outs[j] = new CacheError(
          errors.E_UNDEFINED_VALUE,
          `[core] batch loader returned undefined for key "${uk}"; return null or leave the key out for "not found"`,
        )
        continue
      }
      const entry = this.buildEntry(value, p, p.ttl, p.tags, tagVersions)
      toStore.push({ key: k, entry, j })
      outs[j] = { entry, tier: 'loader', stale: false }
    }
    if (this.l2 && toStore.length > 0) {
      try {
        const items = toStore
          .filter((s) => this.#fillAllowed(s.key, s.entry.tags, starts.get(s.key) ?? 0))
          .map((s) => ({
            key: this.fullOf(s.key),
            value: this.encode(s.key, s.entry),
            ttlMs: s.entry.staleUntil - clock.now(),
          }))
        await this.l2.setMany(items)
      } catch (err) {
        if (!CacheError.is(err)) this.counters.l2Errors++
        this.reportError(err, 'l2.setMany')
      }
    }
    for (const s of toStore) this.fillL1(s.key, s.entry, starts.get(s.key) ?? 0, p)
    return outs as (Outcome | Error)[]
  }

  // ------------------------------------------------------------ write path

  /** Publishes an invalidation of L1 keys (sent as full keys). */
  publishKeys(op: 'delete' | 'set', keys: readonly string[]): Promise<void> {
    if (!this.#publisher) return Promise.resolve()
    const full = keys.map((k) => this.fullOf(k))
    if (!this.tel.on) return this.#publisher.keys(op, full)
    this.tel.published(op)
    return this.#publisher.keys(op, full, this.tel.traceparent())
  }

  publish(message: Omit<BusMessage, 'source' | 'seq' | 'ts'>): Promise<void> {
    if (!this.#publisher) return Promise.resolve()
    if (!this.tel.on) return this.#publisher.send(message)
    this.tel.published(message.op)
    return this.#publisher.send({ ...message, trace: this.tel.traceparent() })
  }

  // ------------------------------------------------------------ L2 repair
  //
  // A write whose L2 part failed leaves the old value in L2 (Redis down or timing out):
  // peers that miss L1 would read it back until its TTL. Such keys are deleted from L2
  // in the background once Redis answers again (backoff 100 ms → 5 s), and the deletion
  // is published so peers drop what they read meanwhile. A later successful write of
  // the key cancels its repair.

  readonly #repairs = new Set<string>()
  #repairTimer: ReturnType<ResolvedOptions['clock']['setTimeout']> | undefined
  #repairDelay = 100
  static readonly maxRepairs = 100_000

  scheduleRepair(keys: readonly string[]): void {
    if (!this.l2) return
    for (const k of keys) {
      if (this.#repairs.size >= Engine.maxRepairs) {
        this.reportError(
          new Error('L2 repair queue full: a stale L2 value may stay until its TTL'),
          'l2.repair',
          k,
        )
        break
      }
      this.#repairs.add(k)
    }
    this.#armRepair()
  }

  repaired(keys: readonly string[]): void {
    if (this.#repairs.size === 0) return
    for (const k of keys) this.#repairs.delete(k)
  }

  get pendingRepairs(): number {
    return this.#repairs.size
  }

  #armRepair(): void {
    if (this.#repairTimer !== undefined || this.#closed || this.#repairs.size === 0) return
    this.#repairTimer = this.o.clock.setTimeout(() => {
      this.#repairTimer = undefined
      void this.#repair()
    }, this.#repairDelay)
    this.#repairTimer.unref?.()
  }

  async #repair(): Promise<void> {
    const l2 = this.l2
    const keys = [...this.#repairs].slice(0, 1_000)
    if (!l2 || keys.length === 0) return
    try {
      await l2.delete(keys.map((k) => this.fullOf(k)))
      for (const k of keys) this.#repairs.delete(k)
      this.invalidateKeysLocal(keys)
      await this.publishKeys('delete', keys)
      this.#repairDelay = 100
    } catch {
      this.#repairDelay = Math.min(this.#repairDelay * 2, 5_000)
    }
    this.#armRepair()
  }

  // -------------------------------------------------------------- the bus

  #onBusMessage(m: BusMessage): void {
    if (m.source === this.source) return
    this.counters.received++
    if (this.tel.on)
      this.tel.received(
        m.op,
        m.ts,
        m.trace,
        m.keys?.length ?? m.tags?.length ?? m.prefixes?.length ?? 0,
      )
    switch (m.op) {
      case 'delete':
      case 'set': {
        const keys = mapOwn(m.keys, (full) => this.l1Of(full))
        if (keys.length > 0) this.invalidateKeysLocal(keys)
        break
      }
      case 'tags':
        if (m.tags && m.tags.length > 0) this.invalidateTagsLocal(m.tags)
        break
      case 'clear':
      case 'clear-namespace': {
        const prefixes = mapOwn(m.prefixes, (full) => this.l1PrefixOf(full))
        if (prefixes.length > 0) this.clearLocal(prefixes)
        break
      }
    }
  }

  #onBusState(state: BusState, reason: string, resynced: boolean): void {
    const previous = this.#busState
    this.#busState = state
    if (this.events.has['bus:state']) this.events.emit('bus:state', { state, reason })
    const all = ['']
    if (state === BusState.degraded && previous !== BusState.degraded) {
      this.counters.degraded++
      if (this.o.onGap === 'clear') {
        this.clearLocal(all)
      } else {
        // Keep serving what we have for a short while, then drop it.
        this.#broadEpoch = ++this.#epoch
        if (this.#clampTimer) this.o.clock.clearTimeout(this.#clampTimer)
        this.#clampTimer = this.o.clock.setTimeout(() => {
          this.#clampTimer = undefined
          if (this.#busState === BusState.degraded) this.clearLocal(all)
        }, this.o.degradedL1Ttl)
      }
      if (this.events.has['bus:degraded']) this.events.emit('bus:degraded', { reason })
    } else if (state === BusState.connected && (resynced || previous === BusState.degraded)) {
      // Anything may have changed while we were deaf: start from L2 again.
      this.clearLocal(all)
      if (this.#clampTimer) this.o.clock.clearTimeout(this.#clampTimer)
      this.#clampTimer = undefined
      this.counters.resynced++
      if (this.events.has['bus:resynced']) this.events.emit('bus:resynced', { reason })
    }
  }

  #onEvict(key: string, reason: EvictionReason): void {
    const c = this.counters.evictions
    c[reason] = (c[reason] ?? 0) + 1
    if (this.tel.on) this.tel.evicted(reason)
    if (this.events.has.evict) this.events.emit('evict', { key: this.fullOf(key), reason })
  }

  // ----------------------------------------------------------- lifecycle

  stats(): CacheStats {
    const c = this.counters
    return {
      name: this.o.name,
      l1: {
        hits: c.l1Hits,
        misses: c.l1Misses,
        entries: this.l1?.size ?? 0,
        bytes: this.l1?.bytes ?? 0,
        evictions: { ...c.evictions },
      },
      l2: {
        hits: c.l2Hits,
        misses: c.l2Misses,
        errors: c.l2Errors,
        corrupt: c.corrupt,
        pendingRepairs: this.#repairs.size,
      },
      loads: c.loads,
      loadErrors: c.loadErrors,
      coalesced: c.coalesced,
      staleServed: c.staleServed,
      discardedFills: c.discardedFills,
      errors: c.errors,
      bus: {
        state: this.o.bus ? this.o.bus.state : 'none',
        published: c.published,
        received: c.received,
        publishErrors: c.publishErrors,
        degradedCount: c.degraded,
        resyncedCount: c.resynced,
      },
    }
  }

  get closed(): boolean {
    return this.#closed
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.tel.close()
    if (this.#repairTimer !== undefined) this.o.clock.clearTimeout(this.#repairTimer)
    if (this.#repairs.size > 0) {
      this.reportError(
        new Error(`${this.#repairs.size} keys were still waiting for their L2 repair at close`),
        'close',
        undefined,
        errors.E_L2_UNAVAILABLE,
      )
    }
    if (this.#clampTimer) this.o.clock.clearTimeout(this.#clampTimer)
    await Promise.allSettled([...this.#flights.values()].map((f) => f.done))
    const dropped = this.#publisher?.close() ?? 0
    if (dropped > 0) {
      this.reportError(
        new Error(`${dropped} invalidations were still queued for the bus at close`),
        'close',
        undefined,
        errors.E_BUS_UNAVAILABLE,
      )
    }
    await this.o.bus?.close()
    await this.l2?.close()
    this.l1?.close?.()
  }
}
