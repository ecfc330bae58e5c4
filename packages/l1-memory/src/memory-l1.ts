import { LRUCache } from 'lru-cache'
import { EvictionReason, invalidOption, systemClock, type Clock, type L1Driver } from '@strata/core'
import { estimateSize } from './size.js'

export interface MemoryL1Options {
  /**
   * Maximum number of entries (least recently used go first).
   * @default 10_000
   */
  maxEntries?: number
  /**
   * Maximum estimated bytes (see `estimateSize`); 0 disables the byte bound.
   * @default 0
   */
  maxBytes?: number
  /** Largest single entry accepted, in estimated bytes. @default maxBytes / 4 when maxBytes is set */
  maxEntryBytes?: number
  /** Custom size function (bytes) of what core stores (an `L1Record` or a bare value). */
  sizeOf?: (stored: unknown) => number
  /** Time source for physical TTLs (tests inject a fake one). @default the system clock */
  clock?: Clock
}

/** lru-cache cannot store null: one shared box stands for it. */
const NULL = Object.freeze({ null: true })

const REASONS: Record<LRUCache.DisposeReason, EvictionReason> = {
  evict: EvictionReason.evicted,
  expire: EvictionReason.expired,
  set: EvictionReason.replaced,
  delete: EvictionReason.deleted,
  fetch: EvictionReason.replaced,
}

function nonNegativeInt(value: number | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidOption(
      'l1-memory',
      option,
      `must be a non-negative integer (got ${String(value)})`,
    )
  }
  return value
}

/**
 * L1 on lru-cache: bounded by entries and (estimated) bytes, physical TTL per entry.
 * Entries are the live objects core hands in: a hit returns the same reference (what
 * makes L1 fast); core's `clone` option copies on read for callers that mutate.
 */
/** The keeper entry (see `delete`): never returned, never reported, 1 slot. */
const KEEPER: unique symbol = Symbol('strata.l1.keeper')
const KEEPER_VALUE = Object.freeze({})

export class MemoryL1 implements L1Driver {
  readonly name = 'memory-l1'
  readonly #lru: LRUCache<string | symbol, object>
  readonly #maxBytes: number
  #listener: ((key: string, reason: EvictionReason) => void) | undefined
  /** Set while `clear()` runs so disposals report `cleared`, not `deleted`. */
  #clearing = false

  constructor(options: MemoryL1Options = {}) {
    if (typeof options !== 'object')
      throw invalidOption('l1-memory', 'options', 'must be an object')
    const maxEntries = nonNegativeInt(options.maxEntries, 'maxEntries', 10_000)
    if (maxEntries === 0) throw invalidOption('l1-memory', 'maxEntries', 'must be at least 1')
    this.#maxBytes = nonNegativeInt(options.maxBytes, 'maxBytes', 0)
    const maxEntryBytes = nonNegativeInt(
      options.maxEntryBytes,
      'maxEntryBytes',
      Math.floor(this.#maxBytes / 4),
    )
    if (this.#maxBytes > 0 && maxEntryBytes > this.#maxBytes) {
      throw invalidOption(
        'l1-memory',
        'maxEntryBytes',
        `cannot exceed maxBytes (${maxEntryBytes} > ${this.#maxBytes})`,
      )
    }
    if (options.sizeOf !== undefined && typeof options.sizeOf !== 'function') {
      throw invalidOption('l1-memory', 'sizeOf', 'must be a function')
    }
    const sizeOf = options.sizeOf ?? estimateSize
    const clock = options.clock ?? systemClock
    this.#lru = new LRUCache<string | symbol, object>({
      max: maxEntries,
      ...(this.#maxBytes > 0
        ? {
            maxSize: this.#maxBytes,
            maxEntrySize: Math.max(1, maxEntryBytes),
            sizeCalculation: (e: object) => Math.max(1, Math.ceil(sizeOf(e === NULL ? null : e))),
          }
        : {}),
      ttlAutopurge: false,
      // An injected clock is asked on every check: lru-cache caches `now` on a real timer a fake clock never fires.
      ttlResolution: options.clock ? 0 : 1,
      allowStale: false,
      updateAgeOnGet: false,
      perf: { now: () => clock.now() },
      dispose: (_value, key, reason) => {
        const l = this.#listener
        if (l && typeof key === 'string')
          l(key, this.#clearing ? EvictionReason.cleared : REASONS[reason])
      },
    })
  }

  get(key: string): unknown {
    const v = this.#lru.get(key)
    return v === NULL ? null : v
  }

  set(key: string, stored: unknown, ttlMs: number): void {
    if (ttlMs <= 0 || stored === undefined) {
      this.delete(key)
      return
    }
    // lru-cache holds objects; primitives are objects to it at runtime, null is boxed once.
    this.#lru.set(key, stored === null ? NULL : stored, { ttl: Math.ceil(ttlMs) })
  }

  delete(key: string): boolean {
    // lru-cache resets all its arrays (O(max)) when its last entry is deleted: ~1 ms per
    // delete at 10 000 entries, on every invalidation of a lone key. A keeper entry under
    // a symbol (no user key can equal it) keeps it from ever deleting its last entry.
    if (this.#lru.size === 1 && this.#lru.has(key)) this.#lru.set(KEEPER, KEEPER_VALUE)
    return this.#lru.delete(key)
  }

  /**
   * Without a prefix: everything. With one: every key starting with it. lru-cache has no
   * prefix index, so this walks the keys (O(entries)); core never depends on it for
   * correctness (fills racing a clear are discarded by core's epochs).
   */
  clear(prefix?: string): void {
    this.#clearing = true
    try {
      if (prefix === undefined || prefix === '') {
        this.#lru.clear()
        return
      }
      for (const key of [...this.#lru.keys()])
        if (typeof key === 'string' && key.startsWith(prefix)) this.delete(key)
    } finally {
      this.#clearing = false
    }
  }

  get size(): number {
    return this.#lru.size - (this.#lru.has(KEEPER) ? 1 : 0)
  }

  get bytes(): number {
    return this.#maxBytes > 0 ? this.#lru.calculatedSize : 0
  }

  onEvict(listener: (key: string, reason: EvictionReason) => void): void {
    this.#listener = listener
  }

  close(): void {
    this.#listener = undefined
    this.#lru.clear()
  }
}

export function memoryL1(options?: MemoryL1Options): MemoryL1 {
  return new MemoryL1(options)
}
