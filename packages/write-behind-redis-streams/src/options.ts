import { invalidOption, toMs, type Duration, type IoredisClientLike } from '@strata/core'
import type { Cluster, Redis } from 'ioredis'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'

const PKG = 'write-behind-redis-streams'

export interface RedisStreamsWriteBehindOptions {
  /** The connection (a `Redis` or a `Cluster`); the queue never closes it. */
  redis: Redis | Cluster | IoredisClientLike
  /** Entries read, coalesced and persisted per batch. @default 100 (at most 1 000) */
  batchSize?: number
  /** How often an idle worker looks for new entries. @default 100ms */
  flushInterval?: Duration
  /** Deliveries before an entry moves to the dead-letter stream. @default 5 */
  maxRetries?: number
  /** Unpersisted writes (all replicas) above which `set` is refused. @default 100 000 */
  maxPending?: number
  /** When the queue is full: reject with `E_WRITE_QUEUE_FULL`, or persist synchronously. @default 'reject' */
  whenFull?: 'reject' | 'write-through'
  /** Streams the writes are spread over (hash-tagged: one slot each on a cluster). @default 1 */
  partitions?: number
  /** Entries a consumer left unacknowledged this long are reclaimed by another. @default 30s */
  claimIdle?: Duration
  /** Retry backoff (exponential with full jitter): first delay and cap (cap below claimIdle / 2). @default 100ms, 5s */
  retryBase?: Duration
  retryMax?: Duration
  /** Run a worker in this process. Set false on replicas that only enqueue. @default true */
  worker?: boolean
  /** The consumer group. @default 'strata' */
  group?: string
  /** This worker's name in the group. @default `<host>-<pid>-<random>` */
  consumer?: string
  /** How long `close()` waits for the batch in flight. @default 5s */
  drainTimeout?: Duration
}

export interface Resolved {
  redis: Redis | Cluster
  batchSize: number
  flushInterval: number
  maxRetries: number
  maxPending: number
  whenFull: 'reject' | 'write-through'
  partitions: number
  claimIdle: number
  retryBase: number
  retryMax: number
  worker: boolean
  group: string
  consumer: string
  drainTimeout: number
}

function int(
  v: number | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw invalidOption(PKG, name, `must be an integer in [${min}, ${max}] (got ${String(v)})`)
  }
  return v
}

function ms(v: Duration | undefined, name: string, fallback: number): number {
  return toMs(v, name, PKG) ?? fallback
}

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/

export function resolve(o: RedisStreamsWriteBehindOptions): Resolved {
  if (typeof o !== 'object' || (o as unknown) === null)
    throw invalidOption(PKG, 'options', 'must be an object')
  const redis = o.redis as unknown
  if (typeof redis !== 'object' || redis === null || typeof (redis as Redis).xadd !== 'function') {
    throw invalidOption(PKG, 'redis', 'must be an ioredis Redis or Cluster')
  }
  const claimIdle = ms(o.claimIdle, 'claimIdle', 30_000)
  const retryBase = ms(o.retryBase, 'retryBase', 100)
  const retryMax = ms(o.retryMax, 'retryMax', Math.min(5_000, claimIdle / 3))
  if (claimIdle < 100) throw invalidOption(PKG, 'claimIdle', 'must be at least 100ms')
  if (retryMax >= claimIdle / 2) {
    throw invalidOption(
      PKG,
      'retryMax',
      'must be below claimIdle / 2 (a backing-off entry would be reclaimed)',
    )
  }
  if (retryBase <= 0 || retryBase > retryMax)
    throw invalidOption(PKG, 'retryBase', 'must be in (0, retryMax]')
  const whenFull = o.whenFull as unknown
  if (whenFull !== undefined && whenFull !== 'reject' && whenFull !== 'write-through') {
    throw invalidOption(PKG, 'whenFull', "must be 'reject' or 'write-through'")
  }
  if (o.worker !== undefined && typeof o.worker !== 'boolean')
    throw invalidOption(PKG, 'worker', 'must be a boolean')
  const group = o.group ?? 'strata'
  if (!NAME.test(group)) throw invalidOption(PKG, 'group', `must match ${String(NAME)}`)
  const consumer = o.consumer ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
  if (typeof consumer !== 'string' || consumer.length === 0 || consumer.length > 200) {
    throw invalidOption(PKG, 'consumer', 'must be a non-empty string of at most 200 characters')
  }
  const flushInterval = ms(o.flushInterval, 'flushInterval', 100)
  if (flushInterval < 1) throw invalidOption(PKG, 'flushInterval', 'must be at least 1ms')
  return {
    redis: o.redis as Redis | Cluster,
    batchSize: int(o.batchSize, 'batchSize', 100, 1, 1_000),
    flushInterval,
    maxRetries: int(o.maxRetries, 'maxRetries', 5, 1, 1_000),
    maxPending: int(o.maxPending, 'maxPending', 100_000, 1, 1e9),
    whenFull: o.whenFull ?? 'reject',
    partitions: int(o.partitions, 'partitions', 1, 1, 1_024),
    claimIdle,
    retryBase,
    retryMax,
    worker: o.worker ?? true,
    group,
    consumer,
    drainTimeout: ms(o.drainTimeout, 'drainTimeout', 5_000),
  }
}
