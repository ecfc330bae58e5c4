import { L1Record, type Entry, type L1Driver } from '../contracts.js'
import type { CallPolicy } from '../call.js'
import { HOT_SAMPLE_MASK, type HotSet } from './hot-set.js'
import type { Shared } from './shared.js'

/** "Nothing servable" (a cached value can be `null`, never this). */
export const NONE: unique symbol = Symbol('none')

/**
 * The L1 steps every read and write shares: what may be served, what is still stale
 * within grace, and the one guarded write (fills and local writes alike).
 */
export class L1Tier {
  readonly driver: L1Driver
  readonly #s: Shared
  // Hot-path references, read once (no property chains on a hit).
  readonly #counters: Shared['counters']
  readonly #has: Shared['events']['has']
  readonly #tel: Shared['tel']
  readonly #clone: boolean
  /** Set by `serve(…, true)` when the hit is past its refresh-ahead point; the caller takes it. */
  refreshDue: L1Record | undefined
  /** The replica's hot-key tracker, when the hot set is on. */
  hot: HotSet | undefined

  constructor(driver: L1Driver, shared: Shared) {
    this.driver = driver
    this.#s = shared
    this.#counters = shared.counters
    this.#has = shared.events.has
    this.#tel = shared.tel
    this.#clone = shared.o.clone
  }

  /**
   * The L1 step of `get`/`getOrSet`: the servable value of `k` with its hit bookkeeping
   * (counter, event, telemetry), or `NONE`. With `refresh`, a hit past its refresh-ahead
   * point is left in `refreshDue` for the caller to start one background refresh.
   */
  serve(op: string, ns: string, k: string, refresh: boolean): unknown {
    const hit = this.driver.get(k)
    if (hit === undefined) return NONE
    let value: unknown = hit
    if (hit instanceof L1Record) {
      const now = this.#s.now()
      value = this.fresh(hit, now)
      if (value === NONE) return NONE
      if (refresh && hit.refreshAt <= now) this.refreshDue = hit
    }
    this.#counters.l1Hits++
    if (this.hot !== undefined) this.#sampleHot(k)
    if (this.#has.hit) this.#hitEvent(k)
    if (this.#tel.on) this.#tel.l1Hit(op, ns, k)
    return this.#clone ? this.#s.out(value) : value
  }

  #rnd = 0x9e3779b9
  /** 1 hit in 16 at random (xorshift32: a counter would alias with periodic access patterns). */
  #sampleHot(k: string): void {
    let x = this.#rnd
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#rnd = x
    if ((x & HOT_SAMPLE_MASK) === 0) this.hot?.touch(k)
  }

  #hitEvent(k: string): void {
    const s = this.#s
    s.events.emit('hit', { key: s.keys.fullOf(k), tier: 'l1', stale: false })
  }

  /** The value of what L1 returned if it may be served now, else `NONE`. */
  fresh(stored: unknown, now: number): unknown {
    if (stored === undefined) return NONE
    if (!(stored instanceof L1Record)) return stored
    return stored.freshUntil > now && this.#s.guard.tagsValid(stored) ? stored.value : NONE
  }

  /**
   * One pass over many keys: servable values go into `out` (hits counted), and the
   * indexes still to look up elsewhere are returned (misses counted).
   */
  readMany(keys: readonly string[], out: unknown[]): number[] {
    const s = this.#s
    const now = s.o.clock.now()
    const missing: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const value = this.fresh(this.driver.get(keys[i] as string), now)
      if (value !== NONE) {
        s.counters.l1Hits++
        out[i] = s.out(value)
      } else {
        s.counters.l1Misses++
        missing.push(i)
      }
    }
    return missing
  }

  /** The L1 copy of `key` if it may still be served stale (within grace, tags valid). */
  stale(key: string): Entry | undefined {
    const e = this.driver.peek ? this.driver.peek(key) : this.driver.get(key)
    // Bare values have no grace: past their TTL they are gone.
    if (!(e instanceof L1Record) || e.staleUntil <= this.#s.o.clock.now()) return undefined
    return this.#s.guard.tagsValid(e) ? e : undefined
  }

  /**
   * Writes `entry` unless an invalidation of its key, a tag, or everything happened
   * after epoch `start` (then counts a discarded fill). `p` carries the per-call L1 cap
   * and marks a read fill (refresh-ahead applies to getOrSet fills only).
   */
  fill(
    key: string,
    entry: Entry,
    start: number,
    p: CallPolicy | undefined,
    refresh: boolean,
  ): boolean {
    const s = this.#s
    if (!s.guard.allowed(key, entry.tags, start)) {
      s.counters.discardedFills++
      return false
    }
    this.#write(key, entry, start, p?.l1Ttl ?? s.o.l1Ttl, refresh)
    return true
  }

  delete(keys: readonly string[]): void {
    for (const k of keys) this.driver.delete(k)
  }

  clear(prefixes: readonly string[]): void {
    for (const p of prefixes) this.driver.clear(p === '' ? undefined : p)
  }

  #write(key: string, entry: Entry, gen: number, cap: number, refresh: boolean): void {
    const s = this.#s
    const now = s.o.clock.now()
    let freshUntil = entry.freshUntil
    let life = entry.staleUntil - now
    if (cap > 0) freshUntil = Math.min(freshUntil, now + cap)
    if (s.deaf) {
      // No invalidation can arrive (bus connecting or degraded): bound how long this copy lives.
      freshUntil = Math.min(freshUntil, now + s.o.degradedL1Ttl)
      life = Math.min(life, s.o.degradedL1Ttl)
    }
    if (life <= 0) return
    const ra = s.o.refreshAhead
    const refreshAt =
      ra > 0 && refresh ? entry.createdAt + (entry.freshUntil - entry.createdAt) * ra : Infinity
    if (entry.tags.length === 0 && entry.staleUntil <= entry.freshUntil && refreshAt === Infinity) {
      // Nothing to check on a hit but freshness: store the bare value, its TTL is the freshness.
      const fresh = freshUntil - now
      if (fresh > 0) this.driver.set(key, entry.value, fresh)
      return
    }
    this.driver.set(
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
}
