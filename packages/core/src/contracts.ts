import type { Logger } from './logger.js'
/**
 * The tier contracts. Drivers store; core decides. Every policy (freshness, grace,
 * single-flight, guarded fills, tags, namespaces, bus handling) lives in core, so a
 * driver is small and a third-party driver proves itself with `@strata/core/testing`.
 */

/** A stored value and everything core needs to decide whether it may still be served. */
export interface Entry<V = unknown> {
  value: V
  /** Writer's clock, ms since the epoch. */
  createdAt: number
  /** Logical TTL: fresh while `now < freshUntil`. */
  freshUntil: number
  /** End of grace: a stale copy may be served (fail-safe) while `now < staleUntil`. */
  staleUntil: number
  tags: readonly string[]
  /** Tag versions the entry was written under (same order as `tags`), when L2 keeps tag versions. */
  tagVersions?: readonly number[] | undefined
  /** Monotonic per writer; larger is newer. */
  version: number
  /** A negative result ("not found"), cached with its own TTL. Its value is `null`. */
  negative?: boolean | undefined
}

/**
 * What L1 holds for an entry that needs metadata on the hit path (tags, grace,
 * refresh-ahead): the live entry plus two numbers core computes once at fill time.
 */
export interface L1Entry<V = unknown> extends Entry<V> {
  /** Core's invalidation epoch when the fill began; used to check tag invalidations lazily. */
  gen: number
  /** When a hit should start a background refresh (`Infinity` when refresh-ahead is off). */
  refreshAt: number
}

/**
 * The record class core stores in L1 for entries with metadata. Entries with none (no
 * tags, no grace, no refresh-ahead) are stored as the bare value instead: no wrapper
 * object, so they cost what the value costs, and the driver's physical TTL is their
 * freshness.
 */
export class L1Record<V = unknown> implements L1Entry<V> {
  constructor(
    public value: V,
    public createdAt: number,
    public freshUntil: number,
    public staleUntil: number,
    public tags: readonly string[],
    public version: number,
    public gen: number,
    public refreshAt: number,
  ) {}
}

export const EvictionReason = {
  /** Removed to respect `maxEntries` / `maxBytes`. */
  evicted: 'evicted',
  /** Its physical lifetime (end of grace, or the `l1Ttl` cap) ended. */
  expired: 'expired',
  /** Replaced by a newer entry for the same key. */
  replaced: 'replaced',
  /** Deleted by this replica or dropped on a bus message. */
  deleted: 'deleted',
  /** Removed by `clear()` / a namespace clear / a bus resync. */
  cleared: 'cleared',
} as const
export type EvictionReason = (typeof EvictionReason)[keyof typeof EvictionReason]

/**
 * Synchronous, bounded, in-process tier. Stores live objects, never serializes. What it
 * stores is opaque to it: an `L1Record`, or a bare value (any value but `undefined`)
 * whose freshness is the physical TTL, so the driver must never return anything past its
 * TTL.
 */
export interface L1Driver {
  readonly name: string
  /** The stored value, or `undefined` on a miss or past the TTL. */
  get(key: string): unknown
  /**
   * Optional: like `get`, without counting as an access (no recency or frequency update).
   * Core uses it for lookups on its own behalf (the stale copy of a key it loads).
   */
  peek?(key: string): unknown
  /** `ttlMs` is the physical lifetime in this tier. */
  set(key: string, stored: unknown, ttlMs: number): void
  delete(key: string): boolean
  /** Removes every key, or every key that starts with `prefix`. */
  clear(prefix?: string): void
  readonly size: number
  /** Estimated bytes held (0 when the driver does not measure). */
  readonly bytes: number
  /** Registers the eviction listener; core calls this once. */
  onEvict?(listener: (key: string, reason: EvictionReason) => void): void
  close?(): void
}

export interface L2ReadResult {
  value: Uint8Array | undefined
  /** Lease token for a guarded fill: present on a miss only (a hit takes no lease and writes nothing). */
  token?: string | undefined
}

export interface L2SetItem {
  key: string
  value: Uint8Array
  ttlMs: number
}

