import { engineOf, type Cache } from '../cache.js'
import type { EngineHooks } from '../engine/index.js'

/**
 * Deterministic race hooks for tests: awaited at the points where a race can slip in
 * (after an L2 read before the L1 fill, after a load before the L2 fill, after a local
 * write's L2 reply before its L1 write). `undefined` removes them.
 */
export function setTestHooks(cache: Cache, hooks: EngineHooks | undefined): void {
  engineOf(cache).s.hooks = hooks
}
