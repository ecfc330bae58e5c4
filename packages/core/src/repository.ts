import { trace } from '@opentelemetry/api'
import type { Codec, L2Driver } from './contracts.js'
import type { BoundGuard, Guard, GuardStats, RebuildReport } from './guard.js'
import type { WarmOptions, WarmResult } from './warm.js'
import { CacheError, errors, invalidOption } from './errors.js'
import type { LoaderContext } from './engine/loader.js'
import type { Persist } from './engine/writes.js'
import type { EntryOptions } from './call.js'
import type {
  Persistence,
  WriteBehind,
  WriteBehindQueue,
  WriteOp,
  WriteQueueStats,
} from './write-behind.js'

export interface RepositoryOptions<V> extends EntryOptions, Persistence<V> {
  /** Read-through: loads one id on a miss in every tier. Return `null` for "not found". */
  load: (id: string, ctx: LoaderContext<V | null>) => V | null | Promise<V | null>
  /** Loads many ids at once for `getMany` (ids it leaves out are "not found"). */
  loadMany?:
    | ((
        ids: string[],
        ctx: { signal: AbortSignal },
      ) => Map<string, V | null> | Promise<Map<string, V | null>>)
    | undefined
  /**
   * `'through'` (default): `save`/`remove` first, then the cache. Or a write-behind
   * strategy (`redisStreamsWriteBehind(...)`): the cache and a durable queue now, the
   * source later.
   */
  write?: 'through' | WriteBehind | undefined
  /** A penetration guard (`redisBloomGuard(...)`): ids it knows are absent skip the loader. */
  guard?: Guard | undefined
}

/** The write queue's figures (zeros for write-through) and the guard's, if any. */
export type RepositoryStats = WriteQueueStats & { guard: GuardStats | undefined }

/** What a repository needs from the cache that creates it (kept off the public API). */
export interface RepositoryHost {
  getOrSet(
    id: string,
    loader: (ctx: LoaderContext) => unknown,
    options: EntryOptions,
  ): Promise<unknown>
  getOrSetMany(
    ids: readonly string[],
    loader: (ids: string[], ctx: { signal: AbortSignal }) => Promise<Map<string, unknown>>,
    options: EntryOptions,
  ): Promise<unknown[]>
  set(id: string, value: unknown, options: EntryOptions, persist: Persist): Promise<void>
  delete(id: string, persist?: Persist): Promise<void>
  readonly prefix: string
  /** The full (L2 / bus) key of an id of this repository. */
  fullKey(id: string): string
  readonly codec: Codec
  readonly l2: L2Driver | undefined
  warm(ids: Iterable<string> | AsyncIterable<string>, options: WarmOptions): Promise<WarmResult>
  deadLettered(event: { repository: string; id: string; version: number; error: string }): void
  report(error: unknown, operation: string): void
  onClose(close: () => Promise<void>): void
  /** Registers a write-behind queue's figures for `cache.health()`. */
  trackQueue(stats: () => WriteQueueStats): void
}

const ENTRY_OPTIONS = [
  'ttl',
  'l1Ttl',
  'grace',
  'negativeTtl',
  'tags',
  'timeouts',
  'distributedLock',
] as const

/**
 * A namespace bound to its source of truth (see docs/patterns.md): read-through reads
 * (`getOrSet` with the repository's loader), and writes that persist through (`save`,
 * then the write pipeline) or behind (the write pipeline after a durable, versioned
 * enqueue; workers persist later). Reads never go behind an unpersisted write: a load
 * asks the queue for the id's pending write before it asks the source.
 */
export class Repository<V> {
  readonly name: string
  readonly #host: RepositoryHost
  readonly #o: RepositoryOptions<V>
  readonly #entry: EntryOptions
  readonly #queue: WriteBehindQueue | undefined
  readonly #guard: BoundGuard | undefined

  /** @internal use `cache.repository()` */
  constructor(name: string, host: RepositoryHost, options: RepositoryOptions<V>) {
    validate(name, options)
    this.name = name
    this.#host = host
    this.#o = options
    const entry: EntryOptions = {}
    for (const k of ENTRY_OPTIONS)
      if (options[k] !== undefined) (entry as Record<string, unknown>)[k] = options[k]
    this.#entry = entry
    const write = options.write ?? 'through'
    if (write !== 'through') {
      const codec = host.codec
      const queue = write.bind<V>({
        repository: name,
        prefix: host.prefix,
        persist: { save: options.save, saveMany: options.saveMany, remove: options.remove },
        encode: (value, id) => codec.encode(wrap(value), host.fullKey(id)),
        decode: (bytes, id) => codec.decode(bytes, host.fullKey(id)).value,
        deadLettered: (e) => host.deadLettered({ repository: name, ...e }),
        report: (err, op) => host.report(err, op),
      })
      this.#queue = queue
      host.onClose(() => queue.close())
      host.trackQueue(() => queue.stats())
    }
    const guard = options.guard?.bind({
      repository: name,
      prefix: host.prefix,
      l2: host.l2,
      report: (err, op) => host.report(err, op),
    })
    if (guard) {
      this.#guard = guard
      host.onClose(() => guard.close())
    }
  }

