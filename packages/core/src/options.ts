import { systemClock } from './clock.js'
import type { BusDriver, Clock, L1Driver, L2Driver } from './contracts.js'
import { toMs, type Duration } from './duration.js'
import { CacheError, errors, invalidOption } from './errors.js'
import type { TelemetryOptions } from './telemetry.js'
import { resolveLogger, type Logger } from './logger.js'
import {
  resolveHotSet,
  type HotSetOptions,
  type HotSetResolved,
  type WarmStartOptions,
} from './engine/hot-set.js'

export interface TimeoutOptions {
  /**
   * When a stale value (within grace) exists and the loader takes longer than this,
   * return the stale value now and let the load finish in the background.
   * @default 0 (off)
   */
  soft?: Duration
  /**
   * Give up on the loader after this long: abort `ctx.signal` and fail with
   * `E_LOADER_TIMEOUT` (or serve stale within grace).
   * @default 0 (off)
   */
  hard?: Duration
}

export interface CacheOptions {
  /** In-process tier (e.g. `memoryL1()` from `@strata/l1-memory`). */
  l1?: L1Driver
  /** Shared tier (e.g. `redisL2()` from `@strata/l2-redis`, or `memoryL2()`). */
  l2?: L2Driver
  /** Invalidation bus (e.g. `redisPubSubBus()`); needs an L1 to be useful. */
  bus?: BusDriver
  /**
   * Key prefix; scopes keys in L2 and the bus channel. Letters, digits, `_`, `-`, `.`.
   * @default 'strata'
   */
  prefix?: string
  /** Name reported in stats and telemetry. @default the prefix */
  name?: string
  /** Logical TTL (how long an entry is fresh). @default '1m' */
  ttl?: Duration
  /** Cap on how long L1 treats an entry as fresh before asking L2 again. @default none */
  l1Ttl?: Duration
  /** How long past its TTL a stale entry may still be served when loading fails or is slow. @default 0 */
  grace?: Duration
  /** After a loader failure served stale, wait this long before calling the loader again. @default '5s' */
  graceBackoff?: Duration
  /** TTL of negative results (loader returned `null`). @default the entry's ttl */
  negativeTtl?: Duration
  /** Random TTL spread, `0.1` = ±10%, against expiry avalanches. @default 0 */
  jitter?: number
  timeouts?: TimeoutOptions
  /** Start a background refresh on a hit past this fraction of the TTL (0 < x < 1). @default 0 (off) */
  refreshAhead?: number
  /** Return copies from L1 (`structuredClone`) for callers that mutate results. @default false */
  clone?: boolean
  /** Maximum key length in characters. @default 1024 */
  maxKeyLength?: number
  /**
   * Largest encoded entry written to L2; larger values are refused with E_VALUE_TOO_LARGE.
   * The one owner of the limit: it may not exceed what the L2 driver reads back.
   * @default the L2 driver's `maxValueBytes`, else 8 MiB
   */
  maxValueBytes?: number
  /**
   * With `onGap: 'clamp'` a degraded bus caps L1 lifetimes at this value instead of clearing L1.
   * @default '1s'
   */
  degradedL1Ttl?: Duration
  /** What a bus gap does to L1: drop everything, or keep entries with a short TTL. @default 'clear' */
  onGap?: 'clear' | 'clamp'
  /** Across replicas, one loader call per cold key (needs an L2 with locks). @default false */
  distributedLock?: boolean
  /** How long a distributed lock is held at most (a crashed holder delays others this long). @default '10s' */
  lockTtl?: Duration
  /** Time source (tests inject a fake one). @default the system clock */
  clock?: Clock
  /**
   * OpenTelemetry spans and metrics through `@opentelemetry/api` (the app registers the
   * SDK; nothing is recorded until it does). `false` turns it off entirely.
   * @default true
   */
  telemetry?: boolean | TelemetryOptions
  /**
   * Tracks this replica's hottest L1 keys (1 in 16 hits sampled) and merges them into a
   * bounded set in L2 per namespace, for other replicas' warm starts. Needs `l1` and an L2
   * with a hot set (redisL2). `false` turns it off. @default on, every 30 s, top 1 000
   */
  hotSet?: HotSetOptions | false
  /** Load the fleet's hottest keys from L2 into L1 before `ready()` resolves (bounded by `budget`). */
  warmStart?: WarmStartOptions
  /**
   * A pino-compatible logger (`child`, `debug`, `info`, `warn`, `error`). Bus degraded and
   * resynced, breaker transitions, failures, dropped invalidations and close are logged;
   * keys never are. @default silent
   */
  logger?: Logger
}

