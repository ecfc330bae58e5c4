import { BusState, type BusDriver, type BusMessage } from '../contracts.js'
import { errors } from '../errors.js'
import type { Invalidation } from './invalidation.js'
import { mapOwn } from './keys.js'
import { Publisher } from './publisher.js'
import type { Shared } from './shared.js'

/**
 * The engine's side of the bus: publishing (through the Publisher), starting the
 * subscription and retrying it until it works, and turning messages and state changes
 * into local invalidations. Until the bus is connected, L1 lifetimes are clamped as when
 * degraded (`Shared.deaf`): no invalidation can reach this replica yet.
 */
export class BusLink {
  readonly #s: Shared
  readonly #bus: BusDriver | undefined
  readonly #publisher: Publisher | undefined
  #local: Invalidation | undefined
  #clampTimer: ReturnType<Shared['o']['clock']['setTimeout']> | undefined
  #retryTimer: ReturnType<Shared['o']['clock']['setTimeout']> | undefined
  #retryDelay = 250
  /** Resolves when the first subscription is live; rejects when the first attempt failed (retries go on). */
  readonly ready: Promise<void>
  static readonly maxRetryDelay = 10_000

  constructor(shared: Shared) {
    this.#s = shared
    const bus = (this.#bus = shared.o.bus)
    if (!bus) {
      this.ready = Promise.resolve()
      return
    }
    this.#publisher = new Publisher(
      bus,
      shared.o.clock,
      shared.source,
      (err) => {
        shared.counters.publishErrors++
        shared.report(err, 'bus.publish', undefined, errors.E_BUS_UNAVAILABLE)
      },
      () => shared.counters.published++,
    )
    this.ready = new Promise<void>((resolve, reject) => {
      queueMicrotask(() => void this.#start().then(resolve, reject))
    })
    // Observed here; `cache.ready()` hands the same promise to callers who ask.
    this.ready.catch(() => undefined)
  }

  /** Wires the local invalidation room (built after this link). */
  attach(local: Invalidation): void {
    this.#local = local
  }

  async #start(): Promise<void> {
    const s = this.#s
    const bus = this.#bus as BusDriver
    try {
      await bus.start({
        channel: s.o.prefix,
        source: s.source,
        onMessage: (m) => this.#onMessage(m),
        onState: (state, info) => this.#onState(state, info.reason, info.resynced === true),
      })
      this.#retryDelay = 250
    } catch (err) {
      const error = s.report(err, 'bus.start', undefined, errors.E_BUS_UNAVAILABLE)
      this.#retryStart()
      throw error
    }
  }

  /** A bus that failed to start keeps trying (backoff with jitter) until it works or the cache closes. */
  #retryStart(): void {
    if (this.#s.closed) return
    const delay = this.#retryDelay * (0.5 + Math.random())
    this.#retryDelay = Math.min(this.#retryDelay * 2, BusLink.maxRetryDelay)
    this.#retryTimer = this.#s.o.clock.setTimeout(() => {
      this.#retryTimer = undefined
      if (!this.#s.closed) void this.#start().catch(() => undefined)
    }, delay)
    this.#retryTimer.unref?.()
  }

  publishKeys(op: 'delete' | 'set', keys: readonly string[]): Promise<void> {
    const publisher = this.#publisher
    if (!publisher) return Promise.resolve()
    const s = this.#s
    const full = keys.map((k) => s.keys.fullOf(k))
    if (!s.tel.on) return publisher.keys(op, full)
    s.tel.published(op)
    return publisher.keys(op, full, s.tel.traceparent())
  }

  publish(message: Omit<BusMessage, 'source' | 'seq' | 'ts'>): Promise<void> {
    const publisher = this.#publisher
    if (!publisher) return Promise.resolve()
    const s = this.#s
    if (!s.tel.on) return publisher.send(message)
    s.tel.published(message.op)
    return publisher.send({ ...message, trace: s.tel.traceparent() })
  }

  #onMessage(m: BusMessage): void {
    const s = this.#s
    const local = this.#local
    if (m.source === s.source || !local) return
    s.counters.received++
    if (s.tel.on)
      s.tel.received(
        m.op,
        m.ts,
        m.trace,
        m.keys?.length ?? m.tags?.length ?? m.prefixes?.length ?? 0,
      )
    switch (m.op) {
      case 'delete':
      case 'set': {
        const keys = mapOwn(m.keys, (full) => s.keys.l1Of(full))
        if (keys.length > 0) local.keys(keys)
        break
      }
      case 'tags': {
        const tags = mapOwn(m.tags, (t) => t)
        if (tags.length > 0) local.tags(tags)
        break
      }
      case 'clear':
      case 'clear-namespace': {
        const prefixes = mapOwn(m.prefixes, (full) => s.keys.l1PrefixOf(full))
        if (prefixes.length > 0) local.clear(prefixes)
        break
      }
    }
  }

  #onState(state: BusState, reason: string, resynced: boolean): void {
    const s = this.#s
    const local = this.#local
    const previous = s.busState
    s.busState = state
    if (previous !== state) {
      s.busSince = Date.now()
      s.busReason = reason
      const log = s.o.logger
      if (state === BusState.degraded)
        log.warn({ state, reason }, 'strata: bus degraded, L1 cleared or clamped')
      else if (state === BusState.connected && previous === BusState.degraded)
        log.info({ state, reason }, 'strata: bus resynced')
      else log.debug({ state, previous, reason }, 'strata: bus state')
    }
    if (s.events.has['bus:state']) s.events.emit('bus:state', { state, reason })
    if (!local) return
    const clock = s.o.clock
    if (state === BusState.degraded && previous !== BusState.degraded) {
      s.counters.degraded++
      if (s.o.onGap === 'clear') {
        local.clear([''])
      } else {
        // Keep serving what we have for a short while, then drop it.
        s.guard.broad()
        if (this.#clampTimer) clock.clearTimeout(this.#clampTimer)
        this.#clampTimer = clock.setTimeout(() => {
          this.#clampTimer = undefined
          if (s.busState === BusState.degraded) local.clear([''])
        }, s.o.degradedL1Ttl)
      }
      if (s.events.has['bus:degraded']) s.events.emit('bus:degraded', { reason })
    } else if (state === BusState.connected && (resynced || previous === BusState.degraded)) {
      // Anything may have changed while we could not hear: start from L2 again. (The first
      // connection clears nothing: what L1 took while connecting lives degradedL1Ttl at most.)
      local.clear([''])
      if (this.#clampTimer) clock.clearTimeout(this.#clampTimer)
      this.#clampTimer = undefined
      s.counters.resynced++
      this.#publisher?.kick()
      this.onResynced?.()
      if (s.events.has['bus:resynced']) s.events.emit('bus:resynced', { reason })
    }
  }

  /** Called when the bus resynced after a gap (Redis answers again): the engine kicks repairs. */
  onResynced: (() => void) | undefined

  get pendingPublishes(): number {
    return this.#publisher?.pending ?? 0
  }

  async close(): Promise<void> {
    const s = this.#s
    if (this.#retryTimer !== undefined) s.o.clock.clearTimeout(this.#retryTimer)
    if (this.#clampTimer) s.o.clock.clearTimeout(this.#clampTimer)
    const dropped = (await this.#publisher?.close()) ?? 0
    if (dropped > 0) {
      s.report(
        new Error(`${dropped} invalidations were still queued for the bus at close`),
        'close',
        undefined,
        errors.E_BUS_UNAVAILABLE,
      )
    }
    await this.#bus?.close()
  }
}
