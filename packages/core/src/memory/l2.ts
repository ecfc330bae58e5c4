import { systemClock } from '../clock.js'
import { v8Codec } from '../codec.js'
import { toMs, type Duration } from '../duration.js'
import type {
  Clock,
  Codec,
  L2Driver,
  L2Locks,
  L2Leases,
  L2FillItem,
  L2ReadResult,
  L2SetItem,
  L2Tags,
} from '../contracts.js'

export interface MemoryL2Options {
  /** @default v8Codec (exact round-trips; in-process only) */
  codec?: Codec
  clock?: Clock
  /** How long a lease (guarded fill token) stays valid. @default '30s' */
  leaseTtl?: Duration
}

interface Stored {
  value: Uint8Array
  expiresAt: number
}

/**
 * Shared-tier driver kept in this process's memory: the embedded default for
 * single-process use and for core's own tests. Several caches given the same instance
 * behave like replicas sharing one Redis (values are stored as bytes, so nothing is
 * shared by reference). It implements every optional capability (leases, tags, locks)
 * with the same semantics the Redis driver gives them.
 */
export class MemoryL2 implements L2Driver {
  readonly name = 'memory-l2'
  readonly codec: Codec
  readonly leases: L2Leases
  readonly tags: L2Tags
  readonly locks: L2Locks
  readonly #clock: Clock
  readonly #data = new Map<string, Stored>()
  readonly #leases = new Map<string, { token: string; expiresAt: number }>()
  readonly #tagVersions = new Map<string, number>()
  #lastTagVersion = 0
  readonly #locks = new Map<string, { token: string; expiresAt: number }>()
  readonly #leaseTtl: number
  #tokenSeq = 0

  constructor(options: MemoryL2Options = {}) {
    this.codec = options.codec ?? v8Codec
    this.#clock = options.clock ?? systemClock
    this.#leaseTtl = toMs(options.leaseTtl, 'leaseTtl', 'memory-l2') ?? 30_000
    this.leases = {
      getManyWithLease: (keys) => Promise.resolve(keys.map((k) => this.#getWithLease(k))),
      leaseMany: (keys) => Promise.resolve(keys.map((k) => this.#lease(k))),
      fillMany: (items) => Promise.resolve(items.map((i) => this.#fill(i, false))),
      replaceMany: (items) => Promise.resolve(items.map((i) => this.#fill(i, true))),
    }
    this.tags = {
      versions: (tags) => Promise.resolve(tags.map((t) => this.#tagVersion(t))),
      bump: (tags) => {
        for (const t of tags)
          this.#tagVersions.set(t, this.#newTagVersion(this.#tagVersions.get(t) ?? 0))
        return Promise.resolve()
      },
    }
    this.locks = {
      tryAcquire: (key, ttlMs, want) => {
        const now = this.#clock.now()
        const held = this.#locks.get(key)
        if (held && held.expiresAt > now) {
          if (want === undefined || held.token !== want) return Promise.resolve(undefined)
          held.expiresAt = now + ttlMs // the caller's own lock: its lifetime starts again
          return Promise.resolve(want)
        }
        const token = want ?? `l${++this.#tokenSeq}`
        this.#locks.set(key, { token, expiresAt: now + ttlMs })
        return Promise.resolve(token)
      },
      extend: (key, token, ttlMs) => {
        const held = this.#locks.get(key)
        if (held?.token !== token || held.expiresAt <= this.#clock.now())
          return Promise.resolve(false)
        held.expiresAt = this.#clock.now() + ttlMs
        return Promise.resolve(true)
      },
      release: (key, token) => {
        if (this.#locks.get(key)?.token === token) this.#locks.delete(key)
        return Promise.resolve()
      },
    }
  }

  #read(key: string): Uint8Array | undefined {
    const s = this.#data.get(key)
    if (!s) return undefined
    if (s.expiresAt <= this.#clock.now()) {
      this.#data.delete(key)
      return undefined
    }
    return s.value
  }

  #write(key: string, value: Uint8Array, ttlMs: number): void {
    // A write revokes outstanding leases: a slower fill must not overwrite it.
    this.#leases.delete(key)
    if (ttlMs <= 0) {
      this.#data.delete(key)
      return
    }
    this.#data.set(key, { value: value.slice(), expiresAt: this.#clock.now() + ttlMs })
  }

  /** Like the Redis driver: a version above every one issued before, from the clock. */
  #newTagVersion(current: number): number {
    const v = Math.max(current + 1, this.#clock.now() * 1000, this.#lastTagVersion + 1)
    this.#lastTagVersion = v
    return v
  }

  #tagVersion(tag: string): number {
    let v = this.#tagVersions.get(tag)
    if (v === undefined) this.#tagVersions.set(tag, (v = this.#newTagVersion(0)))
    return v
  }

  #getWithLease(key: string): L2ReadResult {
    const value = this.#read(key)
    if (value !== undefined) return { value }
    return { value, token: this.#lease(key) }
  }

  #lease(key: string): string {
    const now = this.#clock.now()
    let lease = this.#leases.get(key)
    if (!lease || lease.expiresAt <= now) {
      lease = { token: `t${++this.#tokenSeq}`, expiresAt: now + this.#leaseTtl }
      this.#leases.set(key, lease)
    }
    return lease.token
  }

  /** `end`: the lease ends with the write (`replaceMany`). */
  #fill(item: L2FillItem, end: boolean): boolean {
    const lease = this.#leases.get(item.key)
    if (lease?.token !== item.token || lease.expiresAt <= this.#clock.now()) return false
    this.#write(item.key, item.value, item.ttlMs)
    // Concurrent missers share the token: the lease stays for them (a write revokes it).
    if (!end) this.#leases.set(item.key, lease)
    return true
  }

  /** Raw access for tests: what a Redis restarted without persistence would hold (nothing). */
  flushAll(): void {
    this.#data.clear()
    this.#leases.clear()
    this.#tagVersions.clear()
    this.#locks.clear()
  }

  /** Number of live lease records (tests: leases are taken on misses only). */
  get leaseCount(): number {
    return this.#leases.size
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#read(key))
  }

  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return Promise.resolve(keys.map((k) => this.#read(k)))
  }

  set(key: string, value: Uint8Array, ttlMs: number): Promise<void> {
    this.#write(key, value, ttlMs)
    return Promise.resolve()
  }

  setMany(items: readonly L2SetItem[]): Promise<void> {
    for (const i of items) this.#write(i.key, i.value, i.ttlMs)
    return Promise.resolve()
  }

  delete(keys: readonly string[]): Promise<number> {
    let n = 0
    for (const k of keys) {
      this.#leases.delete(k)
      if (this.#read(k) !== undefined) n++
      this.#data.delete(k)
    }
    return Promise.resolve(n)
  }

  clear(prefix: string): Promise<void> {
    for (const k of [...this.#data.keys()]) if (k.startsWith(prefix)) this.#data.delete(k)
    for (const k of [...this.#leases.keys()]) if (k.startsWith(prefix)) this.#leases.delete(k)
    return Promise.resolve()
  }

  /** Raw access for tests: write bytes as another (possibly hostile) writer would. */
  rawSet(key: string, value: Uint8Array, ttlMs = 60_000): void {
    this.#data.set(key, { value, expiresAt: this.#clock.now() + ttlMs })
  }

  get keyCount(): number {
    return this.#data.size
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

export function memoryL2(options?: MemoryL2Options): MemoryL2 {
  return new MemoryL2(options)
}
