/**
 * The engine: every policy of Strata, one room per job. Drivers store; core decides.
 *
 * ## Consistency
 * The promise: after a write is acknowledged, no replica serves the old value for longer
 * than the staleness bound (bus propagation when healthy, `degradedL1Ttl` while the bus
 * is connecting or degraded), and no replica keeps a stale value indefinitely. Writes go
 * L2 first, then the local L1, then an invalidation on the bus; peers *drop* their copy
 * and read L2 again, they never receive values over the bus, so a lost message costs a
 * miss at worst once the bus resyncs (FusionCache's backplane works the same way; Redis
 * client-side caching's "flush on reconnect" rule is why a gap clears L1 [2]).
 *
 * ## Two pipelines
 * Every read runs through `ReadPipeline` (L1 → L2 with leases on a miss → flight → lock
 * → loader → guarded L2 fill → guarded L1 fill), a single key being a batch of one;
 * every write through `WritePipeline` (validate + encode → invalidate locally → L2 →
 * guarded L1 → publish; on failure drop, publish, repair, throw). Each step exists once,
 * so a guard added to a step guards every API.
 *
 * ## Guarded fills (design §6.1, §6.2)
 * An L1 fill (after an L2 read, a load, or a local write) is discarded when its key, one
 * of its tags, or everything was invalidated after the fill began (`FillGuard` epochs). An
 * L2 fill after a miss carries the lease token L2 handed out with the miss; a write or
 * delete revokes it and L2 refuses the late fill atomically (Meta's memcache leases [1]);
 * a refused fill is not put in L1 either. A caller arriving after an invalidation never
 * joins a flight that began before it. Tag versions are read before the source is read,
 * and L2 never hands out a tag version twice (a lost version restarts above every older
 * one), so an invalidation during a load, or a Redis that lost its tag keys, cannot make
 * an old entry pass a tag check.
 *
 * ## Stampede protection
 * One load per key per process (flights). Across replicas, `distributedLock` takes an L2
 * lock that the holder renews while loading; waiters poll L2 and compete for the lock
 * again, so one of them takes over from a holder that died.
 *
 * ## Failure modes
 * L2 errors are counted and read as misses (the driver owns command timeouts and its
 * breaker, so a call never waits on a dead Redis). A loader error or timeout serves a
 * stale value within grace when one exists (fail-safe) and backs off before calling the
 * loader again; otherwise it fails with a `CacheError` carrying the cause. Every caller
 * waits at most its own hard timeout, joiners included. Corrupt bytes in L2 are a counted
 * miss and the key is deleted. A write whose L2 part failed is repaired in the background.
 *
 * [1] Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013, §3.2.1 (leases).
 * [2] Redis docs, "Client-side caching", the section on connection loss and flushing.
 */
import { BusState, type EvictionReason } from '../contracts.js'
import type { CacheHealth } from '../health.js'
import type { WriteQueueStats } from '../write-behind.js'
import { CacheError, errors } from '../errors.js'
import type { CacheStats } from '../events.js'
import type { ResolvedOptions } from '../options.js'
import { Telemetry } from '../telemetry.js'
import { BusLink } from './bus-link.js'
import { FailSafe } from './fail-safe.js'
import { Invalidation } from './invalidation.js'
import { L1Tier } from './l1.js'
import { L2Tier } from './l2.js'
import { Loaders } from './loader.js'
import { ReadPipeline } from './read-pipeline.js'
import { Repair } from './repair.js'
import { HotSet, hottest } from './hot-set.js'
import { Shared } from './shared.js'
import { WritePipeline } from './writes.js'

export { NONE } from './l1.js'
export type { EngineHooks } from './shared.js'
export type { LoaderContext, Loader, BatchLoader, Source } from './loader.js'

/** Background probe attempts when Redis could not be reached at start. */
const PROBE_RETRIES = 10

/** How long `close()` waits for writes in flight before it closes the drivers. */
const CLOSE_TIMEOUT = 5_000