export interface ResolvedOptions {
  l1: L1Driver | undefined
  l2: L2Driver | undefined
  bus: BusDriver | undefined
  prefix: string
  name: string
  ttl: number
  l1Ttl: number
  grace: number
  graceBackoff: number
  negativeTtl: number | undefined
  jitter: number
  soft: number
  hard: number
  refreshAhead: number
  clone: boolean
  maxKeyLength: number
  maxValueBytes: number
  degradedL1Ttl: number
  onGap: 'clear' | 'clamp'
  distributedLock: boolean
  lockTtl: number
  clock: Clock
  telemetry: false | TelemetryOptions
  hotSet: HotSetResolved | false
  warmStart: { keys: number; budget: number } | undefined
  logger: Logger
}

export const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/

function fraction(
  value: number | undefined,
  option: string,
  fallback: number,
  max: number,
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= max) {
    throw invalidOption('core', option, `must be a number in [0, ${max}) (got ${String(value)})`)
  }
  return value
}

function positiveInt(value: number | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw invalidOption('core', option, `must be a positive integer (got ${String(value)})`)
  }
  return value
}

/** The defaults of `createCache` options, in one place (the JSDoc on `CacheOptions` names them too). */
export const DEFAULTS = {
  /** @default 'strata' */
  prefix: 'strata',
  /** @default 1 minute */
  ttl: 60_000,
  /** @default 0 (no cap) */
  l1Ttl: 0,
  /** @default 0 (no grace) */
  grace: 0,
  /** @default 5 s */
  graceBackoff: 5_000,
  /** @default 0 (no jitter) */
  jitter: 0,
  /** @default 0 (off) */
  soft: 0,
  /** @default 0 (off) */
  hard: 0,
  /** @default 0 (off) */
  refreshAhead: 0,
  /** @default false */
  clone: false,
  /** @default 1024 characters */
  maxKeyLength: 1024,
  /** @default 8 MiB (or the L2 driver's `maxValueBytes`) */
  maxValueBytes: 8 * 1024 * 1024,
  /** @default 1 s */
  degradedL1Ttl: 1_000,
  /** @default 'clear' (or the bus driver's `onGap`) */
  onGap: 'clear',
  /** @default false */
  distributedLock: false,
  /** @default 10 s */
  lockTtl: 10_000,
} as const

/** `null` is never a value for an option: refused naming it (undefined means "the default"). */
export function rejectNulls(o: object, path: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === null)
      throw invalidOption('core', `${path}${k}`, 'must not be null (leave it out for the default)')
  }
}

