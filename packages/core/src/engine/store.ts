import { CacheError } from '../errors.js'
import type { FailSafe } from './fail-safe.js'
import { over, type Flight, type Job } from './flight.js'
import type { L1Tier } from './l1.js'
import type { FillResult, L2Fill, L2Tier } from './l2.js'
import type { Loaded, Loaders } from './loader.js'
import type { Shared } from './shared.js'

/** A loaded key on its way to the tiers: its L2 fill item, and what became of the fill. */
interface StoreItem extends L2Fill {
  flight: Flight
  toL2: boolean
  result: FillResult | undefined
}

export interface StoreDeps {
  shared: Shared
  l1: L1Tier | undefined
  l2: L2Tier | undefined
  loaders: Loaders
  failSafe: FailSafe
}

/**
 * The last steps of every load: call the loader, store what it returned — L2 through
 * the lease first, then L1 unless L2 refused (a write overtook the load) — and settle
 * the flights. One copy, for getOrSet, getOrSetMany, refresh-ahead and the lock path.
 */
export class Store {
  readonly #s: Shared
  readonly #l1: L1Tier | undefined
  readonly #l2: L2Tier | undefined
  readonly #loaders: Loaders
  readonly #failSafe: FailSafe

  /** The read pipeline's own tiers, loaders and fail-safe. */
  constructor(deps: StoreDeps) {
    ;({
      shared: this.#s,
      l1: this.#l1,
      l2: this.#l2,
      loaders: this.#loaders,
      failSafe: this.#failSafe,
    } = deps)
  }

  /** Calls the loader for `todo`, stores what it returned (L2 then L1), settles the flights. */
  async run(job: Job, todo: readonly number[]): Promise<void> {
    const s = this.#s
    if (job.timedOut) return
    // Every key of the job (the usual case): its own arrays, nothing to pick.
    const all = todo.length === job.keys.length
    const keys = all ? job.keys : todo.map((j) => job.keys[j] as string)
    let loaded: (Loaded | CacheError)[]
    try {
      loaded = await this.#loaders.call(
        job.source,
        keys,
        all ? job.userKeys : todo.map((j) => job.userKeys[j] as string),
        job.p,
        (job.flights[todo[0] as number] as Flight).stale,
        job.signal,
      )
    } catch (err) {
      if (over(job)) return
      s.report(err, 'loader', keys.length === 1 ? keys[0] : undefined)
      for (const j of todo) this.#failSafe.fail(job, j, err, 'loader-error')
      return
    }
    // A loader that outlived its hard timeout still stores its value (its callers already
    // got the error or a stale value); after close, nothing is stored.
    if (job.closed) return
    // Each fill is also the L2 fill item (no second object per key).
    const fills: StoreItem[] = []
    for (let i = 0; i < todo.length; i++) {
      const j = todo[i] as number
      const r = loaded[i] as Loaded | CacheError
      const flight = job.flights[j] as Flight
      if (r instanceof CacheError) {
        flight.fail(r)
        continue
      }
      if (r.skip) {
        // ctx.skip(): the callers get the value, no tier stores it.
        const entry = this.#loaders.entry(r, job.p, undefined)
        flight.settle({ entry, tier: 'loader', stale: false })
        continue
      }
      const versions = r.tags.length > 0 ? await r.versions : undefined
      // An entry whose tag versions could not be read cannot be checked by peers: L1 only.
      const entry = this.#loaders.entry(r, job.p, versions)
      const key = job.keys[j] as string
      fills.push({
        key,
        entry,
        token: flight.token,
        start: flight.start,
        flight,
        toL2: r.tags.length === 0 || versions !== undefined,
        result: undefined,
      })
    }
    // Store: L2 through the leases, then L1 (not if L2 refused), then answer the callers.
    const l2 = this.#l2
    const toL2 = job.p.skipL2Write
      ? []
      : fills.every((f) => f.toL2)
        ? fills
        : fills.filter((f) => f.toL2)
    if (l2 && toL2.length > 0) {
      if (s.hooks?.beforeL2Fill) for (const f of toL2) await s.hooks.beforeL2Fill(f.key)
      const r = await l2.fill(toL2)
      for (let i = 0; i < toL2.length; i++) (toL2[i] as StoreItem).result = r[i]
    }
    for (const f of fills) {
      // A revoked lease means a write overtook this load: the value must not be served from L1 either.
      if (f.result !== 'revoked') {
        this.#l1?.fill(f.key, f.entry, f.start, job.p, true)
        if (s.events.has.fill)
          s.events.emit('fill', { key: s.keys.fullOf(f.key), l2: f.result === 'stored' })
      }
      f.flight.settle({ entry: f.entry, tier: 'loader', stale: false })
    }
    // A late value (after a hard timeout) ends the key's backoff: it is fresh now.
    if (over(job)) this.#failSafe.forget(fills.map((f) => f.key))
  }
}
