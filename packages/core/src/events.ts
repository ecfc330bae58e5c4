import type { BusState, EvictionReason } from './contracts.js'
import type { CacheError } from './errors.js'

export type Tier = 'l1' | 'l2' | 'loader' | 'none'

export interface CacheEvents {
  hit: { key: string; tier: 'l1' | 'l2'; stale: boolean }
  miss: { key: string }
  stale: { key: string; reason: 'loader-error' | 'soft-timeout' | 'hard-timeout' }
  set: { key: string }
  /** A loaded value was stored (a fill after a miss; `l2`: whether L2 took it). */
  fill: { key: string; l2: boolean }
  delete: { keys: readonly string[] }
  evict: { key: string; reason: EvictionReason }
  error: { error: CacheError; operation: string; key?: string | undefined }
  'bus:degraded': { reason: string }
  'bus:resynced': { reason: string }
  'bus:state': { state: BusState; reason: string }
  /** A write-behind entry gave up after `maxRetries` deliveries and moved to the dead-letter stream. */
  'write:dead-lettered': { repository: string; id: string; version: number; error: string }
}

export type CacheEventName = keyof CacheEvents
export type Listener<E extends CacheEventName> = (payload: CacheEvents[E]) => void

/** Minimal typed emitter. `has` lets hot paths skip building payloads nobody reads. */
export class Emitter {
  readonly #listeners = new Map<CacheEventName, Set<(payload: never) => void>>()
  /** Per-event flags read on hot paths. */
  readonly has: Record<CacheEventName, boolean> = {
    hit: false,
    miss: false,
    stale: false,
    set: false,
    fill: false,
    delete: false,
    evict: false,
    error: false,
    'bus:degraded': false,
    'bus:resynced': false,
    'bus:state': false,
    'write:dead-lettered': false,
  }

  on<E extends CacheEventName>(event: E, listener: Listener<E>): () => void {
    if (!(event in this.has)) throw new TypeError(`[core] unknown event ${JSON.stringify(event)}`)
    let set = this.#listeners.get(event)
    if (!set) this.#listeners.set(event, (set = new Set()))
    set.add(listener)
    this.has[event] = true
    return () => {
      set.delete(listener)
      this.has[event] = set.size > 0
    }
  }

  emit<E extends CacheEventName>(event: E, payload: CacheEvents[E]): void {
    const set = this.#listeners.get(event)
    if (!set) return
    for (const listener of set) {
      try {
        ;(listener as Listener<E>)(payload)
      } catch {
        // A listener's error must not break the cache operation that emitted.
      }
    }
  }
}

export interface CacheStats {
  name: string
  l1: {
    hits: number
    misses: number
    entries: number
    bytes: number
    evictions: Record<string, number>
  }
  /** `pendingRepairs`: keys whose failed L2 write is still to be undone (see docs/l2-redis.md). */
  /** `probeError`: why the start-up permission probe failed (a Redis ACL), if it did. */
  l2: {
    hits: number
    misses: number
    errors: number
    corrupt: number
    pendingRepairs: number
    probeError: string | undefined
  }
  loads: number
  loadErrors: number
  /** Callers that joined another caller's load instead of starting their own. */
  coalesced: number
  staleServed: number
  /** Keys the warm start asked L2 for (0 without `warmStart`). */
  warmStarted: number
  /** L1 fills discarded because an invalidation raced them. */
  discardedFills: number
  errors: number
  bus: {
    state: BusState | 'none'
    published: number
    received: number
    publishErrors: number
    /** Invalidations waiting in the publisher's retry queue. */
    pendingPublishes: number
    degradedCount: number
    resyncedCount: number
  }
}

/** Mutable counters (the public `stats()` returns a snapshot). */
export class Counters {
  l1Hits = 0
  l1Misses = 0
  l2Hits = 0
  l2Misses = 0
  l2Errors = 0
  corrupt = 0
  loads = 0
  loadErrors = 0
  coalesced = 0
  staleServed = 0
  discardedFills = 0
  errors = 0
  published = 0
  received = 0
  publishErrors = 0
  degraded = 0
  resynced = 0
  /** Keys a warm start asked L2 for (0 without warmStart). */
  warmStarted = 0
  evictions: Record<string, number> = {}
}
