import type { Entry } from '../contracts.js'
import { CacheError, errors } from '../errors.js'
import { resolveCall, type CallPolicy, type EntryOptions } from '../options.js'
import type { Probe } from '../telemetry.js'
import { Flight, type Outcome } from './flight.js'
import type { L1Tier } from './l1.js'
import type { L2Answer, L2Tier } from './l2.js'
import type { Loaded, Loaders, Source } from './loader.js'
import { lockedLoad } from './lock.js'
import type { Shared } from './shared.js'

type StaleReason = 'loader-error' | 'soft-timeout' | 'hard-timeout' | 'backoff'

/** One load of some keys (a single key is a batch of one): the state its steps share. */
export interface Job {
  keys: string[]
  userKeys: string[]
  source: Source
  p: CallPolicy
  flights: Flight[]
  tokens: (string | undefined)[]
  /** Set when the refresh-ahead of an L1 entry started it: only a newer L2 entry counts. */
  refreshing: Entry | undefined
  timedOut: boolean
  controller: AbortController | undefined
}

/** Whether the job's hard timeout fired or the cache closed (a function: it changes across awaits). */
export function over(job: Job): boolean {
  return job.timedOut
}

/**
 * The read pipeline. `get`, `getMany`, `getOrSet`, `getOrSetMany`, refresh-ahead,
 * soft-timeout completion and the lock path all run through these steps, once each:
 * L1 (in the façade) → L2 (leases on a miss) → flight → lock → loader → guarded L2
 * fill → guarded L1 fill. Hit accounting, events and hooks live in `#l2Hit`/`#miss`.
 */
export class ReadPipeline {
  readonly #s: Shared
  readonly #l1: L1Tier | undefined
  readonly #l2: L2Tier | undefined
  readonly #loaders: Loaders
  readonly flights = new Map<string, Flight>()
  readonly #running = new Set<Job>()

  constructor(shared: Shared, l1: L1Tier | undefined, l2: L2Tier | undefined, loaders: Loaders) {
    this.#s = shared
    this.#l1 = l1
    this.#l2 = l2
    this.#loaders = loaders
  }

  // ------------------------------------------------------------ shared steps

  /** A fresh entry read from L2: counted, the hook, a guarded L1 fill, the event. */
  async l2Hit(key: string, entry: Entry, start: number, p: CallPolicy | undefined): Promise<void> {
    const s = this.#s
    s.counters.l2Hits++
    if (s.hooks?.beforeL1Fill) await s.hooks.beforeL1Fill(key)
    this.#l1?.fill(key, entry, start, p, p !== undefined)
    if (s.events.has.hit)
      s.events.emit('hit', { key: s.keys.fullOf(key), tier: 'l2', stale: false })
  }

  #miss(key: string): void {
    const s = this.#s
    if (this.#l2) s.counters.l2Misses++
    if (s.events.has.miss) s.events.emit('miss', { key: s.keys.fullOf(key) })
  }

