import type { L2Driver } from './contracts.js'

/**
 * The contract between a repository (core) and a penetration guard (a membership filter
 * such as `redisBloomGuard` in `@strata/l2-redis`). On a miss in every tier, before the
 * loader, core asks the guard whether the id might exist; "definitely not" becomes a
 * "not found" result (negative-cached as usual) without calling the loader. Repository
 * writes add the id before the write is published, so a replica that hears of a new id
 * never rejects it. A guard fails open: any error or a missing filter answers "might".
 */

export interface GuardStats {
  /** Ids checked on a full miss. */
  checked: number
  /** Ids answered "definitely absent" (the loader was not called). */
  rejected: number
  /** Checks answered "might" because the filter was missing or unreachable. */
  failOpen: number
  /** Ids added by this replica's writes. */
  added: number
  /** Share of the filter's bits set, as last sampled (0–1). */
  fillRatio: number
  /** The false-positive rate the fill ratio implies (fillRatio ^ hashes). */
  estimatedFalsePositiveRate: number
  /** Rebuilds this replica ran. */
  rebuilds: number
  /** The last rebuild this replica ran, if any. */
  lastRebuild: RebuildReport | undefined
}

export interface RebuildReport {
  ids: number
  ms: number
  /** When it finished (ms since the epoch). */
  at: number
}

export interface GuardBinding {
  readonly repository: string
  readonly prefix: string
  /** The cache's L2 driver (a guard may share its connection). */
  readonly l2: L2Driver | undefined
  /** Reports a guard error (the cache's `error` event); the guard fails open. */
  report(error: unknown, operation: string): void
}

export interface BoundGuard {
  /** `false` = definitely absent. Never rejects: errors answer `true` (fail-open). */
  mightContain(ids: readonly string[]): Promise<boolean[]>
  /** Adds ids (before their write is published). Rejects only if the filter could not be updated. */
  add(ids: readonly string[]): Promise<void>
  /** Rebuilds the filter from the source's ids into a new key and swaps it in atomically. */
  rebuild(options?: { onProgress?: (ids: number) => void }): Promise<RebuildReport>
  stats(): GuardStats
  close(): Promise<void>
}

/** A penetration guard (the value of a repository's `guard` option). */
export interface Guard {
  readonly kind: 'guard'
  bind(binding: GuardBinding): BoundGuard
}
