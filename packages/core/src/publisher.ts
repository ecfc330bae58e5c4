import type { BusDriver, BusMessage, Clock } from './contracts.js'

type Draft = Omit<BusMessage, 'source' | 'seq' | 'ts'>

/**
 * Sends invalidations in order. Keys invalidated in the same tick with the same op go
 * out as one message. A failed publish is retried with backoff, in order (later
 * messages queue behind it), so a peer never keeps an old value because one publish
 * failed; the queue is bounded and an overflow is reported.
 */
export class Publisher {
  readonly #bus: BusDriver
  readonly #clock: Clock
  readonly #source: string
  readonly #onError: (err: unknown) => void
  readonly #onSent: () => void
  #seq = 0
  #batch: { op: 'delete' | 'set'; keys: string[]; waiters: (() => void)[] } | undefined
  readonly #retry: BusMessage[] = []
  #retryTimer: ReturnType<Clock['setTimeout']> | undefined
  #retryDelay = 50
  static readonly maxQueue = 10_000

  constructor(
    bus: BusDriver,
    clock: Clock,
    source: string,
    onError: (err: unknown) => void,
    onSent: () => void,
  ) {
    this.#bus = bus
    this.#clock = clock
    this.#source = source
    this.#onError = onError
    this.#onSent = onSent
  }

  /** Batches key invalidations of one op within a microtask; resolves after the publish attempt. */
  keys(op: 'delete' | 'set', keys: readonly string[], trace?: string): Promise<void> {
    if (this.#batch && this.#batch.op !== op) this.#flushBatch()
    if (!this.#batch) {
      this.#batch = { op, keys: [], waiters: [] }
      queueMicrotask(() => this.#flushBatch(trace))
    }
    const batch = this.#batch
    for (const k of keys) batch.keys.push(k)
    return new Promise((resolve) => batch.waiters.push(resolve))
  }

  send(draft: Draft): Promise<void> {
    this.#flushBatch()
    return this.#send(this.#stamp(draft))
  }

  get pending(): number {
    return this.#retry.length
  }

  #flushBatch(trace?: string): void {
    const batch = this.#batch
    if (!batch) return
    this.#batch = undefined
    const keys = [...new Set(batch.keys)]
    void this.#send(this.#stamp({ op: batch.op, keys, trace })).then(() => {
      for (const w of batch.waiters) w()
    })
  }

  #stamp(draft: Draft): BusMessage {
    return { ...draft, source: this.#source, seq: ++this.#seq, ts: this.#clock.now() }
  }

  async #send(message: BusMessage): Promise<void> {
    if (this.#retry.length > 0) {
      this.#enqueue(message)
      return
    }
    try {
      await this.#bus.publish(message)
      this.#onSent()
    } catch (err) {
      this.#onError(err)
      this.#enqueue(message)
    }
  }

  #enqueue(message: BusMessage): void {
    if (this.#retry.length >= Publisher.maxQueue) {
      this.#retry.shift()
      this.#onError(new Error('[core] bus retry queue full: dropped the oldest invalidation'))
    }
    this.#retry.push(message)
    this.#schedule()
  }

  #schedule(): void {
    if (this.#retryTimer !== undefined) return
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined
      void this.#drain()
    }, this.#retryDelay)
  }

  async #drain(): Promise<void> {
    while (this.#retry.length > 0) {
      const message = this.#retry[0] as BusMessage
      try {
        await this.#bus.publish(message)
        this.#onSent()
        this.#retry.shift()
        this.#retryDelay = 50
      } catch (err) {
        this.#onError(err)
        this.#retryDelay = Math.min(this.#retryDelay * 2, 5_000)
        this.#schedule()
        return
      }
    }
  }

  /** Stops retrying; returns how many invalidations were still queued. */
  close(): number {
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#flushBatch()
    return this.#retry.length
  }
}