  /** The cached value, or the source's (through `load`); `null` when the source has none. */
  async get(id: string): Promise<V | null> {
    return this.#host.getOrSet(id, this.#loadOne, this.#entry) as Promise<V | null>
  }

  /** Values in id order; one `loadMany` call for every id missing from the cache. */
  async getMany(ids: readonly string[]): Promise<(V | null)[]> {
    if (!this.#o.loadMany) return Promise.all(ids.map((id) => this.get(id)))
    return this.#host.getOrSetMany(ids, this.#loadMany, this.#entry) as Promise<(V | null)[]>
  }

  /** Persists (now or durably queued, by the `write` option) and updates every replica's cache. */
  async set(id: string, value: V): Promise<void> {
    const save = this.#o.save ?? this.#saveOneOfMany()
    return this.#write(
      id,
      'set',
      value,
      (version) => this.#source('save', id, () => save(id, value, { version })),
      (persist) => this.#host.set(id, value, this.#entry, persist),
    )
  }

  /** Removes from the source (now or queued) and from every replica's cache. */
  async delete(id: string): Promise<void> {
    const remove = this.#o.remove
    if (!remove) {
      throw new CacheError(errors.E_UNSUPPORTED, `[core] repository "${this.name}" has no remove()`)
    }
    return this.#write(
      id,
      'delete',
      null,
      (version) => this.#source('remove', id, () => remove(id, { version })),
      (persist) => this.#host.delete(id, persist),
    )
  }

  /**
   * The one repository write: inside the write pipeline, its persist step adds a set's id
   * to the guard (before any replica can hear of it), then calls the source now
   * (write-through) or enqueues durably (write-behind; the source only when the full
   * queue falls back to write-through, with the queue's version).
   */
  #write(
    id: string,
    op: WriteOp,
    value: unknown,
    toSource: Persist,
    pipeline: (persist: Persist) => Promise<void>,
  ): Promise<void> {
    const queue = this.#queue
    const persist: Persist = async (version) => {
      if (op === 'set') await this.#guard?.add([id])
      if (queue) {
        const queued = await this.#enqueue(queue, id, op, value)
        if (queued.queued) return
        version = queued.version
      }
      await toSource(version)
    }
    return queue ? this.#behind(id, pipeline(persist)) : pipeline(persist)
  }

  /** Enqueues; an enqueue that failed without a definite answer may still land. */
  async #enqueue(queue: WriteBehindQueue, id: string, op: WriteOp, value: unknown) {
    try {
      return await queue.enqueue(id, op, value)
    } catch (err) {
      if (CacheError.is(err, errors.E_WRITE_QUEUE_FULL) || CacheError.is(err, errors.E_CLOSED))
        throw err
      throw new Ambiguous(err)
    }
  }

  /**
   * A timed-out or dropped enqueue may still reach the stream and be persisted: no
   * replica may keep serving the value it replaces, so the id is dropped everywhere.
   */
  async #behind(id: string, write: Promise<void>): Promise<void> {
    try {
      await write
    } catch (err) {
      if (!(err instanceof Ambiguous)) throw err
      await this.#host.delete(id).catch(() => undefined)
      throw err.cause
    }
  }

  /** Write-behind: resolves once every write enqueued before the call is persisted (or dead-lettered). */
  async flush(options?: { timeoutMs?: number }): Promise<void> {
    await this.#queue?.flush(options)
  }

  /** The write-behind queue's figures (zeros for write-through). */
  stats(): RepositoryStats {
    const queue = this.#queue?.stats() ?? {
      pending: 0,
      inFlight: 0,
      persisted: 0,
      superseded: 0,
      retried: 0,
      deadLettered: 0,
      oldestPendingAgeMs: 0,
      enqueued: 0,
    }
    return { ...queue, guard: this.#guard?.stats() }
  }

  /** Rebuilds the guard's filter from the source's ids (atomic swap); see docs/patterns.md. */
  async rebuildGuard(options?: { onProgress?: (ids: number) => void }): Promise<RebuildReport> {
    if (!this.#guard) {
      throw new CacheError(errors.E_UNSUPPORTED, `[core] repository "${this.name}" has no guard`)
    }
    return this.#guard.rebuild(options)
  }

  /**
   * Loads `ids` into the cache ahead of reads, in batches through the repository's
   * `loadMany` (pending writes and the guard apply as on any load); see `cache.warm`.
   */
  async warm(
    ids: Iterable<string> | AsyncIterable<string>,
    options: Omit<WarmOptions, 'loadMany' | 'options'> = {},
  ): Promise<WarmResult> {
    if (!this.#o.loadMany) {
      throw new CacheError(
        errors.E_UNSUPPORTED,
        `[core] repository "${this.name}": warm needs loadMany()`,
      )
    }
    return this.#host.warm(ids, { ...options, loadMany: this.#loadMany, options: this.#entry })
  }

  /**
   * What a load can answer without the source: an id's pending (unpersisted) write, or
   * `null` for an id the guard knows is absent. The rest must be loaded.
   */
  async #known(ids: readonly string[]): Promise<{ known: Map<string, unknown>; rest: string[] }> {
    const known = new Map<string, unknown>()
    let rest = [...ids]
    if (this.#queue) {
      const pending = await this.#queue.pending(rest)
      rest = rest.filter((id, i) => {
        const p = pending[i]
        if (p) known.set(id, p.value)
        return !p
      })
    }
    if (this.#guard && rest.length > 0) {
      const might = await this.#guard.mightContain(rest)
      const absent = rest.filter((_, i) => !might[i])
      if (absent.length > 0) {
        for (const id of absent) known.set(id, null)
        rest = rest.filter((_, i) => might[i])
        trace.getActiveSpan()?.addEvent('guard.rejected', { 'cache.guard.rejected': absent.length })
      }
    }
    return { known, rest }
  }

  readonly #loadOne = async (ctx: LoaderContext): Promise<unknown> => {
    if (this.#queue || this.#guard) {
      const { known } = await this.#known([ctx.key])
      if (known.has(ctx.key)) return known.get(ctx.key)
    }
    return this.#o.load(ctx.key, ctx as LoaderContext<V | null>)
  }

  readonly #loadMany = async (
    ids: string[],
    ctx: { signal: AbortSignal },
  ): Promise<Map<string, unknown>> => {
    const { known, rest } = await this.#known(ids)
    if (rest.length > 0) {
      const loadMany = this.#o.loadMany as NonNullable<RepositoryOptions<V>['loadMany']>
      const loaded = await loadMany(rest, ctx)
      for (const id of rest) if (loaded.has(id)) known.set(id, loaded.get(id))
    }
    return known
  }

  #saveOneOfMany(): NonNullable<Persistence<V>['save']> {
    const saveMany = this.#o.saveMany
    if (!saveMany) {
      throw new CacheError(errors.E_UNSUPPORTED, `[core] repository "${this.name}" has no save()`)
    }
    return (id, value, { version }) => saveMany([{ id, value, version }])
  }

  async #source(op: 'save' | 'remove', id: string, call: () => unknown): Promise<void> {
    try {
      await call()
    } catch (err) {
      throw new CacheError(
        errors.E_SOURCE_WRITE,
        `[core] repository "${this.name}": ${op} failed; no cache changed`,
        { cause: err, key: `${this.#host.prefix}:${this.name}:${id}` },
      )
    }
  }
}

