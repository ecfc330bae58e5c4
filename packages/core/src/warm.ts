import { invalidOption } from './errors.js'
import type { BatchLoader } from './engine/loader.js'
import type { EntryOptions } from './call.js'

export interface WarmOptions<V = unknown> {
  /** Loads the keys missing from L1 and L2 (one call per batch); keys it leaves out are "not found". */
  loadMany: BatchLoader<V | null>
  /** Keys per batch (one L2 read and at most one `loadMany` call each). @default 100 */
  batchSize?: number
  /** Batches in flight at once. @default 4 */
  concurrency?: number
  /** Stops scheduling batches (those in flight finish); the result says `cancelled`. */
  signal?: AbortSignal
  onProgress?: (progress: WarmResult) => void
  /** Entry options for what is loaded (ttl, tags, …). */
  options?: EntryOptions
}

export interface WarmResult {
  /** Keys found fresh in L1 or L2 (not loaded). */
  alreadyCached: number
  /** Keys loaded and cached. */
  loaded: number
  /** Keys the loader did not return (cached as "not found"). */
  notFound: number
  /** Keys of batches that failed (loader or L2 error). */
  failed: number
  cancelled: boolean
}

type GetOrSetMany = (
  keys: readonly string[],
  loader: BatchLoader<unknown>,
  options?: EntryOptions,
) => Promise<unknown[]>

/**
 * Cache warming: keys in batches, each through `getOrSetMany` — one L1 pass, one L2 read
 * (per slot), one `loadMany` call for what is missing, guarded fills (leases respected,
 * a concurrent delete is never undone) and no bus message (a fill is not a write).
 */
export async function warm<V>(
  getOrSetMany: GetOrSetMany,
  keys: Iterable<string> | AsyncIterable<string>,
  o: WarmOptions<V>,
): Promise<WarmResult> {
  const batchSize = o.batchSize ?? 100
  const concurrency = o.concurrency ?? 4
  if (typeof (o as Partial<WarmOptions<V>>).loadMany !== 'function') {
    throw invalidOption('core', 'warm: loadMany', 'must be a function')
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw invalidOption('core', 'warm: batchSize', 'must be an integer in [1, 10000]')
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw invalidOption('core', 'warm: concurrency', 'must be an integer in [1, 64]')
  }
  const result: WarmResult = {
    alreadyCached: 0,
    loaded: 0,
    notFound: 0,
    failed: 0,
    cancelled: false,
  }
  const one = async (batch: string[]): Promise<void> => {
    let missing = 0
    let found = 0
    const loader: BatchLoader<unknown> = async (keys, ctx) => {
      missing = keys.length
      const map = await o.loadMany(keys, ctx)
      for (const k of keys) if (map.get(k) != null) found++
      return map
    }
    try {
      await getOrSetMany(batch, loader, o.options)
      result.alreadyCached += batch.length - missing
      result.loaded += found
      result.notFound += missing - found
    } catch {
      result.failed += batch.length
    }
    o.onProgress?.({ ...result })
  }
  const running = new Set<Promise<void>>()
  let batch: string[] = []
  const flush = async () => {
    const b = [...new Set(batch)]
    batch = []
    const p = one(b).finally(() => running.delete(p))
    running.add(p)
    if (running.size >= concurrency) await Promise.race(running)
  }
  for await (const key of keys) {
    if (o.signal?.aborted) {
      result.cancelled = true
      break
    }
    batch.push(key)
    if (batch.length >= batchSize) await flush()
  }
  if (batch.length > 0 && !result.cancelled) await flush()
  await Promise.all(running)
  return result
}
