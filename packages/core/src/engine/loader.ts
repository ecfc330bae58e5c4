import type { Entry } from '../contracts.js'
import { toMs, type Duration } from '../duration.js'
import { CacheError, errors } from '../errors.js'
import { NO_TAGS, type CallPolicy } from '../call.js'
import type { L2Tier } from './l2.js'
import type { Shared } from './shared.js'

/** What a loader gets. */
export interface LoaderContext<V = unknown> {
  /** The key as the caller passed it (without prefix or namespace). */
  readonly key: string
  /** Aborted when the hard timeout fires or the cache closes. */
  readonly signal: AbortSignal
  /** The stale value within grace, if any (e.g. for conditional requests upstream). */
  readonly staleValue: V | undefined
  /** Overrides the TTL for this result (adaptive TTL). */
  setTtl(ttl: Duration): void
  /**
   * Replaces the tags for this result. Call it BEFORE reading the source: the tags'
   * versions are read at this call, so an `invalidateTags` after it wins over the value.
   */
  setTags(tags: readonly string[]): void
  /**
   * Don't cache this result: the callers get what the loader returns (`return
   * ctx.skip()` hands them `undefined`), no tier stores it, the next read loads again.
   */
  skip(): undefined
}

export type Loader<V> = (ctx: LoaderContext<V>) => V | Promise<V>
export type BatchLoader<V> = (
  missingKeys: string[],
  ctx: { signal: AbortSignal },
) => Map<string, V> | Promise<Map<string, V>>

/** A single-key loader or a batch loader. */
export type Source =
  { kind: 'one'; loader: Loader<unknown> } | { kind: 'many'; loader: BatchLoader<unknown> }

/** Tag versions read before the source: `undefined` when they could not be read (the entry then stays out of L2). */
type Versions = Promise<readonly number[] | undefined>

/** Shared by every load without tags (a resolved promise per load is garbage on the miss path). */
const NO_VERSIONS: Versions = Promise.resolve(undefined)

/** One key's loaded value with what the loader chose for it. */
export interface Loaded {
  value: unknown
  ttl: number
  tags: readonly string[]
  versions: Versions
  /** `ctx.skip()` was called. */
  skip?: boolean
}

/**
 * Calls loaders and turns their results into entries. Tag versions are read before the
 * source is read (an `invalidateTags` during the load must win), entries get monotonic
 * versions and TTL jitter, and a failed loader backs off before it is called again.
 */
export class Loaders {
  readonly #s: Shared
  readonly #l2: L2Tier | undefined
  #lastVersion = 0

  constructor(shared: Shared, l2: L2Tier | undefined) {
    this.#s = shared
    this.#l2 = l2
  }

  /** Current tag versions, read now; `undefined` (reported) when L2 fails. */
  versionsOf(tags: readonly string[], key?: string): Versions {
    const l2 = this.#l2
    if (tags.length === 0 || !l2?.driver.tags) return NO_VERSIONS
    return l2.tagVersions(tags).catch((err: unknown) => {
      this.#s.l2Failure(err, 'l2.tags', key)
      return undefined
    })
  }

