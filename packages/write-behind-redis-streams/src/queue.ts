import {
  CacheError,
  errors,
  withDeadline,
  type PendingWrite,
  type WriteBehind,
  type WriteBehindBinding,
  type WriteBehindQueue,
  type WriteOp,
  type WriteQueueStats,
} from '@strata/core'
import { OP_CODE, ageOf, parsePending, partitionOf, partitions, type Partition } from './entries.js'
import { resolve, type RedisStreamsWriteBehindOptions, type Resolved } from './options.js'
import { scripted, type Scripted } from './scripts.js'
import { Worker } from './worker.js'

const EMPTY = Buffer.alloc(0)
/** How often queue depth and the oldest write's age are sampled for `stats()`. */
const SAMPLE_MS = 250
/** Deadline for one enqueue or pending lookup (the caller is waiting). */
const COMMAND_TIMEOUT = 2_000

/**
 * Durable write-behind on Redis Streams: `redisStreamsWriteBehind(options)` is the value
 * of a repository's `write` option. See docs/patterns.md for the guarantees and the
 * durability table.
 */
export function redisStreamsWriteBehind(options: RedisStreamsWriteBehindOptions): WriteBehind {
  const o = resolve(options)
  return {
    kind: 'write-behind',
    bind<V>(binding: WriteBehindBinding<V>): WriteBehindQueue {
      return new StreamsQueue(o, binding as WriteBehindBinding)
    },
  }
}

class StreamsQueue implements WriteBehindQueue {
  readonly #o: Resolved
  readonly #b: WriteBehindBinding
  readonly #parts: Partition[]
  readonly #r: Scripted
  readonly #worker: Worker | undefined
  readonly #sampler: NodeJS.Timeout
  #closed = false
  #enqueued = 0
  #pending = 0
  #oldest = 0

  constructor(o: Resolved, binding: WriteBehindBinding) {
    this.#o = o
    this.#b = binding
    this.#parts = partitions(binding.prefix, binding.repository, o.partitions)
    this.#r = scripted(o.redis)
    if (o.worker) {
      this.#worker = new Worker(o, this.#parts, binding)
      this.#worker.start()
    }
    this.#sampler = setInterval(() => void this.#sample().catch(() => undefined), SAMPLE_MS)
    this.#sampler.unref()
  }

  async enqueue(
    id: string,
    op: WriteOp,
    value: unknown,
  ): Promise<{ version: number; queued: boolean }> {
    if (this.#closed)
      throw new CacheError(errors.E_CLOSED, '[write-behind-redis-streams] the queue is closed')
    const bytes = op === 'set' ? Buffer.from(this.#b.encode(value, id)) : EMPTY
    const p = this.#part(id)
    const perPartition = Math.ceil(this.#o.maxPending / this.#o.partitions)
    const [version, queued] = await deadline(
      this.#r.strataWbEnqueue(
        p.stream,
        p.versions,
        p.pending,
        id,
        OP_CODE[op],
        bytes,
        perPartition,
        this.#o.whenFull === 'write-through' ? '1' : '0',
      ),
      'enqueue',
    )
    if (version < 0) {
      throw new CacheError(
        errors.E_WRITE_QUEUE_FULL,
        `[write-behind-redis-streams] repository "${this.#b.repository}": ${this.#o.maxPending} unpersisted writes queued; nothing changed`,
      )
    }
    if (queued === 1) this.#enqueued++
    return { version, queued: queued === 1 }
  }

  async pending(ids: readonly string[]): Promise<(PendingWrite | undefined)[]> {
    const out: (PendingWrite | undefined)[] = new Array<PendingWrite | undefined>(ids.length)
    const byPart = new Map<Partition, number[]>()
    ids.forEach((id, i) => {
      const p = this.#part(id)
      let list = byPart.get(p)
      if (!list) byPart.set(p, (list = []))
      list.push(i)
    })
    await Promise.all(
      [...byPart].map(async ([p, idx]) => {
        const raw = await deadline(
          this.#o.redis.hmgetBuffer(p.pending, ...idx.map((i) => ids[i] as string)),
          'pending',
        )
        idx.forEach(
          (i, j) => (out[i] = parsePending(raw[j], (b) => this.#b.decode(b, ids[i] as string))),
        )
      }),
    )
    return out
  }

  async flush(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000
    const until = Date.now() + timeoutMs
    const redis = this.#o.redis
    // The last entry of each stream now: done once nothing at or before it is left.
    const marks = await Promise.all(
      this.#parts.map(async (p) => {
        const last = (await redis.xrevrange(p.stream, '+', '-', 'COUNT', 1))[0]
        return last ? { p, mark: last[0] } : undefined
      }),
    )
    let open = marks.filter((m) => m !== undefined)
    while (open.length > 0) {
      this.#worker?.kick()
      const left = await Promise.all(
        open.map(async (m) =>
          (await redis.xrange(m.p.stream, '-', m.mark, 'COUNT', 1)).length > 0 ? m : undefined,
        ),
      )
      open = left.filter((m) => m !== undefined)
      if (open.length === 0) break
      if (Date.now() >= until) {
        throw new CacheError(
          errors.E_FLUSH_TIMEOUT,
          `[write-behind-redis-streams] repository "${this.#b.repository}": writes still queued after ${timeoutMs} ms`,
        )
      }
      await new Promise((r) => setTimeout(r, Math.min(this.#o.flushInterval, 20)))
    }
    await this.#sample().catch(() => undefined)
  }

  stats(): WriteQueueStats {
    const c = this.#worker?.counters
    return {
      pending: this.#pending,
      inFlight: this.#worker?.inFlight ?? 0,
      persisted: c?.persisted ?? 0,
      superseded: c?.superseded ?? 0,
      retried: c?.retried ?? 0,
      deadLettered: c?.deadLettered ?? 0,
      oldestPendingAgeMs: this.#oldest,
      enqueued: this.#enqueued,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sampler)
    await this.#worker?.stop()
  }

  #part(id: string): Partition {
    if (typeof id !== 'string' || id.length === 0) {
      throw new CacheError(
        errors.E_INVALID_KEY,
        '[write-behind-redis-streams] ids must be non-empty strings',
      )
    }
    return this.#parts[partitionOf(id, this.#parts.length)] as Partition
  }

  async #sample(): Promise<void> {
    const redis = this.#o.redis
    let pending = 0
    let oldest = 0
    const now = Date.now()
    for (const p of this.#parts) {
      const [len, first] = await Promise.all([
        redis.xlen(p.stream),
        redis.xrange(p.stream, '-', '+', 'COUNT', 1),
      ])
      pending += len
      if (first[0]) oldest = Math.max(oldest, ageOf(first[0][0], now))
    }
    this.#pending = pending
    this.#oldest = oldest
  }
}

function deadline<T>(p: Promise<T>, op: string): Promise<T> {
  return withDeadline(
    p,
    COMMAND_TIMEOUT,
    () =>
      new CacheError(
        errors.E_L2_TIMEOUT,
        `[write-behind-redis-streams] ${op} took over ${COMMAND_TIMEOUT} ms`,
      ),
  )
}
