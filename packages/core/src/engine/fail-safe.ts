import { L1Record, type Entry } from '../contracts.js'
import { CacheError, errors } from '../errors.js'
import type { Flight, Job, Outcome } from './flight.js'
import type { Shared } from './shared.js'

export type StaleReason = 'loader-error' | 'soft-timeout' | 'hard-timeout' | 'backoff'

export function timeoutError(hard: number): CacheError {
  return new CacheError(
    errors.E_LOADER_TIMEOUT,
    `[core] the loader did not finish within the hard timeout (${hard} ms)`,
  )
}

/**
 * One stale value handed to a caller: counted, and the `hit` event says `stale: true`
 * with the tier the value came from (an L1 copy, or an entry read from L2).
 */
export function staleServed(s: Shared, key: string, entry: Entry): void {
  s.counters.staleServed++
  if (s.tel.on) s.tel.staleServed()
  if (s.events.has.hit) {
    const tier = entry instanceof L1Record ? 'l1' : 'l2'
    s.events.emit('hit', { key: s.keys.fullOf(key), tier, stale: true })
  }
}

/**
 * Fail-safe: what a load that failed, timed out or is slow hands its callers. A stale
 * entry within grace is served (once per flight, counted once, one event); after a
 * failure the key backs off for `graceBackoff` — callers get the stale entry, marked
 * stale, without a loader call — and the L1 copy is left as it was (stale entries stay
 * misses for `get`; nothing past its TTL is re-marked fresh). Without a stale entry the
 * callers get the error.
 */
export class FailSafe {
  readonly #s: Shared
  readonly #backoff = new Map<string, { until: number; entry: Entry }>()
  static readonly maxBackoff = 10_000

  constructor(shared: Shared) {
    this.#s = shared
  }

  /** Counts and reports one stale value handed out. */
  served(key: string, entry: Entry, reason: StaleReason): void {
    const s = this.#s
    staleServed(s, key, entry)
    if (s.events.has.stale && reason !== 'backoff')
      s.events.emit('stale', { key: s.keys.fullOf(key), reason })
  }

  /** Serves the stale entry of flight `j` (once per flight) if there is one within grace. */
  serveStale(job: Job, j: number, reason: StaleReason): boolean {
    const flight = job.flights[j] as Flight
    const stale = flight.stale
    if (flight.settled || !stale || stale.staleUntil <= this.#s.o.clock.now()) return false
    flight.settle({ entry: stale, tier: 'loader', stale: true })
    this.served(job.keys[j] as string, stale, reason)
    return true
  }

  /** The load of key `j` failed: stale within grace if any (and back off), else the error. */
  fail(job: Job, j: number, err: unknown, reason: 'loader-error' | 'hard-timeout'): void {
    const flight = job.flights[j] as Flight
    if (flight.stale && flight.stale.staleUntil > this.#s.o.clock.now())
      this.#backOff(job.keys[j] as string, flight.stale)
    if (!this.serveStale(job, j, reason)) flight.fail(err)
  }

  /**
   * What a caller that joined `flight` gets: its result, but no later than the caller's
   * own hard timeout — then the stale entry within grace, else E_LOADER_TIMEOUT.
   */
  within(key: string, flight: Flight, hard: number): Promise<Outcome> {
    if (hard <= 0 || flight.settled) return flight.result
    const clock = this.#s.o.clock
    return new Promise<Outcome>((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        const stale = flight.stale
        if (stale && stale.staleUntil > clock.now()) {
          this.served(key, stale, 'hard-timeout')
          resolve({ entry: stale, tier: 'loader', stale: true })
        } else reject(timeoutError(hard))
      }, hard)
      flight.result.then(resolve, reject).finally(() => clock.clearTimeout(timer))
    })
  }

  /** The job's hard timeout fired: abort the loader, fail-safe every unsettled key. */
  hardTimeout(job: Job): void {
    job.timedOut = true
    const err = timeoutError(job.p.hard)
    job.controller?.abort(err)
    this.#s.counters.loadErrors++
    let reported = false
    job.flights.forEach((f, j) => {
      if (f.settled) return
      if (!reported) this.#s.report(err, 'loader', job.keys.length === 1 ? job.keys[0] : undefined)
      reported = true
      this.fail(job, j, err, 'hard-timeout')
    })
  }

  #backOff(key: string, entry: Entry): void {
    const backoff = this.#s.o.graceBackoff
    if (backoff <= 0) return
    const until = Math.min(this.#s.o.clock.now() + backoff, entry.staleUntil)
    this.#backoff.delete(key)
    if (this.#backoff.size >= FailSafe.maxBackoff) {
      const oldest = this.#backoff.keys().next().value
      if (oldest !== undefined) this.#backoff.delete(oldest)
    }
    this.#backoff.set(key, { until, entry })
  }

  /** The stale entry to serve instead of loading, while `key` backs off. */
  backingOff(key: string): Entry | undefined {
    if (this.#backoff.size === 0) return undefined
    const b = this.#backoff.get(key)
    if (!b) return undefined
    if (b.until > this.#s.o.clock.now()) return b.entry
    this.#backoff.delete(key)
    return undefined
  }

  /** An invalidation ends the backoff (the stale entry is no longer servable). */
  forget(keys: readonly string[] | undefined): void {
    if (this.#backoff.size === 0) return
    if (keys === undefined) this.#backoff.clear()
    else for (const k of keys) this.#backoff.delete(k)
  }
}
