import { createCache } from 'async-cache-dedupe'
import type { AdapterFactory } from './types.js'

/** Memory storage only: it has no get/set of arbitrary keys, so only getOrSet-shaped scenarios use it. */
export const asyncCacheDedupe: AdapterFactory = async () => {
  let loader: () => Promise<unknown> = () => Promise.resolve(undefined)
  const cache = createCache({
    ttl: 3_600,
    storage: { type: 'memory', options: { size: 100_000 } },
  }).define('fetch', () => loader())
  const fetch = (cache as unknown as { fetch: (k: string) => Promise<unknown> }).fetch
  return {
    name: 'async-cache-dedupe (memory)',
    get: (k) => fetch(k),
    getOrSet: (k, load) => {
      loader = load
      return fetch(k)
    },
    set: () => Promise.resolve(),
    delete: async (k) => {
      await (cache as unknown as { clear: (name: string, k: string) => Promise<void> }).clear(
        'fetch',
        k,
      )
    },
    close: () => Promise.resolve(),
  }
}
