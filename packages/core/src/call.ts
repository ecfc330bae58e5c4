import type { Duration } from './duration.js'
import { toMs } from './duration.js'
import { invalidOption } from './errors.js'
import { rejectNulls, type ResolvedOptions, type TimeoutOptions } from './options.js'

/** Per-call options of `getOrSet` / `set`. */
export interface EntryOptions {
  ttl?: Duration
  l1Ttl?: Duration
  grace?: Duration
  negativeTtl?: Duration
  tags?: readonly string[]
  timeouts?: TimeoutOptions
  distributedLock?: boolean
  /**
   * Reads (`getOrSet`, `getOrSetMany`): aborting it rejects this caller's wait with
   * `E_ABORTED`; the load other callers share goes on and its result is cached. Ignored by writes.
   */
  signal?: AbortSignal
  /**
   * Reads (`getOrSet`, `getOrSetMany`): call the loader even when a fresh value is cached
   * (no other caller's load is joined). The value it returns is stored like any load's;
   * if it fails, the cached value is served as stale within grace. @default false
   */
  forceFresh?: boolean
  /**
   * Leave L2 out of this call. A load stores its value in L1 only (L2 keeps what it had);
   * a `set` writes L1 and deletes the key in L2 (no replica can read an older value
   * there) and still tells every replica. Safe. @default false
   */
  skipL2Write?: boolean
  /**
   * `set` / `delete`: do not tell the other replicas. NOT consistency-safe: a replica
   * holding the key in L1 serves its old value until that copy expires (its TTL or
   * `l1Ttl`). Meant for keys no other replica can hold yet. @default false
   */
  skipBusNotify?: boolean
}

/** Options of `get`. */
export interface GetOptions<V = unknown> {
  /**
   * Return a stale value within grace when there is no fresh one (L2's, else this
   * replica's L1 copy), instead of `undefined`. The `hit` event says `stale: true`. @default false
   */
  allowStale?: boolean
  /** Returned on a miss (nothing is stored). */
  defaultValue?: V
}

/** One item of `setMany`. */
export interface SetManyItem<V> {
  key: string
  value: V
  options?: EntryOptions
}

/** Shared by every entry without tags (no per-entry empty array). */
export const NO_TAGS: readonly string[] = Object.freeze([])

/** Tags, wherever they are given: an array of non-empty strings of at most 256 characters. */
export function assertTags(tags: unknown): asserts tags is readonly string[] {
  if (
    !Array.isArray(tags) ||
    !(tags as readonly unknown[]).every(
      (t) => typeof t === 'string' && t.length > 0 && t.length <= 256,
    )
  ) {
    throw invalidOption(
      'core',
      'tags',
      'must be an array of non-empty strings of at most 256 characters',
    )
  }
}

/** Per-call options merged over the cache defaults. Only built on the slow path. */
export interface CallPolicy {
  ttl: number
  l1Ttl: number
  grace: number
  negativeTtl: number | undefined
  tags: readonly string[]
  soft: number
  hard: number
  distributedLock: boolean
  forceFresh: boolean
  skipL2Write: boolean
  skipBusNotify: boolean
}

function defaultPolicy(base: ResolvedOptions): CallPolicy {
  return Object.freeze({
    ttl: base.ttl,
    l1Ttl: base.l1Ttl,
    grace: base.grace,
    negativeTtl: base.negativeTtl,
    tags: NO_TAGS,
    soft: base.soft,
    hard: base.hard,
    distributedLock: base.distributedLock,
    forceFresh: false,
    skipL2Write: false,
    skipBusNotify: false,
  })
}

/** The policy of calls without options, built once per cache (it is never mutated). */
const defaultPolicies = new WeakMap<ResolvedOptions, CallPolicy>()

export function resolveCall(base: ResolvedOptions, o: EntryOptions | undefined): CallPolicy {
  if (o !== undefined && (typeof o !== 'object' || (o as EntryOptions | null) === null))
    throw invalidOption('core', 'options', 'must be an object')
  if (o === undefined) {
    let p = defaultPolicies.get(base)
    if (p === undefined) defaultPolicies.set(base, (p = defaultPolicy(base)))
    return p
  }
  const ttl = toMs(o.ttl, 'ttl') ?? base.ttl
  if (ttl <= 0) throw invalidOption('core', 'ttl', 'must be greater than 0')
  const tags = o.tags === undefined || o.tags.length === 0 ? NO_TAGS : o.tags
  assertTags(tags)
  rejectNulls(o, '')
  if (o.timeouts !== undefined) rejectNulls(o.timeouts, 'timeouts.')
  const distributedLock = o.distributedLock ?? base.distributedLock
  if (distributedLock && !base.l2?.locks) {
    throw invalidOption('core', 'distributedLock', 'needs an `l2` driver with lock support')
  }
  const soft = toMs(o.timeouts?.soft, 'timeouts.soft') ?? base.soft
  const hard = toMs(o.timeouts?.hard, 'timeouts.hard') ?? base.hard
  // The same rule as at construction, for the merged per-call values.
  if (soft > 0 && hard > 0 && soft >= hard) {
    throw invalidOption(
      'core',
      'timeouts.soft',
      `must be shorter than timeouts.hard (${soft} >= ${hard})`,
    )
  }
  return {
    ttl,
    l1Ttl: toMs(o.l1Ttl, 'l1Ttl') ?? base.l1Ttl,
    grace: toMs(o.grace, 'grace') ?? base.grace,
    negativeTtl: toMs(o.negativeTtl, 'negativeTtl') ?? base.negativeTtl,
    tags,
    soft,
    hard,
    distributedLock,
    forceFresh: flag(o.forceFresh, 'forceFresh'),
    skipL2Write: flag(o.skipL2Write, 'skipL2Write'),
    skipBusNotify: flag(o.skipBusNotify, 'skipBusNotify'),
  }
}

function flag(value: boolean | undefined, option: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw invalidOption('core', option, 'must be a boolean')
  return value
}
