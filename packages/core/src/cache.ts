import { L1Record, type Entry } from './contracts.js'
import { Engine, NONE, type BatchLoader, type EngineHooks, type Loader } from './engine.js'
import { CacheError, errors, invalidOption } from './errors.js'
import type { CacheEventName, CacheStats, Listener } from './events.js'
import type { Probe } from './telemetry.js'
import {
  assertTags,
  PREFIX_PATTERN,
  resolveCall,
  resolveOptions,
  type CacheOptions,
  type EntryOptions,
} from './options.js'

export interface SetManyItem<V> {
  key: string
  value: V
  options?: EntryOptions
}

/**
 * The public cache. `namespace()` returns another `Cache` over the same engine whose keys
 * are scoped; everything else is identical.
 *
 * Key layout (L2 and bus): `<prefix>:<namespace path>:<key>`, the root namespace being
 * empty (`app::user:1`, `app:users:1`, `app:users/admins:1`). Namespace names cannot hold
 * `:` or `/`, so no key of one namespace can collide with another's.
 */
export class Cache {
  readonly #e: Engine
  readonly #kp: string
  readonly #ns: string
  readonly #max: number
  // Hot-path references, read once (no property chains on an L1 hit).
  readonly #l1: Engine['l1']
  readonly #counters: Engine['counters']
  readonly #has: Engine['events']['has']
  readonly #clone: boolean

  /** @internal use `createCache()` */
  constructor(engine: Engine, ns: string) {
    this.#e = engine
    this.#ns = ns
    this.#kp = ns ? `\u0001${ns}\u0001` : ''
    this.#max = engine.o.maxKeyLength
    this.#l1 = engine.l1
    this.#counters = engine.counters
    this.#has = engine.events.has
    this.#clone = engine.o.clone
  }

  /** The L1 key (see the key layout in engine.ts): no string building for root keys. */
  #key(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > this.#max)
      throw this.#badKey(key)
    if (this.#kp !== '') return this.#kp + key
    return key.charCodeAt(0) === 1 ? `\u0001${key}` : key
  }

