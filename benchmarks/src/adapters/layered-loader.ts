// layered-loader needs Node 22+: only loaded when the runtime allows it.
import { Loader } from 'layered-loader'
import type { AdapterFactory } from './types.js'

/** In-memory layer only; its data source is whatever the current getOrSet passes. */
export const layeredLoader: AdapterFactory = async ({ maxEntries }) => {
  let source: () => Promise<unknown> = () => Promise.resolve(null)
  const loader = new Loader<unknown>({
    inMemoryCache: { ttlInMsecs: 3_600_000, maxItems: maxEntries ?? 100_000 },
    dataSourceGetOneFn: () => source(),
  })
  return {
    name: 'layered-loader (memory)',
    get: (k) => loader.get(k),
    getOrSet: (k, load) => {
      source = load
      return loader.get(k)
    },
    set: (k, v) => loader.forceSetValue(k, v),
    delete: (k) => loader.invalidateCacheFor(k),
    close: () => Promise.resolve(),
  }
}
