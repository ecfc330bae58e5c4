/**
 * The contract between a repository (core) and a write-behind queue (a driver package
 * such as `@strata/write-behind-redis-streams`). Core owns the order of a write:
 *
 *   validate + encode → enqueue (durable, versioned) → the write pipeline (L2, L1, bus)
 *
 * and the read-your-writes rule: a repository load asks the queue for a pending
 * (unpersisted) write of the id first, so a replica whose cache entry expired or was
 * evicted never loads an older value from the source while a newer write waits.
 */

/** One write handed to the source by a queue worker. */
export interface PersistItem<V = unknown> {
  id: string
  value: V
  /** Increases per id with every enqueued write; the source may reject older ones. */
  version: number
}

/** What the source of truth offers a repository (its `save`, `saveMany`, `remove`). */
export interface Persistence<V = unknown> {
  save?: ((id: string, value: V, meta: { version: number }) => unknown) | undefined
  saveMany?: ((items: PersistItem<V>[]) => unknown) | undefined
  remove?: ((id: string, meta: { version: number }) => unknown) | undefined
}

export type WriteOp = 'set' | 'delete'

/** A write waiting in the queue, as a load sees it. */
export interface PendingWrite {
  op: WriteOp
  /** The value for `set`; `null` for `delete`. */
  value: unknown
  version: number
}

export interface WriteQueueStats {
  /** Unpersisted writes in the queue (all replicas), as last sampled. */
  pending: number
  /** Writes this replica's worker is persisting or retrying. */
  inFlight: number
  /** Writes this replica's worker persisted. */
  persisted: number
  /** Writes this replica's worker acknowledged without saving: a newer write of the id was queued. */
  superseded: number
  /** Deliveries this replica's worker retried after a failed save. */
  retried: number
  /** Writes this replica's worker moved to the dead-letter stream. */
  deadLettered: number
  /** Age of the oldest unpersisted write, ms, as last sampled (0 when empty). */
  oldestPendingAgeMs: number
  /** Writes this replica enqueued. */
  enqueued: number
}

/** What core gives a queue when a repository binds it. */
export interface WriteBehindBinding<V = unknown> {
  /** The repository's name (its namespace). */
  readonly repository: string
  /** The cache's key prefix. */
  readonly prefix: string
  readonly persist: Persistence<V>
  /** Values as bytes with the L2 codec's rules (so the queue stores what the cache could; an encrypting codec binds them to the id's key). */
  encode(value: unknown, id: string): Uint8Array
  decode(bytes: Uint8Array, id: string): unknown
  deadLettered(event: { id: string; version: number; error: string }): void
  /** Reports a worker error (the cache's `error` event); the worker keeps going. */
  report(error: unknown, operation: string): void
}

export interface WriteBehindQueue {
  /**
   * Durably enqueues one write and returns its version (`queued: true`). When
   * `maxPending` unpersisted writes are queued it rejects with `E_WRITE_QUEUE_FULL`, or,
   * when the queue was configured to fall back to write-through, returns a fresh version
   * with `queued: false` (the caller then persists synchronously with that version).
   */
  enqueue(id: string, op: WriteOp, value: unknown): Promise<{ version: number; queued: boolean }>
  /** The newest unpersisted write of each id, if any (one round trip per partition). */
  pending(ids: readonly string[]): Promise<(PendingWrite | undefined)[]>
  /** Resolves once every write enqueued (by any replica) before the call is persisted or dead-lettered. */
  flush(options?: { timeoutMs?: number }): Promise<void>
  stats(): WriteQueueStats
  /** Stops taking writes and the worker; waits (bounded) for the batch in flight. */
  close(): Promise<void>
}

/** A write-behind strategy (the value of a repository's `write` option). */
export interface WriteBehind {
  readonly kind: 'write-behind'
  bind<V>(binding: WriteBehindBinding<V>): WriteBehindQueue
}
