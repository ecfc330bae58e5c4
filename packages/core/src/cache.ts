import { Engine, NONE, type BatchLoader, type Loader } from './engine/index.js'
import { CacheError, errors, invalidOption } from './errors.js'
import { untilAborted } from './deadline.js'
import type { CacheEventName, CacheStats, Listener } from './events.js'
import { l1Key, namespacePath } from './engine/keys.js'
import { resolveOptions, type CacheOptions } from './options.js'
import { assertTags, type EntryOptions, type GetOptions, type SetManyItem } from './call.js'
import type { Probe } from './telemetry.js'
import type { CacheHealth } from './health.js'
import { jsonCodec } from './codec.js'
import type { Persist } from './engine/writes.js'
import { Repository, type RepositoryHost, type RepositoryOptions } from './repository.js'
import { warm, type WarmOptions, type WarmResult } from './warm.js'

const engines = new WeakMap<Cache, Engine>()
/** What "forever" means for an entry: 100 years. */
const FOREVER = 100 * 365 * 86_400_000

/** @internal the engine behind a cache (for `@strata/core/testing`). */
export function engineOf(cache: Cache): Engine {
  return engines.get(cache) as Engine
}

/**
 * The public cache: validates arguments, opens the span, delegates to the engine's read
 * and write pipelines. `namespace()` returns another `Cache` over the same engine whose
 * keys are scoped. Key layout (L2 and bus): `<prefix>:<namespace path>:<key>`, the root
 * namespace being empty (`app::user:1`, `app:users:1`, `app:users/admins:1`).
 */
export class Cache {
  readonly #e: Engine
  readonly #ns: string
  readonly #kp: string
  readonly #keys: Engine['s']['keys']
  readonly #max: number
  // Hot-path references, read once (no property chains on an L1 hit).
  readonly #l1: Engine['l1']
  readonly #s: Engine['s']

  /** @internal use `createCache()` */
  constructor(engine: Engine, ns: string) {
    this.#e = engine
    this.#s = engine.s
    this.#l1 = engine.l1
    this.#ns = ns
    this.#kp = ns ? `\u0001${ns}\u0001` : ''
    this.#keys = engine.s.keys
    this.#max = engine.s.o.maxKeyLength
    engines.set(this, engine)
  }

  /** The namespace path of this view ('' for the root). */
  get namespacePath(): string {
    return this.#ns
  }

  namespace(name: string): Cache {
    return new Cache(this.#e, namespacePath(this.#ns, name))
  }

  /** Bus live and L2 permissions probed; rejects with the first failure (see docs/api.md). */
  ready(): Promise<void> {
    return this.#e.ready
  }

  #op<T>(
    op: string,
    key: string | undefined,
    count: number | undefined,
    fn: (p?: Probe) => Promise<T>,
  ): Promise<T> {
    const tel = this.#s.tel
    return tel.on ? tel.operation(op, this.#ns, key, count, fn) : fn()
  }

  /** The L1 key of `key` in this view (validated). */
  #key(key: string): string {
    return l1Key(this.#kp, key, this.#max, this.#keys)
  }

  /**
   * The fresh value, or `undefined` (or `defaultValue`). Never calls a loader. With
   * `allowStale`, a value within grace is returned when there is no fresh one.
   */
  get<V = unknown>(key: string, options?: GetOptions<V>): Promise<V | undefined> {
    // Not async: an L2 read hands back the engine's promise itself (one hop fewer on
    // every L1 miss); errors thrown here still become rejections.
    try {
      const k = this.#key(key)
      const hit = this.#l1 ? this.#l1.serve('get', this.#ns, k, false) : NONE
      if (hit !== NONE) return Promise.resolve(hit as V)
      if (options === undefined) return this.#getSlow(k, false) as Promise<V | undefined>
      return this.#getSlow(k, options.allowStale === true).then((v) =>
        v === undefined ? options.defaultValue : (v as V),
      )
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what #key or L1 threw, unchanged
      return Promise.reject(err)
    }
  }

  /** `get`, with `defaultValue` for a miss (nothing is stored). */
  async getOr<V>(key: string, defaultValue: V): Promise<V> {
    return (await this.get<V>(key, { defaultValue })) as V
  }