  /**
   * Calls `source` for `keys` (user keys in `userKeys`). Resolves, per key, what was
   * loaded or the error for that key; rejects with E_LOADER_ERROR when the call fails.
   */
  call(
    source: Source,
    keys: readonly string[],
    userKeys: readonly string[],
    p: CallPolicy,
    /** The stale entry of a single-key source's key (batch loaders get none). */
    stale: Entry | undefined,
    signal: () => AbortSignal,
  ): Promise<(Loaded | CacheError)[]> {
    this.#s.counters.loads++
    const versions = this.versionsOf(p.tags, keys.length === 1 ? keys[0] : undefined)
    const run = () =>
      source.kind === 'one'
        ? this.#one(
            source.loader,
            userKeys[0] as string,
            keys[0] as string,
            p,
            stale,
            signal,
            versions,
          )
        : this.#many(source.loader, userKeys, p, signal, versions)
    // Tag versions must be read before the source is: wait for them (only when there are tags).
    return p.tags.length > 0 ? versions.then(run) : run()
  }

  /** A single-key loader; no async frame of its own (this runs once per miss). */
  #one(
    loader: Loader<unknown>,
    userKey: string,
    key: string,
    p: CallPolicy,
    stale: Entry | undefined,
    signal: () => AbortSignal,
    versions: Versions,
  ): Promise<(Loaded | CacheError)[]> {
    const ctx = new Context(this, userKey, key, stale?.value, signal, {
      value: undefined,
      ttl: p.ttl,
      tags: p.tags,
      versions,
    })
    const loaded = ctx.loaded
    let r: unknown
    try {
      r = this.#s.tel.on ? this.#s.tel.load(async () => loader(ctx)) : loader(ctx)
    } catch (err) {
      return Promise.reject(this.#failed(err))
    }
    return Promise.resolve(r).then(
      (value) => {
        loaded.value = value
        return [value === undefined && !loaded.skip ? undefinedValue() : loaded]
      },
      (err: unknown) => {
        throw this.#failed(err)
      },
    )
  }

  async #many(
    loader: BatchLoader<unknown>,
    userKeys: readonly string[],
    p: CallPolicy,
    signal: () => AbortSignal,
    versions: Versions,
  ): Promise<(Loaded | CacheError)[]> {
    try {
      const run = async () => loader([...userKeys], { signal: signal() })
      const map = await (this.#s.tel.on ? this.#s.tel.load(run) : run())
      if (!(map instanceof Map))
        throw new TypeError(`batch loader must resolve a Map (got ${typeof map})`)
      return userKeys.map((uk) => {
        // A key the loader did not return is "not found": cached as a negative entry.
        const value = map.has(uk) ? map.get(uk) : null
        return value === undefined
          ? undefinedValue()
          : { value, ttl: p.ttl, tags: p.tags, versions }
      })
    } catch (err) {
      throw this.#failed(err)
    }
  }

  /** A loader's failure, counted, as the E_LOADER_ERROR its callers get. */
  #failed(err: unknown): CacheError {
    this.#s.counters.loadErrors++
    return new CacheError(
      errors.E_LOADER_ERROR,
      `[core] the loader failed: ${String((err as Error | undefined)?.message ?? err)}`,
      { cause: err },
    )
  }

  /** The entry for a value (a load's or a `set`'s), under the tag versions read for it. */
  entry(
    loaded: Pick<Loaded, 'value' | 'ttl' | 'tags'>,
    p: CallPolicy,
    versions: readonly number[] | undefined,
  ): Entry {
    const now = this.#s.o.clock.now()
    const negative = loaded.value === null
    const life = this.#jitter(negative ? (p.negativeTtl ?? loaded.ttl) : loaded.ttl)
    const entry: Entry = {
      value: loaded.value,
      createdAt: now,
      freshUntil: now + life,
      staleUntil: now + life + p.grace,
      tags: loaded.tags,
      version: this.nextVersion(now),
    }
    if (versions) entry.tagVersions = versions
    if (negative) entry.negative = true
    return entry
  }

  nextVersion(now: number): number {
    const v = Math.max(now * 1000, this.#lastVersion + 1)
    this.#lastVersion = v
    return v
  }

  #jitter(ttl: number): number {
    const j = this.#s.o.jitter
    return j > 0 ? Math.max(1, Math.round(ttl * (1 - j + Math.random() * 2 * j))) : ttl
  }
}

/** The loader context: one object per load, its methods on the prototype. */
class Context implements LoaderContext {
  readonly #loaders: Loaders
  readonly #key: string
  readonly #signal: () => AbortSignal
  readonly key: string
  readonly staleValue: unknown
  /** What the loader chose (TTL, tags and their versions), filled in as it calls. */
  readonly loaded: Loaded

  constructor(
    loaders: Loaders,
    userKey: string,
    key: string,
    staleValue: unknown,
    signal: () => AbortSignal,
    loaded: Loaded,
  ) {
    this.#loaders = loaders
    this.#key = key
    this.#signal = signal
    this.key = userKey
    this.staleValue = staleValue
    this.loaded = loaded
  }

  get signal(): AbortSignal {
    return this.#signal()
  }

  setTtl(d: Duration): void {
    const ms = toMs(d, 'ctx.setTtl')
    if (ms !== undefined && ms > 0) this.loaded.ttl = ms
  }

  skip(): undefined {
    this.loaded.skip = true
    return undefined
  }

  setTags(t: readonly string[]): void {
    this.loaded.tags = t.length > 0 ? [...t] : NO_TAGS
    this.loaded.versions = this.#loaders.versionsOf(this.loaded.tags, this.#key)
  }
}

function undefinedValue(): CacheError {
  return new CacheError(
    errors.E_UNDEFINED_VALUE,
    '[core] the loader returned undefined; return null to cache "not found"',
  )
}