export class Engine {
  readonly s: Shared
  /** Repositories' write-behind queues: closed after writes in flight, before the bus. */
  readonly closers = new Set<() => Promise<void>>()
  /** Repositories' write-behind queue figures, for `health()`. */
  readonly writeQueues = new Set<() => WriteQueueStats>()
  readonly l1: L1Tier | undefined
  readonly l2: L2Tier | undefined
  readonly reads: ReadPipeline
  readonly writes: WritePipeline
  readonly bus: BusLink
  readonly #repair: Repair | undefined
  #closing: Promise<void> | undefined
  /** Bus subscription live and the L2 permission probe passed; rejects with the first failure. */
  readonly ready: Promise<void>

  constructor(o: ResolvedOptions) {
    const tel = new Telemetry(o.telemetry !== false, o.telemetry || {}, o.name, {
      entries: () => o.l1?.size ?? 0,
      bytes: () => o.l1?.bytes ?? 0,
      busState: () => (o.bus ? o.bus.state : 'none'),
    })
    const s = (this.s = new Shared(o, tel))
    tel.fullKey = (k) => s.keys.fullOf(k)
    this.l1 = o.l1 ? new L1Tier(o.l1, s) : undefined
    this.l2 = o.l2 ? new L2Tier(o.l2, s) : undefined
    o.l1?.onEvict?.((key, reason) => this.#onEvict(key, reason))
    const loaders = new Loaders(s, this.l2)
    const failSafe = new FailSafe(s)
    const local = new Invalidation(s, this.l1, failSafe)
    this.bus = new BusLink(s)
    this.bus.attach(local)
    this.#repair = this.l2 ? new Repair(s, this.l2, local, this.bus) : undefined
    this.bus.onResynced = () => this.#repair?.kick()
    this.reads = new ReadPipeline(s, this.l1, this.l2, loaders, failSafe)
    this.writes = new WritePipeline(s, this.l1, this.l2, loaders, local, this.bus, this.#repair)
    o.l2?.useLogger?.(o.logger.child({ tier: 'l2' }))
    const store = o.l2?.hotSet
    if (this.l1 && store && o.hotSet) this.l1.hot = new HotSet(s, store, o.hotSet)
    this.ready = Promise.all([this.bus.ready, this.#probe(), this.#warmStart()]).then(
      () => undefined,
    )
    this.ready.catch(() => undefined)
  }

  /**
   * Once at start: a missing Redis permission is an error event, `stats().l2.probeError`
   * and a rejected ready(). A probe that could not reach Redis (down at boot) is retried
   * in the background, a few times, without holding ready() back.
   */
  async #probe(attempt = 0): Promise<void> {
    const driver = this.l2?.driver
    if (!driver?.probe || this.s.closed) return
    try {
      await driver.probe(this.s.o.prefix)
    } catch (err) {
      if (CacheError.is(err, errors.E_NO_PERMISSION)) {
        this.s.probeError = this.s.report(err, 'l2.probe').message
        throw err
      }
      if (attempt < PROBE_RETRIES) {
        const t = this.s.o.clock.setTimeout(
          () => void this.#probe(attempt + 1).catch(() => undefined),
          1_000,
        )
        t.unref?.()
      }
    }
  }

  /**
   * `warmStart`: the fleet's hottest keys from L2 into L1 (guarded fills, no loader), before
   * `ready()`, within its time budget. A failure here never fails `ready()`.
   */
  async #warmStart(): Promise<void> {
    const w = this.s.o.warmStart
    const store = this.s.o.l2?.hotSet
    if (!w || !store || !this.l1 || w.keys === 0) return
    let timer: ReturnType<typeof setTimeout> | undefined
    const budget = new Promise<void>((resolve) => (timer = setTimeout(resolve, w.budget)))
    const budgetSpent = { now: false }
    const load = (async () => {
      // Redis may still be connecting: retry the read (briefly) within the budget.
      let keys: string[] | undefined
      for (let attempt = 0; keys === undefined; attempt++) {
        try {
          keys = await hottest(this.s, store, w.keys)
        } catch (err) {
          if (budgetSpent.now || this.s.closed || attempt >= 100) throw err
          await new Promise((r) => setTimeout(r, 50))
        }
      }
      for (let i = 0; i < keys.length && !this.s.closed; i += 500) {
        await this.reads.steps.getMany(keys.slice(i, i + 500), undefined)
      }
      this.s.counters.warmStarted = keys.length
    })().catch((err: unknown) => void this.s.report(err, 'warmStart'))
    await Promise.race([load, budget])
    budgetSpent.now = true
    clearTimeout(timer)
  }

  #onEvict(key: string, reason: EvictionReason): void {
    const s = this.s
    const c = s.counters.evictions
    c[reason] = (c[reason] ?? 0) + 1
    if (s.tel.on) s.tel.evicted(reason)
    if (s.events.has.evict) s.events.emit('evict', { key: s.keys.fullOf(key), reason })
  }

