import { asyncCacheDedupe } from './async-cache-dedupe.js'
import { bentocache } from './bentocache.js'
import { raw } from './raw.js'
import { strata } from './strata.js'
import type { AdapterFactory, Mode } from './types.js'

export interface Contender {
  id: string
  /** Loads @redis/client (through @keyv/redis): must run in its own process. */
  isolated: boolean
  modes: Mode[]
  /** Only getOrSet-shaped operations (no plain get/set). */
  getOrSetOnly?: boolean
  /** Lowest Node major version it runs on. */
  minNode?: number
  load(): Promise<AdapterFactory>
}

export const CONTENDERS: Contender[] = [
  { id: 'strata', isolated: false, modes: ['l1', 'l2', 'tiered'], load: async () => strata },
  {
    id: 'strata-tinylfu',
    isolated: false,
    modes: ['l1'],
    load: async () => (await import('./strata.js')).strataTinyLfu,
  },
  { id: 'raw', isolated: false, modes: ['l1', 'l2', 'tiered'], load: async () => raw },
  {
    id: 'bentocache',
    isolated: false,
    modes: ['l1', 'l2', 'tiered'],
    load: async () => bentocache,
  },
  {
    id: 'cacheable',
    isolated: true,
    modes: ['l1', 'l2', 'tiered'],
    load: async () => (await import('./cacheable.js')).cacheable,
  },
  {
    id: 'cache-manager',
    isolated: true,
    modes: ['l1', 'l2', 'tiered'],
    load: async () => (await import('./cache-manager.js')).cacheManager,
  },
  {
    id: 'async-cache-dedupe',
    isolated: false,
    modes: ['l1'],
    getOrSetOnly: true,
    load: async () => asyncCacheDedupe,
  },
  {
    id: 'layered-loader',
    isolated: false,
    modes: ['l1', 'l2', 'tiered'],
    load: async () => (await import('./layered-loader.js')).layeredLoader,
  },
]

/** Whether this Node can run the contender (none needs more than Node 20 today). */
export function runnable(c: Contender): boolean {
  return Number(process.versions.node.split('.')[0]) >= (c.minNode ?? 0)
}

export function contender(id: string): Contender {
  const c = CONTENDERS.find((x) => x.id === id)
  if (!c) throw new Error(`unknown contender ${id}`)
  return c
}

export type { CacheAdapter, Mode, AdapterOptions } from './types.js'
