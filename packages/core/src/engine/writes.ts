import type { Entry, L2SetItem } from '../contracts.js'
import { CacheError, errors } from '../errors.js'
import { resolveCall, type CallPolicy, type EntryOptions } from '../call.js'
import type { BusLink } from './bus-link.js'
import type { Invalidation } from './invalidation.js'
import type { L1Tier } from './l1.js'
import type { L2Tier } from './l2.js'
import type { Loaders } from './loader.js'
import type { Repair } from './repair.js'
import type { Shared } from './shared.js'

export interface SetItem {
  /** L1 key. */
  k: string
  value: unknown
  options?: EntryOptions | undefined
}

/**
 * A repository's persist step (write-through `save`/`remove`, write-behind enqueue): it
 * runs after validation and encoding, before any tier changes, with the version of the
 * write (the new entry's for a set). If it throws, nothing in any cache changed.
 */
export type Persist = (version: number) => Promise<void>

interface Prepared {
  k: string
  p: CallPolicy
  entry: Entry
  bytes: Uint8Array | undefined
}

/**
 * The write pipeline: every write (set, setMany, delete, deleteMany, invalidateTags,
 * clear, and the repository writes built on them) goes through the same order:
 *
 *   validate + encode → invalidate locally → L2 → guarded L1 → publish
 *
 * and on failure: drop locally and in L2, publish (not waited for), schedule repair,
 * throw. A value that fails to encode (or any other failed preparation) is such a
 * failure: the caller may already have changed the source of truth, so the key is
 * deleted everywhere before the error is thrown. The local L1 write goes through the
 * fill guard: a peer's write heard while this write's L2 reply was in flight wins.
 */
export class WritePipeline {
  readonly #s: Shared
  readonly #l1: L1Tier | undefined
  readonly #l2: L2Tier | undefined
  readonly #loaders: Loaders
  readonly #local: Invalidation
  readonly #bus: BusLink
  readonly #repair: Repair | undefined
  /** Writes in flight (close waits for them, bounded). */
  readonly inFlight = new Set<Promise<unknown>>()

