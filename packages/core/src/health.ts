import type { BusState, L2Health } from './contracts.js'

/**
 * `cache.health()`. What the states mean for staleness (docs/health-and-logging.md#health):
 *
 * - `ok`: L2 answers, the bus is connected, nothing to repair: a write elsewhere reaches
 *   this replica's L1 within the bus propagation bound.
 * - `degraded`: the bus is connecting or degraded (L1 copies are cleared or live at most
 *   `degradedL1Ttl`), the L2 breaker is half-open, or failed L2 writes are still to be
 *   repaired: answers stay correct within the degraded-mode bound, the cache is slower.
 * - `down`: L2 does not answer (PING failed or the breaker is open) or the cache is
 *   closed: reads come from L1 and the loader, nothing is shared between replicas.
 */
export interface CacheHealth {
  status: 'ok' | 'degraded' | 'down'
  /** Undefined without an L2. */
  l2: L2Health | undefined
  /** `since`: when the bus entered this state (ms since the epoch); `reason`: why. */
  bus: { state: BusState | 'none'; since: number; reason: string }
  pendingRepairs: number
  /** Repositories with write-behind: the fleet's queue depth and oldest write, dead letters here. */
  writeQueue: { pending: number; oldestPendingAgeMs: number; deadLettered: number } | undefined
}
