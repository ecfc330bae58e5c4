import { EventEmitter } from 'node:events'
import { createHash } from 'node:crypto'
import { invalidOption, toMs, type Cache, type Duration } from '@strata/core'

export interface KeyvStrataOptions {
  /**
   * Keyv's "no expiry" is a TTL this long in Strata (every Strata entry has one).
   * @default '30d'
   */
  maxTtl?: Duration
  /** `disconnect()` closes the Strata cache too (by default the cache stays yours). @default false */
  closeOnDisconnect?: boolean
}

const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * A Keyv storage adapter over a Strata cache: `new Keyv({ store: new KeyvStrata(cache) })`
 * gives Keyv, cache-manager and NestJS's CacheModule an L1 per replica, the shared L2 and
 * cross-replica invalidation. Each Keyv namespace is a Strata namespace, so `clear()` only
 * clears its own keys. What Keyv's API cannot carry (tags, grace, timeouts, stampede
 * options) stays on `cache`: see docs/keyv.md.
 */
export class KeyvStrata extends EventEmitter {
  readonly cache: Cache
  /** Set by Keyv. */
  namespace: string | undefined
  readonly opts: { maxTtl: number; closeOnDisconnect: boolean; dialect: 'strata' }

  constructor(cache: Cache, options: KeyvStrataOptions = {}) {
    super()
    if (typeof (cache as Partial<Cache> | undefined)?.namespace !== 'function') {
      throw invalidOption('keyv', 'cache', 'must be a Strata cache (createCache())')
    }
    this.cache = cache
    const maxTtl = toMs(options.maxTtl, 'maxTtl', 'keyv') ?? 30 * 86_400_000
    if (maxTtl <= 0) throw invalidOption('keyv', 'maxTtl', 'must be greater than 0')
    this.opts = { maxTtl, closeOnDisconnect: options.closeOnDisconnect ?? false, dialect: 'strata' }
  }

  /** The Strata namespace of the current Keyv namespace (names Strata refuses are hashed). */
  #view(): Cache {
    const ns = this.namespace ?? 'keyv'
    const name = NAMESPACE.test(ns)
      ? ns
      : `h.${createHash('sha256').update(ns).digest('hex').slice(0, 32)}`
    return this.cache.namespace(name)
  }

  #ttl(ttl: number | undefined): number {
    return typeof ttl === 'number' && ttl > 0 ? Math.min(ttl, this.opts.maxTtl) : this.opts.maxTtl
  }

  async get<Value>(key: string): Promise<Value | undefined> {
    return this.#view().get<Value>(key)
  }

  async getMany<Value>(keys: string[]): Promise<(Value | undefined)[]> {
    // Dense: Keyv walks the result with for…in, which skips holes.
    return Array.from(await this.#view().getMany<Value>(keys))
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.#view().set(key, value, { ttl: this.#ttl(ttl) })
    return true
  }

  async setMany(values: { key: string; value: unknown; ttl?: number }[]): Promise<void> {
    await this.#view().setMany(
      values.map((v) => ({ key: v.key, value: v.value, options: { ttl: this.#ttl(v.ttl) } })),
    )
  }

  async has(key: string): Promise<boolean> {
    return (await this.#view().get(key)) !== undefined
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.#view().getMany(keys)).map((v) => v !== undefined)
  }

  /** Deletes everywhere (every replica drops its copy); true when the key existed. */
  async delete(key: string): Promise<boolean> {
    const view = this.#view()
    const existed = (await view.get(key)) !== undefined
    await view.delete(key)
    return existed
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    const view = this.#view()
    const existed = (await view.getMany(keys)).some((v) => v !== undefined)
    await view.deleteMany(keys)
    return existed
  }

  /** Clears this Keyv namespace in every tier and on every replica. */
  async clear(): Promise<void> {
    await this.#view().clear()
  }

  async disconnect(): Promise<void> {
    if (this.opts.closeOnDisconnect) await this.cache.close()
  }
}