  /** Whether a fresh value is cached (a cached "not found", `null`, counts as present). */
  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined
  }

  /** `!has(key)`. */
  async missing(key: string): Promise<boolean> {
    return (await this.get(key)) === undefined
  }

  /** The fresh value (or `undefined`), then the key deleted everywhere. */
  async pull<V = unknown>(key: string): Promise<V | undefined> {
    const v = await this.get<V>(key)
    await this.delete(key)
    return v
  }

  /** `set` with a TTL of 100 years (every Strata entry has one). */
  setForever(key: string, value: unknown, options?: EntryOptions): Promise<void> {
    return this.set(key, value, { ...options, ttl: FOREVER })
  }

  /** `getOrSet` whose loaded value lives 100 years. */
  getOrSetForever<V>(key: string, loader: Loader<V>, options?: EntryOptions): Promise<V> {
    return this.getOrSet(key, loader, { ...options, ttl: FOREVER })
  }

  #getSlow(k: string, allowStale: boolean): Promise<unknown> {
    this.#s.assertOpen()
    return this.#op('get', k, undefined, (p) => this.#e.reads.steps.getOne(k, p, allowStale))
  }

  /**
   * The cached value, or the loader's result (stored in every tier). Concurrent calls
   * for one key share one load. Return `null` from the loader to cache "not found";
   * returning `undefined` is an error.
   */
  getOrSet<V>(key: string, loader: Loader<V>, options?: EntryOptions): Promise<V> {
    if (options?.signal)
      return this.#abortable(this.#getOrSet(key, loader, options), options.signal)
    return this.#getOrSet(key, loader, options)
  }

  /** The caller's wait, ended by its signal (the shared load is not aborted). */
  #abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
    if (typeof (signal as Partial<AbortSignal>).addEventListener !== 'function') {
      return Promise.reject(invalidOption('core', 'signal', 'must be an AbortSignal'))
    }
    return untilAborted(
      p,
      signal,
      () => new CacheError(errors.E_ABORTED, '[core] the caller aborted its wait'),
    )
  }

  async #getOrSet<V>(key: string, loader: Loader<V>, options?: EntryOptions): Promise<V> {
    const k = this.#key(key)
    const l1 = this.#l1
    const hit = l1 && options?.forceFresh !== true ? l1.serve('getOrSet', this.#ns, k, true) : NONE
    if (hit === NONE) return this.#getOrSetSlow(k, key, loader as Loader<unknown>, options) as V
    if (l1?.refreshDue) this.#e.reads.refreshDue(k, key, loader as Loader<unknown>, options)
    return hit as V
  }

  #getOrSetSlow(k: string, key: string, loader: Loader<unknown>, options?: EntryOptions) {
    this.#s.assertOpen()
    return this.#op('getOrSet', k, undefined, (p) =>
      this.#e.reads.getOrSetOne(k, key, loader, options, p),
    )
  }

  /** Values in key order (`undefined` for misses): one L1 pass, one L2 batch. */
  async getMany<V = unknown>(keys: readonly string[]): Promise<(V | undefined)[]> {
    this.#s.assertOpen()
    const full = this.#s.keys.l1Keys(this.#kp, keys)
    return this.#op('getMany', undefined, full.length, (p) =>
      this.#e.reads.steps.getMany(full, p),
    ) as Promise<(V | undefined)[]>
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
    this.#s.assertOpen()
    if (typeof loader !== 'function') throw invalidOption('core', 'loader', 'must be a function')
    const full = this.#s.keys.l1Keys(this.#kp, keys)
    const source = { kind: 'many', loader: loader as BatchLoader<unknown> } as const
    const read = this.#op('getOrSetMany', undefined, full.length, (p) =>
      this.#e.reads.getOrSetMany(full, keys, source, options, p),
    ) as Promise<(V | null)[]>
    return options?.signal ? this.#abortable(read, options.signal) : read
  }

  /** Writes L2, then the local L1, then tells every replica to drop its copy (see the write pipeline). */
  async set(key: string, value: unknown, options?: EntryOptions): Promise<void> {
    return this.#set(key, value, options)
  }

  /** `set`, with a repository's persist step when there is one. */
  #set(key: string, value: unknown, options?: EntryOptions, persist?: Persist): Promise<void> {
    const k = this.#key(key)
    return this.#op('set', k, 1, () => this.#write().set([{ k, value, options }], persist))
  }

  async setMany(items: readonly SetManyItem<unknown>[]): Promise<void> {
    if (!Array.isArray(items))
      throw invalidOption('core', 'setMany', 'expects an array of { key, value, options? }')
    const prepared = items.map((i: SetManyItem<unknown>) => ({
      k: this.#key(i.key),
      value: i.value,
      options: i.options,
    }))
    return this.#op('setMany', undefined, items.length, () => this.#write().set(prepared))
  }

  async delete(key: string): Promise<void> {
    return this.#delete(key)
  }

  /** `delete`, with a repository's persist step when there is one. */
  #delete(key: string, persist?: Persist): Promise<void> {
    const k = this.#key(key)
    return this.#op('delete', k, 1, () => this.#write().delete([k], persist))
  }

  /** Deletes in L2 and L1 and tells every replica; one bus message for all keys. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    const full = this.#s.keys.l1Keys(this.#kp, keys)
    return this.#op('deleteMany', undefined, full.length, () => this.#write().delete(full))
  }

  /**
   * Logical expiry: the key is stale everywhere from now on (every replica's next read
   * loads it), but its value is kept for its grace, to be served if that load fails or
   * is slow (fail-safe, `get(key, { allowStale })`). An entry without grace is deleted.
   */
  async expire(key: string): Promise<void> {
    const k = this.#key(key)
    return this.#op('expire', k, 1, () => this.#write().expire([k]))
  }

  /**
   * Every entry carrying one of `tags` becomes a miss on its next read, in every tier and
   * on every replica. No key is scanned: L2 keeps a version per tag and entries record
   * the versions they were written under. Tags are scoped by the cache prefix.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    assertTags(tags)
    if (tags.length === 0) return
    return this.#op('invalidateTags', undefined, tags.length, () => this.#write().tags(tags))
  }

  /** Removes every key of this namespace (the root clears the whole prefix), in every tier and replica. */
  async clear(): Promise<void> {
    const prefixes = this.#s.keys.clearPrefixes(this.#s.o.prefix, this.#ns)
    return this.#op('clear', undefined, undefined, () =>
      this.#write().clear(prefixes, this.#ns !== ''),
    )
  }

  /**
   * Loads keys ahead of reads, in batches: one L2 read and at most one `loadMany` call per
   * batch, guarded fills, no bus message (see docs/patterns.md#warming).
   */
  warm<V>(
    keys: Iterable<string> | AsyncIterable<string>,
    options: WarmOptions<V>,
  ): Promise<WarmResult> {
    return warm((k, loader, o) => this.getOrSetMany(k, loader, o), keys, options)
  }

  /**
   * A namespace bound to its source of truth: read-through `get`/`getMany`, and
   * write-through or write-behind `set`/`delete` (see docs/patterns.md).
   */
  repository<V>(name: string, options: RepositoryOptions<V>): Repository<V> {
    return new Repository<V>(name, this.namespace(name).#host(), options)
  }

  #host(): RepositoryHost {
    const s = this.#s
    const e = this.#e
    return {
      getOrSet: (id, loader, o) => this.getOrSet(id, loader, o),
      getOrSetMany: (ids, loader, o) => this.getOrSetMany(ids, loader, o),
      set: (id, value, options, persist) => this.#set(id, value, options, persist),
      delete: (id, persist) => this.#delete(id, persist),
      prefix: s.o.prefix,
      fullKey: (id: string) => s.keys.fullOf(this.#key(id)),
      codec: e.l2?.driver.codec ?? jsonCodec,
      l2: e.l2?.driver,
      warm: (ids, options) => this.warm(ids, options),
      deadLettered: (event) => {
        if (s.events.has['write:dead-lettered']) s.events.emit('write:dead-lettered', event)
      },
      report: (err, op) => void s.report(err, op),
      onClose: (close) => e.closers.add(close),
      trackQueue: (stats) => e.writeQueues.add(stats),
    }
  }

  #write(): Engine['writes'] {
    this.#s.assertOpen()
    return this.#e.writes
  }

  stats(): CacheStats {
    return this.#e.stats()
  }

  /** `ok` / `degraded` / `down` with the L2 breaker and PING, bus state, repairs, write queues (docs/health-and-logging.md#health). */
  health(): Promise<CacheHealth> {
    return this.#e.health()
  }

  /** `await using cache = createCache(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  on<E extends CacheEventName>(event: E, listener: Listener<E>): () => void {
    return this.#s.events.on(event, listener)
  }

  /** Idempotent; see `Engine.close` (aborts loads, waits for writes, bounded). */
  close(): Promise<void> {
    return this.#e.close()
  }
}

export function createCache(options: CacheOptions): Cache {
  return new Cache(new Engine(resolveOptions(options)), '')
}