export interface L2FillItem extends L2SetItem {
  /** The token `getManyWithLease` returned with the miss. */
  token: string
}

/**
 * Optional L2 capability: Meta-style leases, so a slow fill cannot resurrect a value that
 * was written or deleted after the miss. A write or delete of a key revokes its lease.
 * Concurrent missers of one key may share a token (any of their fills is as new as the
 * others), and a driver may end a shared lease at its first fill (the Redis driver's
 * placeholders do: the other sharers' fills are then refused); a token is never reused
 * after a revocation.
 */
export interface L2Leases {
  /** Reads `keys` in one round trip; each miss carries a lease token (taken in the same round trip). */
  getManyWithLease(keys: readonly string[]): Promise<L2ReadResult[]>
  /**
   * Takes (or joins) the lease of each key whatever the key holds: core calls it when a
   * read found bytes it cannot serve (expired, tag-invalidated, corrupt), so the fill that
   * replaces them is guarded like any other.
   */
  leaseMany(keys: readonly string[]): Promise<string[]>
  /** Writes each item only while its lease is valid; resolves, per item, whether it was written. */
  fillMany(items: readonly L2FillItem[]): Promise<boolean[]>
  /**
   * Optional: `fillMany`, and each written item's lease ends with the write, so loads
   * that shared the token can no longer fill (`expire` rewrites an entry this way: a load
   * that began before it must not overwrite it). Without it core uses `fillMany`.
   */
  replaceMany?(items: readonly L2FillItem[]): Promise<boolean[]>
}

/**
 * Optional L2 capability: tag versions kept in L2, so tag invalidation needs no key scan.
 * A version is never handed out twice for a tag: a tag the store does not know (never
 * bumped, evicted, or lost in a restart) gets a fresh version above every one it issued
 * before, so an entry written under an old version can never match again.
 */
export interface L2Tags {
  versions(tags: readonly string[]): Promise<number[]>
  /** Moves every tag to a new, larger version; entries written under older versions become misses. */
  bump(tags: readonly string[]): Promise<void>
}

/** Optional L2 capability: a distributed lock (stampede protection across replicas). */
export interface L2Locks {
  /**
   * Resolves a token when acquired, `undefined` when another holder has it. With `token`
   * the attempt is idempotent: it also succeeds when `token` already holds the lock (an
   * earlier attempt with it timed out on the client but ran on the server), and the lock
   * then lives `ttlMs` from this attempt, so a caller retrying after a timeout never
   * waits on a lock that is its own, nor holds one about to expire.
   */
  tryAcquire(key: string, ttlMs: number, token?: string): Promise<string | undefined>
  /** Compare-and-extend: resolves false when `token` no longer holds the lock. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>
  /** Compare-and-delete: releases only if `token` still holds the lock. */
  release(key: string, token: string): Promise<void>
}

/** Asynchronous shared tier: bytes in, bytes out. */
export interface L2Driver {
  readonly name: string
  /** Turns entries into bytes; the driver owns it so every replica agrees on the format. */
  readonly codec: Codec
  /**
   * The largest encoded entry the driver reads back (larger bytes are refused as corrupt).
   * Core's `maxValueBytes` defaults to it and may not exceed it, so nothing is written
   * that readers would refuse.
   */
  readonly maxValueBytes?: number | undefined
  get(key: string): Promise<Uint8Array | undefined>
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>
  set(key: string, value: Uint8Array, ttlMs: number): Promise<void>
  setMany(items: readonly L2SetItem[]): Promise<void>
  /** Resolves the number of keys removed. */
  delete(keys: readonly string[]): Promise<number>
  /** Removes every key that starts with `prefix` (never keys outside it). */
  clear(prefix: string): Promise<void>
  readonly leases?: L2Leases | undefined
  readonly tags?: L2Tags | undefined
  readonly locks?: L2Locks | undefined
  /** Optional: the fleet's hot keys, for warm starts (see docs/patterns.md#warm-start). */
  readonly hotSet?: L2HotSet | undefined
  /** Optional: circuit-breaker state and a timed PING, for `cache.health()`. Never rejects. */
  health?(): Promise<L2Health>
  /** Optional: core hands the driver its logger (a child with `tier: 'l2'`) at construction. */
  useLogger?(logger: Logger): void
  /**
   * Optional: exercises once every command the driver runs (on a probe key of `prefix`)
   * and rejects naming what is not permitted. Core calls it at start: a missing
   * permission becomes an `error` event and a rejected `ready()`, never silent misses.
   */
  probe?(prefix: string): Promise<void>
  /** Closes connections the driver created (never a client the user passed in). */
  close(): Promise<void>
}

