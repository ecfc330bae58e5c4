import { LRUCache } from 'lru-cache'
import { EvictionReason, invalidOption, systemClock, type Clock, type L1Driver } from '@strata/core'
import { FrequencySketch, keyHash } from './sketch.js'
import { frequencyOf, recordHit, saturated, Slot } from './slot.js'
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
  /**
   * What gets into a full L1. `'lru'`: every new entry, the least recently used leaves.
   * `'tinylfu'` (W-TinyLFU, as in Caffeine): new entries enter a small window (1% of the
   * bound); when the window overflows, its oldest entry joins the main area only if a
   * frequency sketch says it was asked for more often than the main area's least recently
   * used entry. Popular keys stay through scans and one-off reads; see docs/benchmarks.md
   * (hit-ratio) for the measured difference.
   * @default 'lru'
   */
  admission?: 'lru' | 'tinylfu'
}

/** lru-cache cannot store null: one shared box stands for it. */
const NULL = Object.freeze({ null: true })

/** What lru-cache holds, back to what core stored. */
function unwrap(held: object | undefined): unknown {
  const v = held instanceof Slot ? held.value : held
  return v === NULL ? null : v
}

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
  /** The main area (all of the bound with 'lru'). */
  readonly #lru: LRUCache<string | symbol, object>
  /** W-TinyLFU only: the admission window and the frequency sketch. */
  readonly #window: LRUCache<string | symbol, object> | undefined
  readonly #sketch: FrequencySketch | undefined
  readonly #windowMax: number
  readonly #mainMax: number
  readonly #maxBytes: number
  #listener: ((key: string, reason: EvictionReason) => void) | undefined
  /** Set while `clear()` runs so disposals report `cleared`, not `deleted`. */
  #clearing = false
  /** Set while an entry moves from the window to the main area (not a removal). */
  #moving = false

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
    const admission = options.admission ?? 'lru'
    if ((admission as string) !== 'lru' && (admission as string) !== 'tinylfu') {
      throw invalidOption(
        'l1-memory',
        'admission',
        `must be 'lru' or 'tinylfu' (got ${JSON.stringify(admission)})`,
      )
    }
    const sizeOf = options.sizeOf ?? estimateSize
    const clock = options.clock ?? systemClock
    const make = (max: number, maxBytes: number) =>
      new LRUCache<string | symbol, object>({
        max,
        ...(maxBytes > 0
          ? {
              maxSize: maxBytes,
              maxEntrySize: Math.max(1, Math.min(maxEntryBytes, maxBytes)),
              sizeCalculation: (e: object) => Math.max(1, Math.ceil(sizeOf(unwrap(e)))),
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
          if (l && !this.#moving && typeof key === 'string')
            l(key, this.#clearing ? EvictionReason.cleared : REASONS[reason])
        },
      })
    const tiny = admission === 'tinylfu' && maxEntries >= 2
    // W-TinyLFU's window is 1% of the bound (Caffeine's starting point); the main area is
    // one LRU (an SLRU main was measured: no better here, and it cannot lend protected
    // space to probation with fixed-size lru-cache instances).
    this.#windowMax = tiny ? Math.max(1, Math.ceil(maxEntries * 0.01)) : 0
    this.#mainMax = maxEntries - this.#windowMax
    const bytesOf = (n: number) => Math.ceil((this.#maxBytes * n) / maxEntries)
    this.#lru = make(this.#mainMax, bytesOf(this.#mainMax))
    this.#window = tiny ? make(this.#windowMax, bytesOf(this.#windowMax)) : undefined
    this.#sketch = tiny ? new FrequencySketch(maxEntries) : undefined
    // W-TinyLFU's hit path is its own function, an own property of its instances: `get`
    // stays the few lines LRU admission needs, and each small function is inlined into
    // core's hit path. With one `get` holding both branches, W-TinyLFU's l1-hit ratio ran
    // 0.04–0.10 below LRU admission's; split, 0.01–0.04 (docs/benchmarks-notes.md).
    if (tiny) this.get = this.#getAdmitted
  }

  get(key: string): unknown {
    const v = this.#lru.get(key)
    return v === NULL ? null : v
  }

  /** `get` with W-TinyLFU: two areas, a slot around each value, every access recorded. */
  #getAdmitted(key: string): unknown {
    const sketch = this.#sketch as FrequencySketch
    const held = this.#lru.get(key) ?? (this.#window as LRUCache<string | symbol, object>).get(key)
    if (held === undefined) {
      sketch.increment(key)
      return undefined
    }
    const slot = held as Slot
    // Checked here, not only inside recordHit: in the benchmark process recordHit was not
    // always inlined, and the call per hit cost 5–9% of W-TinyLFU's hit rate (three l1-hit
    // runs with both versions side by side).
    if (!saturated(sketch, slot)) recordHit(sketch, slot, key)
    return slot.value === NULL ? null : slot.value
  }

  /** Removes `key` from `lru` as a move between areas (no eviction event). */
  #move(lru: LRUCache<string | symbol, object>, key: string): void {
    this.#moving = true
    try {
      deleteKeeping(lru, key)
    } finally {
      this.#moving = false
    }
  }

  peek(key: string): unknown {
    return unwrap(this.#lru.peek(key) ?? this.#window?.peek(key))
  }

  set(key: string, stored: unknown, ttlMs: number): void {
    if (ttlMs <= 0 || stored === undefined) {
      this.delete(key)
      return
    }
    // lru-cache holds objects; primitives are objects to it at runtime, null is boxed once.
    const boxed = stored === null ? NULL : stored
    const ttl = Math.ceil(ttlMs)
    const window = this.#window
    const value = window === undefined ? boxed : new Slot(boxed, keyHash(key))
    // W-TinyLFU: new keys enter the admission window, but only once the main area is full
    // (counted in entries; a byte bound always goes through the window): until then
    // nothing is evicted, so admission has nothing to decide, and a hit looks in one area.
    const main = this.#lru
    if (
      window === undefined ||
      main.has(key) ||
      (this.#maxBytes === 0 && main.size < this.#mainMax && !window.has(key))
    ) {
      main.set(key, value, { ttl })
      return
    }
    if (!window.has(key) && window.size >= this.#windowMax) this.#promoteOldest(window)
    window.set(key, value, { ttl })
  }

  /** The window is full: its oldest entry joins the main area if it is asked for more often than the main area's LRU entry. */
  #promoteOldest(window: LRUCache<string | symbol, object>): void {
    const candidate = firstKey(window)
    if (candidate === undefined) return
    const value = window.peek(candidate)
    const ttl = window.getRemainingTTL(candidate)
    this.#move(window, candidate)
    if (value === undefined || !(ttl > 0)) return
    const main = this.#lru
    const victim = main.size >= this.#mainMax ? firstKey(main) : undefined
    const sketch = this.#sketch as FrequencySketch
    if (
      victim !== undefined &&
      frequencyOf(sketch, value as Slot, candidate) <=
        frequencyOf(sketch, main.peek(victim) as Slot, victim)
    ) {
      this.#listener?.(candidate, EvictionReason.evicted)
      return
    }
    main.set(candidate, value, ttlOption(ttl))
  }

  delete(key: string): boolean {
    let found = deleteKeeping(this.#lru, key)
    for (const lru of this.#others()) found = deleteKeeping(lru, key) || found
    return found
  }

  /** The window (none with 'lru'). */
  #others(): LRUCache<string | symbol, object>[] {
    return this.#window ? [this.#window] : []
  }

  /**
   * Without a prefix: everything. With one: every key starting with it. lru-cache has no
   * prefix index, so this walks the keys (O(entries)); core never depends on it for
   * correctness (fills racing a clear are discarded by core's epochs).
   */
  clear(prefix?: string): void {
    this.#clearing = true
    try {
      for (const lru of [this.#lru, ...this.#others()]) {
        if (prefix === undefined || prefix === '') lru.clear()
        else
          for (const key of [...lru.keys()])
            if (typeof key === 'string' && key.startsWith(prefix)) deleteKeeping(lru, key)
      }
    } finally {
      this.#clearing = false
    }
  }

  get size(): number {
    let n = count(this.#lru)
    for (const lru of this.#others()) n += count(lru)
    return n
  }

  get bytes(): number {
    if (this.#maxBytes === 0) return 0
    let n = this.#lru.calculatedSize
    for (const lru of this.#others()) n += lru.calculatedSize
    return n
  }

  onEvict(listener: (key: string, reason: EvictionReason) => void): void {
    this.#listener = listener
  }

  close(): void {
    this.#listener = undefined
    for (const lru of [this.#lru, ...this.#others()]) lru.clear()
  }
}

/** lru-cache's ttl option for a remaining lifetime (Infinity = none). */
function ttlOption(ttl: number): { ttl?: number } {
  return Number.isFinite(ttl) ? { ttl: Math.max(1, Math.ceil(ttl)) } : {}
}

/** The least recently used string key (the keeper symbol is skipped). */
function firstKey(lru: LRUCache<string | symbol, object>): string | undefined {
  for (const k of lru.rkeys()) if (typeof k === 'string') return k
  return undefined
}

/** Entries, not counting the keeper. */
function count(lru: LRUCache<string | symbol, object>): number {
  return lru.size - (lru.has(KEEPER) ? 1 : 0)
}

/**
 * lru-cache resets all its arrays (O(max)) when its last entry is deleted: ~1 ms per
 * delete at 10 000 entries, on every invalidation of a lone key. A keeper entry under a
 * symbol (no user key can equal it) keeps it from ever deleting its last entry.
 */
function deleteKeeping(lru: LRUCache<string | symbol, object>, key: string): boolean {
  if (lru.size === 1 && lru.has(key)) lru.set(KEEPER, KEEPER_VALUE)
  return lru.delete(key)
}

export function memoryL1(options?: MemoryL1Options): MemoryL1 {
  return new MemoryL1(options)
}
