import type { L1Tier } from './l1.js'
import type { FailSafe } from './fail-safe.js'
import type { Shared } from './shared.js'

/**
 * Local invalidation, the same for this replica's writes, bus messages, repairs and
 * gaps: record it in the fill guard (so racing fills are discarded), drop the L1 copies,
 * end any fail-safe backoff of the keys.
 */
export class Invalidation {
  readonly #s: Shared
  readonly #l1: L1Tier | undefined
  readonly #failSafe: FailSafe

  constructor(shared: Shared, l1: L1Tier | undefined, failSafe: FailSafe) {
    this.#s = shared
    this.#l1 = l1
    this.#failSafe = failSafe
  }

  /** Returns the epoch of this invalidation (a local write fills L1 only if nothing came after it). */
  keys(keys: readonly string[]): number {
    const epoch = this.#s.guard.keys(keys)
    this.#l1?.delete(keys)
    this.#failSafe.forget(keys)
    return epoch
  }

  tags(tags: readonly string[]): void {
    if (this.#s.guard.tags(tags)) this.#l1?.clear([''])
    this.#failSafe.forget(undefined)
  }

  /** L1 prefixes; `''` clears everything (also used for bus gaps). */
  clear(prefixes: readonly string[]): void {
    this.#s.guard.broad()
    this.#l1?.clear(prefixes)
    this.#failSafe.forget(undefined)
  }
}