  #badKey(key: unknown): CacheError {
    const what =
      typeof key === 'string'
        ? key.length === 0
          ? 'an empty string'
          : `${key.length} characters long`
        : `a ${typeof key}`
    return new CacheError(
      errors.E_INVALID_KEY,
      `[core] keys must be non-empty strings of at most ${this.#max} characters (got ${what})`,
    )
  }

  #keys(keys: readonly string[]): string[] {
    if (!Array.isArray(keys))
      throw new CacheError(errors.E_INVALID_KEY, '[core] expected an array of keys')
    return (keys as readonly unknown[]).map((k) => this.#key(k as string))
  }

  /** Bookkeeping of an L1 hit (counter, event, telemetry): the same for every read. */
  #l1Hit(operation: string, k: string): void {
    this.#counters.l1Hits++
    const e = this.#e
    if (this.#has.hit) e.events.emit('hit', { key: e.fullOf(k), tier: 'l1', stale: false })
    if (e.tel.on) e.tel.l1Hit(operation, this.#ns, k)
  }

  /** Runs a write under an operation span when telemetry is on. */
  #traced(
    operation: string,
    key: string | undefined,
    count: number | undefined,
    fn: () => Promise<void>,
  ): Promise<void> {
    const tel = this.#e.tel
    return tel.on ? tel.operation(operation, this.#ns, key, count, fn) : fn()
  }

  /** The namespace path of this view ('' for the root). */
  get namespacePath(): string {
    return this.#ns
  }

  /** A view whose keys live in namespace `name` (nested under this view's namespace). */
  namespace(name: string): Cache {
    if (typeof name !== 'string' || !PREFIX_PATTERN.test(name)) {
      throw invalidOption(
        'core',
        'namespace',
        `names must be 1-64 characters of letters, digits, '_', '-', '.' (got ${JSON.stringify(name)})`,
      )
    }
    return new Cache(this.#e, this.#ns ? `${this.#ns}/${name}` : name)
  }

  /** Resolves once the bus subscription is live (immediately without a bus). */
  ready(): Promise<void> {
    return this.#e.ready
  }

  // ------------------------------------------------------------------ reads

  /** The fresh value, or `undefined`. Never calls a loader. */
  async get<V = unknown>(key: string): Promise<V | undefined> {
    const e = this.#e
    const k = this.#key(key)
    const l1 = this.#l1
    if (l1 !== undefined) {
      const hit = l1.get(k)
      if (hit !== undefined) {
        // A bare value is fresh by construction (the driver enforces its TTL).
        const value = hit instanceof L1Record ? e.freshL1(hit, e.now()) : hit
        if (value !== NONE) {
          this.#l1Hit('get', k)
          return (this.#clone ? e.out(value) : value) as V
        }
      }
    }
    e.assertOpen()
    if (!e.tel.on) return (await e.getSlow(k)) as V | undefined
    return (await e.tel.operation('get', this.#ns, k, undefined, (p) => e.getSlow(k, p))) as
      V | undefined
  }

  /**
   * The cached value, or the loader's result (stored in every tier). Concurrent calls
   * for one key share one load. Return `null` from the loader to cache "not found"
   * (for `negativeTtl`); returning `undefined` is an error.
   */
  async getOrSet<V>(key: string, loader: Loader<V>, options?: EntryOptions): Promise<V> {
    const e = this.#e
    const k = this.#key(key)
    const l1 = this.#l1
    if (l1 !== undefined) {
      const hit = l1.get(k)
      if (hit !== undefined) {
        let value: unknown = hit
        if (hit instanceof L1Record) {
          const now = e.now()
          value = e.freshL1(hit, now)
          if (value !== NONE && hit.refreshAt <= now) {
            e.refreshAhead(k, key, loader as Loader<unknown>, options, hit)
          }
        }
        if (value !== NONE) {
          this.#l1Hit('getOrSet', k)
          return (this.#clone ? e.out(value) : value) as V
        }
      }
    }
    e.assertOpen()
    if (typeof loader !== 'function') throw invalidOption('core', 'loader', 'must be a function')
    if (!e.tel.on) return e.getOrSetSlow(k, key, loader, options)
    return e.tel.operation('getOrSet', this.#ns, k, undefined, (p) =>
      e.getOrSetSlow(k, key, loader, options, p),
    )
  }

  /** Values in key order (`undefined` for misses): one L1 pass, one L2 batch. */
  async getMany<V = unknown>(keys: readonly string[]): Promise<(V | undefined)[]> {
    const e = this.#e
    if (!e.tel.on) return this.#getMany<V>(keys)
    return e.tel.operation('getMany', this.#ns, undefined, keys.length, (p) =>
      this.#getMany<V>(keys, p),
    )
  }

  async #getMany<V>(keys: readonly string[], probe?: Probe): Promise<(V | undefined)[]> {
    const e = this.#e
    e.assertOpen()
    const full = this.#keys(keys)
    const out = new Array<V | undefined>(full.length)
    const missing = e.readL1Many(full, out)
    if (probe) {
      probe.tier = missing.length === 0 ? 'l1' : e.l2 ? 'l2' : 'none'
      probe.hit = missing.length === 0
    }
    if (missing.length === 0 || !e.l2) return out
    const mk = missing.map((i) => full[i] as string)
    const starts = mk.map((k) => e.beginFill(k))
    try {
      const found = await e.l2ReadMany(mk)
      const t = e.o.clock.now()
      found.forEach((entry: Entry | undefined, j) => {
        const k = mk[j] as string
        if (entry && entry.freshUntil > t) {
          e.counters.l2Hits++
          e.fillL1(k, entry, starts[j] as number, undefined)
          out[missing[j] as number] = e.out(entry.value) as V
        } else e.counters.l2Misses++
      })
    } finally {
      for (const k of mk) e.endFill(k)
    }
    return out
  }

  /**
   * Like `getOrSet` for many keys: cached values come from L1/L2, and the loader is
   * called ONCE with every key still missing. Keys it leaves out of the returned Map are
   * cached as "not found" (`null`).
   */
  async getOrSetMany<V>(
    keys: readonly string[],
    loader: BatchLoader<V>,
    options?: EntryOptions,
  ): Promise<(V | null)[]> {
    const e = this.#e
    e.assertOpen()
    if (typeof loader !== 'function') throw invalidOption('core', 'loader', 'must be a function')
    const full = this.#keys(keys)
    if (!e.tel.on) return e.getOrSetMany(full, keys, loader, options)
    return e.tel.operation('getOrSetMany', this.#ns, undefined, keys.length, async (p) => {
      const loadsBefore = e.counters.loads
      const values = await e.getOrSetMany(full, keys, loader, options)
      p.tier = e.counters.loads > loadsBefore ? 'loader' : e.l2 ? 'l2' : 'l1'
      return values
    })
  }

  // ----------------------------------------------------------------- writes

  /**
   * Writes L2, then the local L1, then tells every replica to drop its copy. If the L2
   * write fails, the local copy is dropped, peers are still told, and the call rejects
   * with `E_L2_UNAVAILABLE` (the old value may still be in L2).
   */
  async set(key: string, value: unknown, options?: EntryOptions): Promise<void> {
    return this.#traced('set', this.#kp + key, 1, () => this.#setMany([{ key, value, options }]))
  }

  async setMany(items: readonly SetManyItem<unknown>[]): Promise<void> {
    const count = Array.isArray(items) ? items.length : 0
    return this.#traced('setMany', undefined, count, () => this.#setMany(items))
  }

  async #setMany(items: readonly SetManyItem<unknown>[]): Promise<void> {
    const e = this.#e
    e.assertOpen()
    if (!Array.isArray(items))
      throw invalidOption('core', 'setMany', 'expects an array of { key, value, options? }')
    const prepared = await Promise.all(
      (items as readonly SetManyItem<unknown>[]).map(async (item) => {
        const k = this.#key(item.key)
        if (item.value === undefined) {
          throw new CacheError(
            errors.E_UNDEFINED_VALUE,
            `[core] cannot cache undefined for key "${item.key}"; use null for "not found" or delete()`,
          )
        }
        const p = resolveCall(e.o, item.options)
        const tagVersions = await e.tagVersionsFor(p.tags, k)
        const entry = e.buildEntry(item.value, p, p.ttl, p.tags, tagVersions)
        const bytes = e.l2 ? e.encode(k, entry) : undefined
        return { k, p, entry, bytes }
      }),
    )
    if (prepared.length === 0) return
    const keys = prepared.map((x) => x.k)
    e.invalidateKeysLocal(keys)
    let failure: unknown
    if (e.l2) {
      const now = e.o.clock.now()
      const writes = prepared.map((x) => ({
        key: e.fullOf(x.k),
        value: x.bytes as Uint8Array,
        ttlMs: x.entry.staleUntil - now,
      }))
      try {
        if (writes.length === 1) {
          const w = writes[0] as (typeof writes)[number]
          await e.l2.set(w.key, w.value, w.ttlMs)
        } else await e.l2.setMany(writes)
      } catch (err) {
        failure = err
      }
    }
    if (failure === undefined) for (const x of prepared) e.setL1(x.k, x.entry, x.p)
    await e.publishKeys('set', keys)
    if (failure !== undefined) {
      // L2 may still hold the old value: delete it once Redis answers again.
      e.scheduleRepair(keys)
      throw e.l2Failure(failure, 'set', keys[0])
    }
    e.repaired(keys)
    if (e.events.has.set) for (const k of keys) e.events.emit('set', { key: e.fullOf(k) })
  }

  async delete(key: string): Promise<void> {
    return this.#traced('delete', this.#kp + key, 1, () => this.#deleteMany([key]))
  }

  /** Deletes in L2 and L1 and tells every replica; one bus message for all keys. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    const count = Array.isArray(keys) ? keys.length : 0
    return this.#traced('deleteMany', undefined, count, () => this.#deleteMany(keys))
  }

  async #deleteMany(keys: readonly string[]): Promise<void> {
    const e = this.#e
    e.assertOpen()
    const full = [...new Set(this.#keys(keys))]
    if (full.length === 0) return
    e.invalidateKeysLocal(full)
    let failure: unknown
    if (e.l2) {
      try {
        await e.l2.delete(full.map((k) => e.fullOf(k)))
      } catch (err) {
        failure = err
      }
    }
    await e.publishKeys('delete', full)
    if (failure !== undefined) {
      e.scheduleRepair(full)
      throw e.l2Failure(failure, 'delete', full[0])
    }
    e.repaired(full)
    if (e.events.has.delete) e.events.emit('delete', { keys: full.map((k) => e.fullOf(k)) })
  }

  /**
   * Every entry carrying one of `tags` becomes a miss on its next read, in every tier and
   * on every replica. No key is scanned: L2 keeps a version per tag and entries record
   * the versions they were written under. Tags are scoped by the cache prefix and shared
   * by all namespaces.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const count = Array.isArray(tags) ? tags.length : 0
    return this.#traced('invalidateTags', undefined, count, () => this.#invalidateTags(tags))
  }

  async #invalidateTags(tags: readonly string[]): Promise<void> {
    const e = this.#e
    e.assertOpen()
    assertTags(tags)
    if (tags.length === 0) return
    if (e.l2 && !e.l2.tags) {
      throw new CacheError(
        errors.E_UNSUPPORTED,
        `[core] the ${e.l2.name} driver does not keep tag versions`,
      )
    }
    // Invalidate locally before and after the L2 bump: fills racing either side are discarded.
    e.invalidateTagsLocal(tags)
    let failure: unknown
    try {
      await e.l2?.tags?.bump(e.l2TagNames(tags))
    } catch (err) {
      failure = err
    }
    e.invalidateTagsLocal(tags)
    await e.publish({ op: 'tags', tags })
    if (failure !== undefined) throw e.l2Failure(failure, 'invalidateTags')
  }

  /** Removes every key of this namespace (the root clears the whole prefix), in every tier and replica. */
  async clear(): Promise<void> {
    return this.#traced('clear', undefined, undefined, () => this.#clear())
  }

  async #clear(): Promise<void> {
    const e = this.#e
    e.assertOpen()
    const prefixes = this.#ns
      ? [`${e.o.prefix}:${this.#ns}:`, `${e.o.prefix}:${this.#ns}/`]
      : [`${e.o.prefix}:`]
    const local = prefixes.map((p) => e.l1PrefixOf(p) ?? p)
    // Clear locally before and after L2: fills racing either side are discarded.
    e.clearLocal(local)
    let failure: unknown
    if (e.l2) {
      try {
        for (const p of prefixes) await e.l2.clear(p)
      } catch (err) {
        failure = err
      }
    }
    e.clearLocal(local)
    await e.publish({ op: this.#ns ? 'clear-namespace' : 'clear', prefixes })
    if (failure !== undefined) throw e.l2Failure(failure, 'clear')
  }

  // ------------------------------------------------------------- the rest

  stats(): CacheStats {
    return this.#e.stats()
  }

  on<E extends CacheEventName>(event: E, listener: Listener<E>): () => void {
    return this.#e.events.on(event, listener)
  }

  /** Closes the bus and every connection Strata created; waits for in-flight loads. */
  close(): Promise<void> {
    return this.#e.close()
  }

  /** @internal deterministic race hooks for tests */
  set testHooks(hooks: EngineHooks | undefined) {
    this.#e.hooks = hooks
  }
}

export function createCache(options: CacheOptions): Cache {
  return new Cache(new Engine(resolveOptions(options)), '')
}
