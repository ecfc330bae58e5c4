import type { L1Entry } from '../contracts.js'

/**
 * Invalidation epochs (design §6.1). Every invalidation this process learns of (its own
 * writes, bus messages, tag invalidations, clears, bus gaps) bumps the epoch. A fill
 * records the epoch when it starts and is discarded if its key, one of its tags, or
 * everything was invalidated after that. Per-key records exist only while a fill of that
 * key is in flight, so memory is bounded by concurrency, not by the keyspace.
 */
export class FillGuard {
  #epoch = 0
  /** Highest epoch of any tag invalidation; L1 entries with `gen >= tagFloor` skip tag checks. */
  tagFloor = 0
  readonly #tagEpoch = new Map<string, number>()
  /** Epoch of the last clear / namespace clear / bus gap (discards every older fill). */
  #broadEpoch = 0
  readonly #pending = new Map<string, { count: number; invalidatedAt: number }>()
  static readonly maxTags = 100_000

  get epoch(): number {
    return this.#epoch
  }

  /** Starts a guarded fill of `key`; pair with `end`. Returns the start epoch. */
  begin(key: string): number {
    const p = this.#pending.get(key)
    if (p) p.count++
    else this.#pending.set(key, { count: 1, invalidatedAt: 0 })
    return this.#epoch
  }

  end(key: string): void {
    const p = this.#pending.get(key)
    if (p && --p.count === 0) this.#pending.delete(key)
  }

  /** False when `key` (or one of `tags`, or everything) was invalidated after epoch `start`. */
  allowed(key: string, tags: readonly string[], start: number): boolean {
    if (this.#broadEpoch > start) return false
    const p = this.#pending.get(key)
    if (p && p.invalidatedAt > start) return false
    for (const t of tags) {
      const at = this.#tagEpoch.get(t)
      if (at !== undefined && at > start) return false
    }
    return true
  }

  /** Valid with respect to the tag invalidations this process knows of. */
  tagsValid(e: L1Entry): boolean {
    if (e.gen >= this.tagFloor) return true
    for (const t of e.tags) {
      const at = this.#tagEpoch.get(t)
      if (at !== undefined && at > e.gen) return false
    }
    return true
  }

  /** Records an invalidation of `keys`; returns the new epoch. */
  keys(keys: readonly string[]): number {
    const epoch = ++this.#epoch
    for (const k of keys) {
      const p = this.#pending.get(k)
      if (p) p.invalidatedAt = epoch
    }
    return epoch
  }

  /** Records a tag invalidation; returns true when the table overflowed (caller clears L1). */
  tags(tags: readonly string[]): boolean {
    const epoch = ++this.#epoch
    for (const t of tags) this.#tagEpoch.set(t, epoch)
    this.tagFloor = epoch
    if (this.#tagEpoch.size <= FillGuard.maxTags) return false
    this.#tagEpoch.clear()
    this.broad()
    return true
  }

  /** Records a clear / gap: every fill that started before it is discarded. */
  broad(): void {
    this.#broadEpoch = ++this.#epoch
  }
}