class Ambiguous extends Error {
  constructor(cause: unknown) {
    super('enqueue outcome unknown', { cause })
  }
}

/** The queue stores values with the L2 codec's rules, in an entry envelope it never reads. */
function wrap(value: unknown) {
  return { value, createdAt: 0, freshUntil: 0, staleUntil: 0, tags: [], version: 0 }
}

function validate<V>(name: string, options: RepositoryOptions<V>): void {
  // Checked at run time for callers without types.
  const o = options as unknown as Record<string, unknown> & { write?: unknown }
  if (typeof o !== 'object' || (o as unknown) === null)
    throw invalidOption('core', 'repository', 'expects an options object')
  if (typeof o.load !== 'function')
    throw invalidOption('core', `repository "${name}": load`, 'must be a function')
  for (const k of ['loadMany', 'save', 'saveMany', 'remove'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'function') {
      throw invalidOption('core', `repository "${name}": ${k}`, 'must be a function')
    }
  }
  const w = o.write
  if (
    w !== undefined &&
    w !== 'through' &&
    (typeof w !== 'object' || w === null || (w as { kind?: unknown }).kind !== 'write-behind')
  ) {
    throw invalidOption(
      'core',
      `repository "${name}": write`,
      "must be 'through' or a write-behind strategy",
    )
  }
  const g = o['guard'] as { kind?: unknown } | null | undefined
  if (g !== undefined && (typeof g !== 'object' || g === null || g.kind !== 'guard')) {
    throw invalidOption(
      'core',
      `repository "${name}": guard`,
      'must be a guard such as redisBloomGuard(...)',
    )
  }
  if (w !== undefined && w !== 'through' && !o.save && !o.saveMany) {
    throw invalidOption('core', `repository "${name}": write-behind`, 'needs save() or saveMany()')
  }
}
