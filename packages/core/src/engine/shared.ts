import { randomUUID } from 'node:crypto'
import { BusState } from '../contracts.js'
import { systemClock, coarseNow } from '../clock.js'
import { CacheError, errors, type ErrorCode } from '../errors.js'
import { Counters, Emitter } from '../events.js'
import type { ResolvedOptions } from '../options.js'
import type { Telemetry } from '../telemetry.js'
import { FillGuard } from './fill-guard.js'
import { Keys } from './keys.js'

/** Test hook points (deterministic race tests); set through `@strata/core/testing`. */
export interface EngineHooks {
  /** Awaited after an L2 read answered and before the L1 fill. */
  beforeL1Fill?: (key: string) => Promise<void> | void
  /** Awaited after the loader resolved and before the L2 fill. */
  beforeL2Fill?: (key: string) => Promise<void> | void
  /** Awaited after a local write's L2 part answered and before its L1 write. */
  beforeL1Write?: (key: string) => Promise<void> | void
}

/** What every room of the engine shares: options, accounting, keys, the fill guard. */
export class Shared {
  readonly o: ResolvedOptions
  readonly events = new Emitter()
  readonly counters = new Counters()
  readonly source = randomUUID()
  readonly keys: Keys
  readonly guard = new FillGuard()
  readonly tel: Telemetry
  /** Time for L1 freshness checks: millisecond-coarse with the system clock (see coarseNow). */
  readonly now: () => number
  hooks: EngineHooks | undefined
  /** The bus state as core last heard it ('none' without a bus). */
  busState: BusState | 'none'
  /** When the bus entered its current state (ms), and why. */
  busSince = Date.now()
  busReason = 'start'
  closed = false
  /** Why the L2 permission probe failed at start (undefined when it passed or never ran). */
  probeError: string | undefined

  constructor(o: ResolvedOptions, tel: Telemetry) {
    this.o = o
    this.tel = tel
    this.keys = new Keys(o.prefix, o.maxKeyLength)
    const clock = o.clock
    this.now = clock === systemClock ? coarseNow : () => clock.now()
    this.busState = o.bus ? BusState.connecting : 'none'
  }

  /** No invalidation can reach this replica right now: L1 lifetimes are clamped. */
  get deaf(): boolean {
    return this.busState === BusState.connecting || this.busState === BusState.degraded
  }

  /**
   * Counts and reports an error (the `error` event). Messages never carry keys: the key
   * travels on `CacheError.key` and in the event, never into span text.
   */
  report(
    err: unknown,
    operation: string,
    key?: string,
    code: ErrorCode = errors.E_L2_UNAVAILABLE,
  ): CacheError {
    const error =
      err instanceof CacheError
        ? err
        : new CacheError(
            code,
            `[core] ${operation} failed: ${String((err as Error | undefined)?.message ?? err)}`,
            { cause: err },
          )
    const full = key === undefined ? undefined : this.keys.fullOf(key)
    if (full !== undefined && error.key === undefined) error.key = full
    this.counters.errors++
    this.o.logger.warn(
      { operation, code: error.code, err: error.message },
      `strata: ${operation} failed`,
    )
    if (this.events.has.error) this.events.emit('error', { error, operation, key: full })
    return error
  }

  /** A failed L2 round trip: counted in `stats().l2.errors`, reported, returned for rethrow. */
  l2Failure(err: unknown, operation: string, key?: string): CacheError {
    this.counters.l2Errors++
    return this.report(err, operation, key)
  }

  assertOpen(): void {
    if (this.closed) throw new CacheError(errors.E_CLOSED, '[core] the cache is closed')
  }

  /** Clones what is handed to callers when `clone` is on. */
  out<V>(value: V): V {
    return this.o.clone && value !== null && typeof value === 'object'
      ? structuredClone(value)
      : value
  }
}
