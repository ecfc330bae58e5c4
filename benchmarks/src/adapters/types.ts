export type Mode = 'l1' | 'l2' | 'tiered'

export interface AdapterOptions {
  mode: Mode
  redisUrl: string
  /** Unique per instance so contenders never share keys. */
  prefix: string
  /** L1 bound in entries (hit-ratio, memory). @default 100_000 */
  maxEntries?: number
}

/** The one interface every contender is measured through. */
export interface CacheAdapter {
  readonly name: string
  get(key: string): Promise<unknown>
  getOrSet(key: string, load: () => Promise<unknown>): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
  delete(key: string): Promise<void>
  getMany?(keys: string[]): Promise<unknown[]>
  /** Resolves once cross-replica invalidation is live (bus subscribed). */
  ready?(): Promise<void>
  close(): Promise<void>
}

export type AdapterFactory = (o: AdapterOptions) => Promise<CacheAdapter>
