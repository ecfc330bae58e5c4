import type { Entry } from '../contracts.js'
import { CacheError, errors, invalidOption } from '../errors.js'
import { resolveCall, type CallPolicy, type EntryOptions } from '../call.js'
import type { Probe } from '../telemetry.js'
import type { FailSafe } from './fail-safe.js'
import { Flight, type Job, type Outcome } from './flight.js'
import { ReadSteps, servable } from './read-steps.js'
import type { L1Tier } from './l1.js'
import type { L2Answer, L2Tier } from './l2.js'
import type { Loader, Loaders, Source } from './loader.js'
import { lockedLoad } from './lock.js'
import type { Shared } from './shared.js'
import { Store } from './store.js'

/** The `todo` of a one-key job (shared, never mutated): no array per miss. */
const ALL_OF_ONE: readonly number[] = Object.freeze([0])

/** Every key of `job` is still to load. */
function allOf(job: Job): readonly number[] {
  return job.keys.length === 1 ? ALL_OF_ONE : job.keys.map((_, j) => j)
}

/**
 * The read pipeline. `get`, `getMany`, `getOrSet`, `getOrSetMany`, refresh-ahead,
 * soft-timeout completion and the lock path all run through these steps, once each:
 * L1 (in the façade) → L2 (leases on a miss) → flight → lock → loader → guarded L2
 * fill → guarded L1 fill. Hit accounting, events and hooks live in `ReadSteps`; the
 * loader call and the two fills in `Store`.
 */
export class ReadPipeline {
  readonly #s: Shared
  readonly #l1: L1Tier | undefined
  readonly #l2: L2Tier | undefined
  readonly #failSafe: FailSafe
  /** The steps every read shares, and the reads that never load (`get`, `getMany`). */
  readonly steps: ReadSteps
  readonly flights = new Map<string, Flight>()
  readonly #running = new Set<Job>()
  readonly #store: Store

  constructor(
    shared: Shared,
    l1: L1Tier | undefined,
    l2: L2Tier | undefined,
    loaders: Loaders,
    failSafe: FailSafe,
  ) {
    this.#s = shared
    this.#l1 = l1
    this.#l2 = l2
    this.#failSafe = failSafe
    this.steps = new ReadSteps(shared, l1, l2)
    this.#store = new Store({ shared, l1, l2, loaders, failSafe })
  }