/** Validates everything at construction, naming the option that is wrong. */
export function resolveOptions(options: CacheOptions): ResolvedOptions {
  if (typeof options !== 'object' || (options as CacheOptions | null) === null)
    throw invalidOption('core', 'options', 'must be an object')
  rejectNulls(options, '')
  if (options.timeouts !== undefined) rejectNulls(options.timeouts, 'timeouts.')
  const { l1, l2, bus } = options
  if (!l1 && !l2) {
    throw new CacheError(
      errors.E_INVALID_OPTION,
      '[core] createCache needs at least one tier: pass `l1`, `l2`, or both',
    )
  }
  if (bus && !l1) {
    throw invalidOption('core', 'bus', 'needs an `l1`: the bus only invalidates in-process copies')
  }
  const prefix = options.prefix ?? DEFAULTS.prefix
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw invalidOption(
      'core',
      'prefix',
      `must be 1-64 characters of letters, digits, '_', '-', '.' (got ${JSON.stringify(prefix)})`,
    )
  }
  const ttl = toMs(options.ttl, 'ttl') ?? DEFAULTS.ttl
  if (ttl <= 0) throw invalidOption('core', 'ttl', 'must be greater than 0')
  const refreshAhead = fraction(options.refreshAhead, 'refreshAhead', DEFAULTS.refreshAhead, 1)
  const onGap = options.onGap ?? bus?.onGap ?? DEFAULTS.onGap
  if ((onGap as string) !== 'clear' && (onGap as string) !== 'clamp') {
    throw invalidOption(
      'core',
      'onGap',
      `must be 'clear' or 'clamp' (got ${JSON.stringify(onGap)})`,
    )
  }
  const timeouts = options.timeouts ?? {}
  const soft = toMs(timeouts.soft, 'timeouts.soft') ?? DEFAULTS.soft
  const hard = toMs(timeouts.hard, 'timeouts.hard') ?? DEFAULTS.hard
  if (soft > 0 && hard > 0 && soft >= hard) {
    throw invalidOption(
      'core',
      'timeouts.soft',
      `must be shorter than timeouts.hard (${soft} >= ${hard})`,
    )
  }
  const distributedLock = options.distributedLock ?? DEFAULTS.distributedLock
  if (distributedLock && !l2?.locks) {
    throw invalidOption('core', 'distributedLock', 'needs an `l2` driver with lock support')
  }
  return {
    ...resolveHotSet(options.hotSet, options.warmStart, Boolean(l1 && l2?.hotSet)),
    logger: resolveLogger(options.logger, options.name ?? prefix),
    l1,
    l2,
    bus,
    prefix,
    name: options.name ?? prefix,
    ttl,
    l1Ttl: toMs(options.l1Ttl, 'l1Ttl') ?? DEFAULTS.l1Ttl,
    grace: toMs(options.grace, 'grace') ?? DEFAULTS.grace,
    graceBackoff: toMs(options.graceBackoff, 'graceBackoff') ?? DEFAULTS.graceBackoff,
    negativeTtl: toMs(options.negativeTtl, 'negativeTtl'),
    jitter: fraction(options.jitter, 'jitter', DEFAULTS.jitter, 1),
    soft,
    hard,
    refreshAhead,
    clone: options.clone ?? DEFAULTS.clone,
    maxKeyLength: positiveInt(options.maxKeyLength, 'maxKeyLength', DEFAULTS.maxKeyLength),
    maxValueBytes: resolveMaxValueBytes(options.maxValueBytes, l2),
    degradedL1Ttl: toMs(options.degradedL1Ttl, 'degradedL1Ttl') ?? DEFAULTS.degradedL1Ttl,
    onGap,
    distributedLock,
    lockTtl: toMs(options.lockTtl, 'lockTtl') ?? DEFAULTS.lockTtl,
    clock: options.clock ?? systemClock,
    telemetry: resolveTelemetry(options.telemetry),
  }
}

function resolveMaxValueBytes(value: number | undefined, l2: L2Driver | undefined): number {
  const readable = l2?.maxValueBytes
  const max = positiveInt(value, 'maxValueBytes', readable ?? DEFAULTS.maxValueBytes)
  if (readable !== undefined && max > readable) {
    throw invalidOption(
      'core',
      'maxValueBytes',
      `(${max}) is above what the ${l2?.name ?? 'L2'} driver reads back (${readable}): raise the driver's maxValueBytes too`,
    )
  }
  return max
}

function resolveTelemetry(t: boolean | TelemetryOptions | undefined): false | TelemetryOptions {
  if (t === undefined || t === true) return {}
  if (t === false) return false
  if (typeof t !== 'object')
    throw invalidOption('core', 'telemetry', 'must be a boolean or an object')
  if (t.keys !== undefined && !['none', 'raw', 'hashed'].includes(t.keys)) {
    throw invalidOption(
      'core',
      'telemetry.keys',
      `must be 'none', 'raw' or 'hashed' (got ${JSON.stringify(t.keys)})`,
    )
  }
  return t
}