  constructor(
    shared: Shared,
    l1: L1Tier | undefined,
    l2: L2Tier | undefined,
    loaders: Loaders,
    local: Invalidation,
    bus: BusLink,
    repair: Repair | undefined,
  ) {
    this.#s = shared
    this.#l1 = l1
    this.#l2 = l2
    this.#loaders = loaders
    this.#local = local
    this.#bus = bus
    this.#repair = repair
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p)
    void p.then(
      () => this.inFlight.delete(p),
      () => this.inFlight.delete(p),
    )
    return p
  }

  set(items: readonly SetItem[], persist?: Persist): Promise<void> {
    return this.#track(this.#set(items, persist))
  }

  delete(keys: readonly string[], persist?: Persist): Promise<void> {
    return this.#track(this.#delete(keys, persist))
  }

  /** Logical expiry: stale everywhere, kept for its grace (see `L2Tier.expire`). */
  expire(keys: readonly string[]): Promise<void> {
    return this.#track(this.#expire(keys))
  }

  tags(tags: readonly string[]): Promise<void> {
    return this.#track(this.#tags(tags))
  }

  clear(fullPrefixes: readonly string[], namespace: boolean): Promise<void> {
    return this.#track(this.#clear(fullPrefixes, namespace))
  }

  async #prepare(items: readonly SetItem[]): Promise<Prepared[]> {
    const s = this.#s
    const l2 = this.#l2
    const prepared: Prepared[] = []
    for (const item of items) {
      if (item.value === undefined) {
        throw new CacheError(
          errors.E_UNDEFINED_VALUE,
          '[core] cannot cache undefined; use null for "not found" or delete()',
          { key: s.keys.fullOf(item.k) },
        )
      }
      const p = resolveCall(s.o, item.options)
      let versions: readonly number[] | undefined
      if (p.tags.length > 0 && l2?.driver.tags) versions = await l2.tagVersions(p.tags)
      const entry = this.#loaders.entry(
        { value: item.value, ttl: p.ttl, tags: p.tags },
        p,
        versions,
      )
      // skipL2Write: the value never reaches L2, so it need not be encodable.
      const bytes = l2 && !p.skipL2Write ? l2.encode(item.k, entry) : undefined
      prepared.push({ k: item.k, p, entry, bytes })
    }
    return prepared
  }

  async #set(items: readonly SetItem[], persist?: Persist): Promise<void> {
    const s = this.#s
    if (items.length === 0) return
    let prepared: Prepared[]
    try {
      prepared = await this.#prepare(items)
    } catch (err) {
      // Without a persist step the caller may already have changed the source: no replica
      // may keep the old value. With one, the source has not been touched yet.
      if (!persist) await this.#delete([...new Set(items.map((i) => i.k))]).catch(() => undefined)
      throw err
    }
    if (persist) await persist((prepared[0] as Prepared).entry.version)
    const keys = prepared.map((x) => x.k)
    await this.#keyWrite(
      keys,
      'set',
      (l2) => this.#writeL2(l2, prepared),
      async (l1, start) => {
        for (const x of prepared) {
          if (s.hooks?.beforeL1Write) await s.hooks.beforeL1Write(x.k)
          l1.fill(x.k, x.entry, start, x.p, false)
        }
      },
      // skipBusNotify is honoured only when the write succeeded (a failure tells everyone).
      (failed) =>
        !failed && prepared.some((x) => x.p.skipBusNotify)
          ? prepared.filter((x) => !x.p.skipBusNotify).map((x) => x.k)
          : keys,
    )
    if (s.events.has.set) for (const k of keys) s.events.emit('set', { key: s.keys.fullOf(k) })
  }

  /**
   * The steps every key write shares (set, setMany, expire): under the fill guard,
   * invalidate locally, run the L2 part, write this replica's L1 through the guard (only
   * if L2 took its part), publish, and on failure schedule the repair and throw.
   */
  async #keyWrite<T>(
    keys: readonly string[],
    operation: 'set' | 'expire',
    toL2: (l2: L2Tier) => Promise<T>,
    toL1: (l1: L1Tier, start: number, fromL2: T | undefined) => Promise<void>,
    told: (failed: boolean) => readonly string[],
  ): Promise<void> {
    const s = this.#s
    for (const k of keys) s.guard.begin(k)
    try {
      const start = this.#local.keys(keys)
      let failure: unknown
      let fromL2: T | undefined
      const l2 = this.#l2
      if (l2) {
        try {
          fromL2 = await toL2(l2)
        } catch (err) {
          failure = err
        }
      }
      if (failure === undefined && this.#l1) await toL1(this.#l1, start, fromL2)
      const publish = told(failure !== undefined)
      if (publish.length > 0)
        await ifTaken(
          this.#bus.publishKeys(operation === 'set' ? 'set' : 'delete', publish),
          failure,
        )
      if (failure !== undefined) {
        // L2 may still hold the old (or still fresh) value: delete it once Redis answers again.
        this.#repair?.keys(keys)
        throw s.l2Failure(failure, operation, keys.length === 1 ? keys[0] : undefined)
      }
      this.#repair?.done(keys)
    } finally {
      for (const k of keys) s.guard.end(k)
    }
  }

  /** The L2 step of a set: one SET/pipeline; `skipL2Write` items are deleted there instead. */
  async #writeL2(l2: L2Tier, prepared: readonly Prepared[]): Promise<void> {
    const s = this.#s
    const now = s.o.clock.now()
    const writes: L2SetItem[] = []
    const drops: string[] = []
    for (const x of prepared) {
      const key = s.keys.fullOf(x.k)
      if (x.bytes === undefined) drops.push(key)
      else writes.push({ key, value: x.bytes, ttlMs: x.entry.staleUntil - now })
    }
    if (drops.length > 0) await l2.span('del', () => l2.driver.delete(drops))
    if (writes.length === 0) return
    const one = writes.length === 1 ? (writes[0] as L2SetItem) : undefined
    await l2.span('set', () =>
      one ? l2.driver.set(one.key, one.value, one.ttlMs) : l2.driver.setMany(writes),
    )
  }

  async #delete(keys: readonly string[], persist?: Persist): Promise<void> {
    const s = this.#s
    const unique = [...new Set(keys)]
    if (unique.length === 0) return
    if (persist) await persist(this.#loaders.nextVersion(s.o.clock.now()))
    this.#local.keys(unique)
    let failure: unknown
    const l2 = this.#l2
    if (l2) {
      try {
        await l2.span('del', () => l2.driver.delete(unique.map((k) => s.keys.fullOf(k))))
      } catch (err) {
        failure = err
      }
    }
    await ifTaken(this.#bus.publishKeys('delete', unique), failure)
    if (failure !== undefined) {
      this.#repair?.keys(unique)
      throw s.l2Failure(failure, 'delete', unique.length === 1 ? unique[0] : undefined)
    }
    this.#repair?.done(unique)
    if (s.events.has.delete) s.events.emit('delete', { keys: unique.map((k) => s.keys.fullOf(k)) })
  }

  async #expire(keys: readonly string[]): Promise<void> {
    const s = this.#s
    const unique = [...new Set(keys)]
    // Without L2, this replica's own copy is what stays for grace.
    const own = this.#l2 ? undefined : unique.map((k) => this.#l1?.stale(k))
    await this.#keyWrite(
      unique,
      'expire',
      (l2) => l2.span('expire', () => l2.expire(unique)),
      async (l1, start, fromL2) => {
        const kept = fromL2 ?? own ?? []
        const now = s.o.clock.now()
        unique.forEach((k, i) => {
          const e = kept[i]
          if (e)
            l1.fill(k, { ...e, freshUntil: Math.min(e.freshUntil, now) }, start, undefined, false)
        })
      },
      () => unique,
    )
  }

  async #tags(tags: readonly string[]): Promise<void> {
    const s = this.#s
    const l2 = this.#l2
    if (l2 && !l2.driver.tags) {
      throw new CacheError(
        errors.E_UNSUPPORTED,
        `[core] the ${l2.driver.name} driver does not keep tag versions`,
      )
    }
    // Invalidate locally before and after the L2 bump: fills racing either side are discarded.
    this.#local.tags(tags)
    let failure: unknown
    try {
      if (l2) await l2.span('tags', () => l2.bumpTags(tags))
    } catch (err) {
      failure = err
    }
    this.#local.tags(tags)
    await ifTaken(this.#bus.publish({ op: 'tags', tags }), failure)
    if (failure !== undefined) {
      // Until the bump lands, peers reading L2 would accept entries under the old versions.
      this.#repair?.tags(tags)
      throw s.l2Failure(failure, 'invalidateTags')
    }
  }

  async #clear(prefixes: readonly string[], namespace: boolean): Promise<void> {
    const s = this.#s
    const local = prefixes.map((p) => s.keys.l1PrefixOf(p) ?? p)
    // Clear locally before and after L2: fills racing either side are discarded.
    this.#local.clear(local)
    let failure: unknown
    const l2 = this.#l2
    if (l2) {
      try {
        for (const p of prefixes) await l2.driver.clear(p)
      } catch (err) {
        failure = err
      }
    }
    this.#local.clear(local)
    await ifTaken(
      this.#bus.publish({ op: namespace ? 'clear-namespace' : 'clear', prefixes }),
      failure,
    )
    if (failure !== undefined) {
      this.#repair?.prefixes(prefixes)
      throw s.l2Failure(failure, 'clear')
    }
  }
}

/**
 * What a write waits for after its L2 part: when L2 took it, the first attempt to tell
 * the peers (bounded by the bus's publish timeout); when L2 failed, nothing — the write
 * rejects at once while its invalidation still goes out (retried in order), so a failing
 * write lasts no longer than its L2 steps' timeouts. The publisher never rejects.
 */
function ifTaken(sent: Promise<void>, failure: unknown): Promise<void> | undefined {
  return failure === undefined ? sent : undefined
}