  /** See `Cache.health()` and docs/health-and-logging.md#health. */
  async health(): Promise<CacheHealth> {
    const s = this.s
    const writeQueues = [...this.writeQueues].map((f) => f())
    const driver = s.o.l2
    const l2 = driver
      ? await (driver.health?.() ??
          Promise.resolve({ breaker: 'closed' as const, pingMs: undefined }))
      : undefined
    const bus = { state: s.busState, since: s.busSince, reason: s.busReason }
    const pendingRepairs = this.#repair?.pending ?? 0
    const writeQueue =
      writeQueues.length === 0
        ? undefined
        : {
            pending: Math.max(...writeQueues.map((q) => q.pending)),
            oldestPendingAgeMs: Math.max(...writeQueues.map((q) => q.oldestPendingAgeMs)),
            deadLettered: writeQueues.reduce((n, q) => n + q.deadLettered, 0),
          }
    let status: CacheHealth['status'] = 'ok'
    if (s.closed || (l2 && (l2.pingMs === undefined || l2.breaker === 'open'))) status = 'down'
    else if (
      (bus.state !== 'none' && bus.state !== BusState.connected) ||
      l2?.breaker === 'half-open' ||
      pendingRepairs > 0
    ) {
      status = 'degraded'
    }
    return { status, l2, bus, pendingRepairs, writeQueue }
  }

  stats(): CacheStats {
    const { counters: c, o } = this.s
    return {
      name: o.name,
      l1: {
        hits: c.l1Hits,
        misses: c.l1Misses,
        entries: o.l1?.size ?? 0,
        bytes: o.l1?.bytes ?? 0,
        evictions: { ...c.evictions },
      },
      l2: {
        hits: c.l2Hits,
        misses: c.l2Misses,
        errors: c.l2Errors,
        corrupt: c.corrupt,
        pendingRepairs: this.#repair?.pending ?? 0,
        probeError: this.s.probeError,
      },
      loads: c.loads,
      loadErrors: c.loadErrors,
      coalesced: c.coalesced,
      staleServed: c.staleServed,
      warmStarted: c.warmStarted,
      discardedFills: c.discardedFills,
      errors: c.errors,
      bus: {
        state: o.bus ? o.bus.state : 'none',
        published: c.published,
        received: c.received,
        publishErrors: c.publishErrors,
        pendingPublishes: this.bus.pendingPublishes,
        degradedCount: c.degraded,
        resyncedCount: c.resynced,
      },
    }
  }

  /**
   * Idempotent. Stops new work, aborts loads in flight (their loaders' signals abort and
   * their callers get E_CLOSED; a loader that ignores its signal runs on but its result is
   * discarded), waits (bounded) for writes in flight, then closes the bus (publishing what
   * is queued, bounded) and every connection Strata created.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const s = this.s
    s.closed = true
    s.tel.close()
    this.#repair?.close()
    this.reads.abortAll()
    const pending = [...this.writes.inFlight]
    if (pending.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.allSettled(pending),
        new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT))),
      ])
      clearTimeout(timer)
    }
    await Promise.allSettled([...this.closers].map((close) => close()))
    await this.bus.close()
    await s.o.l2?.close()
    s.o.logger.info({}, 'strata: cache closed')
    this.l1?.hot?.close()
    s.o.l1?.close?.()
  }
}
