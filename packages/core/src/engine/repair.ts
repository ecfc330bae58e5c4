import type { Shared } from './shared.js'
import type { L2Tier } from './l2.js'
import type { Invalidation } from './invalidation.js'
import type { BusLink } from './bus-link.js'

/**
 * L2 repair. A write whose L2 part failed (Redis down or timing out) leaves old state in
 * L2 that peers would read back: the old value of a key, a tag version that was never
 * bumped, keys a clear did not reach. Each is redone in the background once Redis
 * answers (backoff 100 ms → 5 s with jitter; a bounded queue): keys are deleted, tags
 * bumped, prefixes cleared, and every repair is published so peers drop what they read
 * meanwhile. A later successful write of a key cancels its repair.
 */
export class Repair {
  readonly #s: Shared
  readonly #l2: L2Tier
  readonly #local: Invalidation
  readonly #bus: BusLink
  readonly #keys = new Set<string>()
  readonly #tags = new Set<string>()
  readonly #prefixes = new Set<string>()
  #timer: ReturnType<Shared['o']['clock']['setTimeout']> | undefined
  #delay = 100
  #running = false
  static readonly max = 100_000

  constructor(shared: Shared, l2: L2Tier, local: Invalidation, bus: BusLink) {
    this.#s = shared
    this.#l2 = l2
    this.#local = local
    this.#bus = bus
  }

  get pending(): number {
    return this.#keys.size + this.#tags.size + this.#prefixes.size
  }

  keys(keys: readonly string[]): void {
    this.#add(this.#keys, keys)
  }

  tags(tags: readonly string[]): void {
    this.#add(this.#tags, tags)
  }

  prefixes(prefixes: readonly string[]): void {
    this.#add(this.#prefixes, prefixes)
  }

  /** Keys a successful write just made right. */
  done(keys: readonly string[]): void {
    if (this.#keys.size === 0) return
    for (const k of keys) this.#keys.delete(k)
  }

  #add(set: Set<string>, items: readonly string[]): void {
    for (const item of items) {
      if (this.pending >= Repair.max) {
        this.#s.report(
          new Error('the L2 repair queue is full: stale L2 state may stay until its TTL'),
          'l2.repair',
        )
        break
      }
      set.add(item)
    }
    this.#arm()
  }

  /**
   * Redis answers again (the bus resynced): repair now instead of waiting out a backoff
   * grown during the outage. Until the repair lands, other replicas read the old value.
   */
  kick(): void {
    this.#delay = 100
    if (this.#running || this.pending === 0) return
    if (this.#timer !== undefined) this.#s.o.clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#arm()
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#running || this.#s.closed || this.pending === 0) return
    const delay = this.#delay * (0.5 + Math.random())
    this.#timer = this.#s.o.clock.setTimeout(() => {
      this.#timer = undefined
      void this.#run()
    }, delay)
    this.#timer.unref?.()
  }

  async #run(): Promise<void> {
    const s = this.#s
    const l2 = this.#l2.driver
    this.#running = true
    try {
      const prefixes = [...this.#prefixes]
      for (const p of prefixes) {
        await l2.clear(p)
        this.#prefixes.delete(p)
      }
      if (prefixes.length > 0) {
        const local = prefixes.map((p) => s.keys.l1PrefixOf(p) ?? p)
        this.#local.clear(local)
        await this.#bus.publish({ op: 'clear', prefixes })
      }
      const tags = [...this.#tags].slice(0, 1_000)
      if (tags.length > 0) {
        await this.#l2.bumpTags(tags)
        for (const t of tags) this.#tags.delete(t)
        this.#local.tags(tags)
        await this.#bus.publish({ op: 'tags', tags })
      }
      const keys = [...this.#keys].slice(0, 1_000)
      if (keys.length > 0) {
        await l2.delete(keys.map((k) => s.keys.fullOf(k)))
        for (const k of keys) this.#keys.delete(k)
        this.#local.keys(keys)
        await this.#bus.publishKeys('delete', keys)
      }
      this.#delay = 100
    } catch {
      this.#delay = Math.min(this.#delay * 2, 5_000)
    }
    this.#running = false
    this.#arm()
  }

  close(): void {
    if (this.#timer !== undefined) this.#s.o.clock.clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.pending > 0) {
      this.#s.report(new Error(`${this.pending} L2 repairs were still pending at close`), 'close')
    }
  }
}
