import type { Cache, RepositoryStats } from '@strata/core'
import { redisBloomGuard } from '@strata/l2-redis'
import { redisStreamsWriteBehind } from '@strata/write-behind-redis-streams'
import type { Redis } from 'ioredis'
import type { Catalog, Product } from './catalog.js'

export type Patch = { name?: string; priceCents?: number; stock?: number }

/** How the service reads and writes products: cache-aside (default) or a write-behind repository. */
export interface Products {
  find(id: number): Promise<Product | null>
  findMany(ids: number[]): Promise<(Product | null)[]>
  update(id: number, patch: Patch): Promise<Product | null>
  remove(id: number): Promise<boolean>
  /** The products repository's figures: write queue (write-behind) and guard. */
  repository(): RepositoryStats
}

/**
 * Reads are read-through a `products` repository with a Bloom-filter guard: requests for
 * ids that cannot exist never reach the database.
 */
function readThrough(catalog: Catalog) {
  return {
    tags: ['products'],
    load: (id: string) => catalog.find(Number(id)),
    loadMany: async (ids: string[]) => {
      const rows = await catalog.findMany(ids.map(Number))
      return new Map([...rows].map(([id, p]) => [String(id), p]))
    },
    guard: redisBloomGuard({
      expectedItems: 100_000,
      falsePositiveRate: 0.01,
      ids: () => catalog.allIds(),
      settle: '1s',
    }),
  }
}

/**
 * Cache-aside writes: the database first, then `delete()` tells every replica to drop its
 * copy. Reads go through the repository (read-through with the guard).
 */
export function cacheAside(cache: Cache, catalog: Catalog): Products {
  const repo = cache.repository<Product>('products', readThrough(catalog))
  const products = cache.namespace('products')
  return {
    find: (id) => repo.get(`${id}`),
    findMany: (ids) => repo.getMany(ids.map(String)),
    async update(id, patch) {
      const updated = await catalog.update(id, patch)
      await products.delete(`${id}`)
      return updated
    },
    async remove(id) {
      const removed = await catalog.remove(id)
      await products.delete(`${id}`)
      return removed
    },
    repository: () => repo.stats(),
  }
}

/**
 * `--write-behind`: a repository whose writes land in every cache tier and a durable
 * Redis Stream at once; every replica's worker persists them to the database in
 * coalesced batches (`Catalog.saveMany`, which ignores versions it already holds).
 */
export function writeBehind(cache: Cache, catalog: Catalog, redis: Redis): Products {
  const repo = cache.repository<Product>('products', {
    ...readThrough(catalog),
    saveMany: (items) => catalog.saveMany(items),
    write: redisStreamsWriteBehind({ redis, batchSize: 200, flushInterval: '250ms' }),
  })
  return {
    find: (id) => repo.get(`${id}`),
    findMany: (ids) => repo.getMany(ids.map(String)),
    async update(id, patch) {
      // Read-modify-write on the newest value (a pending write wins over the database).
      const current = await repo.get(`${id}`)
      if (!current) return null
      const next = { ...current, ...patch, updatedAt: new Date().toISOString() }
      await repo.set(`${id}`, next)
      return next
    },
    async remove(id) {
      // Deletes stay synchronous in this example (the repository has no remove()).
      const removed = await catalog.remove(id)
      await cache.namespace('products').delete(`${id}`)
      return removed
    },
    repository: () => repo.stats(),
  }
}