export const BusOp = {
  delete: 'delete',
  set: 'set',
  tags: 'tags',
  clear: 'clear',
  clearNamespace: 'clear-namespace',
} as const
export type BusOp = (typeof BusOp)[keyof typeof BusOp]

/** An invalidation. Peers drop (never receive) values. Keys and prefixes are full keys. */
export interface BusMessage {
  op: BusOp
  /** Replica id of the publisher; a replica ignores its own messages. */
  source: string
  /** Per-source sequence number (gaps are visible to receivers). */
  seq: number
  /** Publisher's wall clock, ms since the epoch (bus lag metrics). */
  ts: number
  keys?: readonly string[] | undefined
  tags?: readonly string[] | undefined
  /** Key prefixes for `clear` / `clear-namespace`. */
  prefixes?: readonly string[] | undefined
  /** W3C traceparent of the publishing operation, when telemetry is on. */
  trace?: string | undefined
}

export const BusState = {
  connecting: 'connecting',
  connected: 'connected',
  /** Invalidations may have been missed: core clears (or clamps) L1 until resynced. */
  degraded: 'degraded',
  closed: 'closed',
} as const
export type BusState = (typeof BusState)[keyof typeof BusState]

export interface BusContext {
  /** Channel scope, derived from the cache prefix; drivers add the wire version. */
  channel: string
  /** This replica's id. */
  source: string
  onMessage(message: BusMessage): void
  /** `resynced` is reported as `connected` with `resynced: true`. */
  onState(state: BusState, info: { reason: string; resynced?: boolean }): void
}

export interface BusDriver {
  readonly name: string
  readonly state: BusState
  /** The driver's preference for what a gap does to L1 (core's own `onGap` option wins). */
  readonly onGap?: 'clear' | 'clamp' | undefined
  /** Subscribes; resolves when the subscription is live (or rejects). */
  start(context: BusContext): Promise<void>
  publish(message: BusMessage): Promise<void>
  close(): Promise<void>
}

/** Entry ⇄ bytes. Implementations carry a format-version byte and reject what they did not write. */
export interface Codec {
  readonly name: string
  /** The codec binds bytes to their key (encryption): core passes the full key to encode and decode. */
  readonly keyed?: boolean | undefined
  encode(entry: Entry, key?: string): Uint8Array
  /** Throws on bytes it cannot decode; core turns that into `E_CORRUPT_ENTRY` and a miss. */
  decode(bytes: Uint8Array, key?: string): Entry
}

export interface TimerHandle {
  unref?(): unknown
}

/** Time source. Tests inject a fake one and advance it instead of sleeping. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export interface L2Health {
  breaker: 'closed' | 'open' | 'half-open'
  /** Round trip of a PING, or undefined when it failed or timed out. */
  pingMs: number | undefined
  error?: string | undefined
}

/** Optional L2 capability: a bounded, decayed set of the fleet's hottest keys per namespace. */
export interface L2HotSet {
  /**
   * Adds `score`s to namespace `namespace`'s hot keys (full keys), halves every score at
   * most once per `decayEvery` ms (fleet-wide), and keeps the `max` hottest.
   */
  pushHot(
    prefix: string,
    namespace: string,
    items: readonly { key: string; score: number }[],
    max: number,
    decayEvery: number,
  ): Promise<void>
  /** The `n` hottest full keys across the prefix's namespaces, hottest first. */
  topHot(prefix: string, n: number): Promise<string[]>
}