  #servedStale(key: string, reason: StaleReason): void {
    const s = this.#s
    s.counters.staleServed++
    if (s.tel.on) s.tel.staleServed()
    if (s.events.has.stale && reason !== 'backoff')
      s.events.emit('stale', { key: s.keys.fullOf(key), reason })
  }

  // --------------------------------------------------------------- get path

  /** After L1 missed `idx` of `keys`: one L2 batch, guarded L1 fills. Never loads. */
  async get(
    keys: readonly string[],
    idx: readonly number[],
    out: unknown[],
    probe?: Probe,
  ): Promise<void> {
    const s = this.#s
    const l2 = this.#l2
    const missing = idx.map((i) => keys[i] as string)
    if (!l2) {
      for (const k of missing) this.#miss(k)
      return
    }
    const starts = missing.map((k) => s.guard.begin(k))
    try {
      const found = await l2.read(missing, false)
      const now = s.o.clock.now()
      for (let j = 0; j < missing.length; j++) {
        const k = missing[j] as string
        const e = (found[j] as L2Answer).entry
        if (e && e.freshUntil > now) {
          await this.l2Hit(k, e, starts[j] as number, undefined)
          out[idx[j] as number] = s.out(e.value)
          if (probe) {
            probe.tier = 'l2'
            probe.hit = true
          }
        } else this.#miss(k)
      }
    } finally {
      for (const k of missing) s.guard.end(k)
    }
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
    const s = this.#s
    const p = resolveCall(s.o, options)
    const flights = new Map<string, { flight: Flight; joined: boolean }>()
    const fresh: number[] = []
    const backedOff = new Map<string, Outcome>()
    keys.forEach((k, i) => {
      if (flights.has(k) || backedOff.has(k)) return
      const live = this.flights.get(k)
      if (live && !live.finished && s.guard.allowed(k, live.tags, live.start)) {
        s.counters.coalesced++
        if (probe) probe.coalesced = true
        flights.set(k, { flight: live, joined: true })
        return
      }
      const stale = this.#loaders.backingOff(k)
      if (stale) {
        this.#servedStale(k, 'backoff')
        backedOff.set(k, { entry: stale, tier: 'loader', stale: true })
        return
      }
      fresh.push(i)
      flights.set(k, { flight: undefined as unknown as Flight, joined: false })
    })
    if (fresh.length > 0) {
      const job = this.start(
        fresh.map((i) => keys[i] as string),
        fresh.map((i) => userKeys[i] as string),
        source,
        p,
        undefined,
      )
      job.keys.forEach((k, j) =>
        flights.set(k, { flight: job.flights[j] as Flight, joined: false }),
      )
    }
    // Promise.all observes every rejection, so one failed key leaves no unhandled ones.
    const outcomes = await Promise.all(
      keys.map((k) => {
        const b = backedOff.get(k)
        if (b) return Promise.resolve(b)
        const f = flights.get(k) as { flight: Flight; joined: boolean }
        return f.joined ? this.#await(k, f.flight, p.hard) : f.flight.result
      }),
    )
    if (probe && outcomes.length === 1) {
      const o = outcomes[0] as Outcome
      probe.tier = o.tier
      probe.hit = o.tier === 'l2'
      probe.stale = o.stale
    }
    return outcomes
  }

  /** A caller that joined a flight waits under its own hard timeout (stale within grace, else E_LOADER_TIMEOUT). */
  #await(key: string, flight: Flight, hard: number): Promise<Outcome> {
    if (hard <= 0 || flight.settled) return flight.result
    const clock = this.#s.o.clock
    return new Promise<Outcome>((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        const stale = flight.stale
        if (stale && stale.staleUntil > clock.now()) {
          this.#servedStale(key, 'hard-timeout')
          resolve({ entry: stale, tier: 'loader', stale: true })
        } else reject(timeoutError(hard))
      }, hard)
      flight.result.then(resolve, reject).finally(() => clock.clearTimeout(timer))
    })
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
  ): Job {
    const s = this.#s
    const starts = keys.map((k) => s.guard.begin(k))
    const job: Job = {
      keys,
      userKeys,
      source,
      p,
      flights: keys.map(
        (k, j) => new Flight(starts[j] as number, p.tags, refreshing ?? this.#l1?.stale(k)),
      ),
      tokens: keys.map(() => undefined),
      refreshing,
      timedOut: false,
      controller: undefined,
    }
    keys.forEach((k, j) => this.flights.set(k, job.flights[j] as Flight))
    this.#running.add(job)
    void this.#run(job)
      .catch((err: unknown) => {
        for (const f of job.flights) f.fail(err)
      })
      .finally(() => {
        keys.forEach((k, j) => {
          ;(job.flights[j] as Flight).finished = true
          s.guard.end(k)
          if (this.flights.get(k) === job.flights[j]) this.flights.delete(k)
        })
        this.#running.delete(job)
      })
    return job
  }

  /** At close: every loader's signal is aborted (loaders that honour it end early). */
  abortAll(): void {
    const err = new CacheError(errors.E_CLOSED, '[core] the cache closed during the load')
    for (const job of this.#running) {
      job.timedOut = true
      ;(job.controller ??= new AbortController()).abort(err)
      for (const f of job.flights) f.fail(err)
    }
  }

  async #run(job: Job): Promise<void> {
    const s = this.#s
    const clock = s.o.clock
    const { p } = job
    const hard = p.hard > 0 ? clock.setTimeout(() => this.#hardTimeout(job), p.hard) : undefined
    let soft: ReturnType<typeof clock.setTimeout> | undefined
    try {
      let todo = job.keys.map((_, j) => j)
      if (this.#l2) todo = await this.#readL2(job)
      if (todo.length === 0) return
      if (p.soft > 0 && todo.some((j) => job.flights[j]?.stale)) {
        soft = clock.setTimeout(() => {
          for (const j of todo) this.#serveStale(job, j, 'soft-timeout')
        }, p.soft)
      }
      for (const j of todo) this.#miss(job.keys[j] as string)
      if (job.keys.length === 1 && p.distributedLock && this.#l2?.driver.locks)
        await lockedLoad(job, this.#s, this.#l2, this)
      else await this.loadAndStore(job, todo)
    } finally {
      if (hard !== undefined) clock.clearTimeout(hard)
      if (soft !== undefined) clock.clearTimeout(soft)
    }
  }

  /** L2 with leases on a miss; fresh entries settle their flights. Returns what is still to load. */
  async #readL2(job: Job): Promise<number[]> {
    const found = await (this.#l2 as L2Tier).read(job.keys, true)
    const now = this.#s.o.clock.now()
    const todo: number[] = []
    for (let j = 0; j < job.keys.length; j++) {
      const { entry: e, token } = found[j] as L2Answer
      const flight = job.flights[j] as Flight
      job.tokens[j] = token
      if (e && e.freshUntil > now && (!job.refreshing || e.version > job.refreshing.version)) {
        await this.l2Hit(job.keys[j] as string, e, flight.start, job.p)
        flight.settle({ entry: e, tier: 'l2', stale: false })
        continue
      }
      if (e && e.staleUntil > now && (!flight.stale || e.version > flight.stale.version))
        flight.stale = e
      todo.push(j)
    }
    return todo
  }

  /** Calls the loader for `todo`, stores what it returned (L2 then L1), settles the flights. */
  async loadAndStore(job: Job, todo: readonly number[]): Promise<void> {
    const s = this.#s
    if (job.timedOut) return
    const keys = todo.map((j) => job.keys[j] as string)
    let loaded: (Loaded | CacheError)[]
    try {
      loaded = await this.#loaders.call(
        job.source,
        keys,
        todo.map((j) => job.userKeys[j] as string),
        job.p,
        todo.map((j) => job.flights[j]?.stale),
        () => (job.controller ??= new AbortController()).signal,
      )
    } catch (err) {
      if (over(job)) return
      s.report(err, 'loader', keys.length === 1 ? keys[0] : undefined)
      for (const j of todo) this.#failSafe(job, j, err, 'loader-error')
      return
    }
    if (over(job)) return
    const fills: { j: number; entry: Entry; toL2: boolean }[] = []
    for (let i = 0; i < todo.length; i++) {
      const j = todo[i] as number
      const r = loaded[i] as Loaded | CacheError
      if (r instanceof CacheError) {
        ;(job.flights[j] as Flight).fail(r)
        continue
      }
      const versions = await r.versions
      // An entry whose tag versions could not be read cannot be checked by peers: L1 only.
      const entry = this.#loaders.entry(r, job.p, versions)
      fills.push({ j, entry, toL2: r.tags.length === 0 || versions !== undefined })
    }
    await this.#store(job, fills)
  }

  async #store(job: Job, fills: { j: number; entry: Entry; toL2: boolean }[]): Promise<void> {
    const s = this.#s
    const l2 = this.#l2
    const results = new Map<number, string>()
    const toL2 = fills.filter((f) => f.toL2)
    if (l2 && toL2.length > 0) {
      if (s.hooks?.beforeL2Fill)
        for (const f of toL2) await s.hooks.beforeL2Fill(job.keys[f.j] as string)
      const r = await l2.fill(
        toL2.map((f) => ({
          key: job.keys[f.j] as string,
          entry: f.entry,
          token: job.tokens[f.j],
          start: (job.flights[f.j] as Flight).start,
        })),
      )
      toL2.forEach((f, i) => results.set(f.j, r[i] as string))
    }
    for (const f of fills) {
      const flight = job.flights[f.j] as Flight
      // A revoked lease means a write overtook this load: the value must not be served from L1 either.
      if (results.get(f.j) !== 'revoked')
        this.#l1?.fill(job.keys[f.j] as string, f.entry, flight.start, job.p, true)
      flight.settle({ entry: f.entry, tier: 'loader', stale: false })
    }
  }

  #hardTimeout(job: Job): void {
    job.timedOut = true
    const err = timeoutError(job.p.hard)
    job.controller?.abort(err)
    this.#s.counters.loadErrors++
    let reported = false
    job.flights.forEach((f, j) => {
      if (f.settled) return
      if (!reported) this.#s.report(err, 'loader', job.keys.length === 1 ? job.keys[0] : undefined)
      reported = true
      this.#failSafe(job, j, err, 'hard-timeout')
    })
  }

  /** Serves the stale entry of flight `j` (once per flight) if there is one within grace. */
  #serveStale(job: Job, j: number, reason: StaleReason): boolean {
    const flight = job.flights[j] as Flight
    const stale = flight.stale
    if (flight.settled || !stale || stale.staleUntil <= this.#s.o.clock.now()) return false
    flight.settle({ entry: stale, tier: 'loader', stale: true })
    this.#servedStale(job.keys[j] as string, reason)
    return true
  }

  /** The load failed: stale within grace if any (and back off), else the error. */
  #failSafe(job: Job, j: number, err: unknown, reason: 'loader-error' | 'hard-timeout'): void {
    const flight = job.flights[j] as Flight
    if (flight.stale && flight.stale.staleUntil > this.#s.o.clock.now())
      this.#loaders.backOff(job.keys[j] as string, flight.stale)
    if (!this.#serveStale(job, j, reason)) flight.fail(err)
  }
}

function timeoutError(hard: number): CacheError {
  return new CacheError(
    errors.E_LOADER_TIMEOUT,
    `[core] the loader did not finish within the hard timeout (${hard} ms)`,
  )
}