  /** `getOrSetMany`: one L1 pass, then one load (one loader call) for what L1 missed. */
  async getOrSetMany(
    keys: readonly string[],
    userKeys: readonly string[],
    source: Source,
    options: EntryOptions | undefined,
    probe?: Probe,
  ): Promise<unknown[]> {
    const out = new Array<unknown>(keys.length)
    const missing =
      this.#l1 && options?.forceFresh !== true
        ? this.#l1.readMany(keys, out)
        : keys.map((_, i) => i)
    if (missing.length === 0) return out
    const outcomes = await this.load(
      missing.map((i) => keys[i] as string),
      missing.map((i) => userKeys[i] as string),
      source,
      options,
    )
    missing.forEach((i, j) => (out[i] = this.#s.out(outcomes[j]?.entry.value)))
    if (probe) probe.tier = outcomes.some((o) => o.tier === 'loader') ? 'loader' : 'l2'
    return out
  }

  // -------------------------------------------------------------- load path

  /**
   * After L1 missed `keys`: join live flights (only those no invalidation has overtaken),
   * start one job for the rest, and await each key under the caller's own hard timeout.
   */
  async load(
    keys: readonly string[],
    userKeys: readonly string[],
    source: Source,
    options: EntryOptions | undefined,
    probe?: Probe,
  ): Promise<Outcome[]> {
    const p = resolveCall(this.#s.o, options)
    const waits = new Map<string, Promise<Outcome>>()
    const fresh: number[] = []
    keys.forEach((k, i) => {
      if (waits.has(k)) return
      const joined = p.forceFresh ? undefined : this.#join(k, p, probe)
      if (joined) waits.set(k, joined)
      else fresh.push(i)
    })
    if (fresh.length > 0) {
      const job = this.start(
        fresh.map((i) => keys[i] as string),
        fresh.map((i) => userKeys[i] as string),
        source,
        p,
        undefined,
      )
      job.keys.forEach((k, j) => waits.set(k, (job.flights[j] as Flight).result))
    }
    // Promise.all observes every rejection, so one failed key leaves no unhandled ones.
    return Promise.all(keys.map((k) => waits.get(k) as Promise<Outcome>))
  }

  /**
   * `getOrSet` after an L1 miss: the one-key load. It reads L2 first (batched with the tick's other
   * reads, a lease taken on a miss) and builds a flight only on a miss: an L2 hit costs
   * no flight. A miss hands what it read to the job, which does not read again.
   */
  async getOrSetOne(
    k: string,
    userKey: string,
    loader: Loader<unknown>,
    options: EntryOptions | undefined,
    probe?: Probe,
  ): Promise<unknown> {
    if (typeof loader !== 'function') throw invalidOption('core', 'loader', 'must be a function')
    const s = this.#s
    if (this.#l1) s.counters.l1Misses++
    const p = resolveCall(s.o, options)
    let o: Outcome
    // forceFresh joins nobody and reads L2 only for a stale fallback and a lease (in the job).
    const joined = p.forceFresh ? undefined : this.#join(k, p, probe)
    if (joined) o = await joined
    else if (!this.#l2 || p.forceFresh) o = await this.#startOne(k, userKey, loader, p, undefined)
    else {
      // This read's L1 fill is guarded; a miss's flight begins its own guard.
      const start = this.steps.beginFillGuard(k)
      let read: L2Answer[]
      try {
        read = await this.#l2.read([k], true)
        const e = (read[0] as L2Answer).entry
        if (servable(e, s.o.clock.now())) {
          // The hit: no outcome object, no further hop unless a test hook runs.
          const hooked = this.steps.l2Hit(k, e, start, p)
          if (hooked) await hooked
          return this.#answer(e, 'l2', false, probe)
        }
      } finally {
        this.steps.endFillGuard(k)
      }
      // Someone may have started the load while we read: join it (leases are shared).
      o = await (this.#join(k, p, probe) ?? this.#startOne(k, userKey, loader, p, read))
    }
    return this.#answer(o.entry, o.tier, o.stale, probe)
  }

  /** What a `getOrSet` caller gets, its probe told where it came from. */
  #answer(entry: Entry, tier: Outcome['tier'], stale: boolean, probe: Probe | undefined): unknown {
    if (probe) {
      probe.tier = tier
      probe.hit = tier === 'l2'
      probe.stale = stale
    }
    return this.#s.out(entry.value)
  }

  /** The load of one key (its source built here: an L2 hit needs none). */
  #startOne(
    k: string,
    userKey: string,
    loader: Loader<unknown>,
    p: CallPolicy,
    read: L2Answer[] | undefined,
  ): Promise<Outcome> {
    const source: Source = { kind: 'one', loader }
    return (this.start([k], [userKey], source, p, undefined, read).flights[0] as Flight).result
  }

  /**
   * What a caller of `k` waits on instead of starting a load: a live flight that no
   * invalidation has overtaken (under the caller's own hard timeout), or the stale entry
   * of a key backing off after a failure. `undefined`: start a load.
   */
  #join(k: string, p: CallPolicy, probe: Probe | undefined): Promise<Outcome> | undefined {
    const s = this.#s
    const live = this.flights.get(k)
    if (live && !live.finished && s.guard.allowed(k, live.tags, live.start)) {
      s.counters.coalesced++
      if (probe) probe.coalesced = true
      return this.#failSafe.within(k, live, p.hard)
    }
    const stale = this.#failSafe.backingOff(k)
    if (!stale) return undefined
    this.#failSafe.served(k, stale, 'backoff')
    return Promise.resolve({ entry: stale, tier: 'loader', stale: true })
  }

  /** After an L1 hit that left `refreshDue`: start its one background refresh. */
  refreshDue(
    key: string,
    userKey: string,
    loader: Loader<unknown>,
    options: EntryOptions | undefined,
  ): void {
    const l1 = this.#l1 as L1Tier
    const due = l1.refreshDue as Entry
    l1.refreshDue = undefined
    this.refresh(key, userKey, { kind: 'one', loader }, options, due)
  }

  /** A hit past the refresh-ahead point: one background refresh of the key. */
  refresh(
    key: string,
    userKey: string,
    source: Source,
    options: EntryOptions | undefined,
    current: Entry,
  ): void {
    const live = this.flights.get(key)
    if ((live && !live.finished) || this.#s.closed) return
    let p: CallPolicy
    try {
      p = resolveCall(this.#s.o, options)
    } catch {
      return
    }
    this.start([key], [userKey], source, p, current)
  }

  /** Registers one flight per key and runs the job in the background. */
  start(
    keys: string[],
    userKeys: string[],
    source: Source,
    p: CallPolicy,
    refreshing: Entry | undefined,
    read?: L2Answer[],
  ): Job {
    const s = this.#s
    const job: Job = {
      keys,
      userKeys,
      source,
      p,
      flights: keys.map(
        (k) => new Flight(s.guard.begin(k), p.tags, refreshing ?? this.#l1?.stale(k)),
      ),
      refreshing,
      read,
      timedOut: false,
      closed: false,
      controller: undefined,
      signal: () => (job.controller ??= new AbortController()).signal,
    }
    keys.forEach((k, j) => this.flights.set(k, job.flights[j] as Flight))
    this.#running.add(job)
    const done = () => {
      keys.forEach((k, j) => {
        ;(job.flights[j] as Flight).finished = true
        s.guard.end(k)
        if (this.flights.get(k) === job.flights[j]) this.flights.delete(k)
      })
      this.#running.delete(job)
    }
    void this.#run(job).then(done, (err: unknown) => {
      for (const f of job.flights) f.fail(err)
      done()
    })
    return job
  }

  /** At close: every loader's signal is aborted (loaders that honour it end early). */
  abortAll(): void {
    const err = new CacheError(errors.E_CLOSED, '[core] the cache closed during the load')
    for (const job of this.#running) {
      job.timedOut = true
      job.closed = true
      ;(job.controller ??= new AbortController()).abort(err)
      for (const f of job.flights) f.fail(err)
    }
  }

  async #run(job: Job): Promise<void> {
    const s = this.#s
    const clock = s.o.clock
    const { p } = job
    const hard =
      p.hard > 0 ? clock.setTimeout(() => this.#failSafe.hardTimeout(job), p.hard) : undefined
    let soft: ReturnType<typeof clock.setTimeout> | undefined
    try {
      let todo = this.#l2 ? this.#triage(job, job.read ?? (await this.#readL2(job))) : allOf(job)
      if (todo instanceof Promise) todo = await todo
      if (todo.length === 0) return
      if (p.soft > 0 && todo.some((j) => job.flights[j]?.stale)) {
        soft = clock.setTimeout(() => {
          for (const j of todo) this.#failSafe.serveStale(job, j, 'soft-timeout')
        }, p.soft)
      }
      for (const j of todo) this.steps.miss(job.keys[j] as string)
      if (job.keys.length === 1 && p.distributedLock && !p.forceFresh && this.#l2?.driver.locks)
        await lockedLoad(job, this.#s, this.#l2, this)
      else await this.loadAndStore(job, todo)
    } finally {
      if (hard !== undefined) clock.clearTimeout(hard)
      if (soft !== undefined) clock.clearTimeout(soft)
    }
  }

  /** L2 with leases on a miss (forceFresh: leases on hits too, what L2 holds being only a stale fallback). */
  async #readL2(job: Job): Promise<L2Answer[]> {
    const l2 = this.#l2 as L2Tier
    const found = await l2.read(job.keys, true)
    if (job.p.forceFresh) await l2.leaseServed(job.keys, found)
    return found
  }

  /**
   * What L2 answered: fresh entries settle their flights, the rest is still to load
   * (synchronous unless something was served: the miss path awaits nothing here).
   */
  #triage(job: Job, found: L2Answer[]): readonly number[] | Promise<readonly number[]> {
    const force = job.p.forceFresh
    const now = this.#s.o.clock.now()
    const lone = job.keys.length === 1
    let todo: readonly number[] | undefined
    let served: Promise<unknown>[] | undefined
    for (let j = 0; j < job.keys.length; j++) {
      const { entry: e, token } = found[j] as L2Answer
      const flight = job.flights[j] as Flight
      flight.token = token
      if (!force && servable(e, now) && (!job.refreshing || e.version > job.refreshing.version)) {
        ;(served ??= []).push(
          this.steps
            .l2Served(job.keys[j] as string, e, flight.start, job.p)
            .then((o) => flight.settle(o)),
        )
        continue
      }
      if (e && e.staleUntil > now && (!flight.stale || e.version > flight.stale.version))
        flight.stale = e
      if (lone) todo = ALL_OF_ONE
      else ((todo ??= []) as number[]).push(j)
    }
    todo ??= []
    return served ? Promise.all(served).then(() => todo) : todo
  }

  /** Calls the loader for `todo`, stores what it returned (L2 then L1), settles the flights. */
  loadAndStore(job: Job, todo: readonly number[]): Promise<void> {
    return this.#store.run(job, todo)
  }
}
