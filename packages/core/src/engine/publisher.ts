import type { BusDriver, BusMessage, Clock, TimerHandle } from '../contracts.js'

type Draft = Omit<BusMessage, 'source' | 'seq' | 'ts'>

/**
 * Sends invalidations. Keys invalidated in the same tick with the same op go out as one
 * message, split so that no message exceeds `maxKeyBytes` of keys (receivers refuse
 * oversized messages). Sends are pipelined while the bus answers; after a failure,
 * that message and every later one wait in one ordered retry queue drained by a single
 * loop (backoff 50 ms → 5 s with jitter), so a peer never keeps an old value because a
 * publish failed. The queue is bounded (an overflow is reported). `close()` stops
 * retrying, waits (bounded) for sends in flight, and reports what it dropped.
 */
export class Publisher {
  readonly #bus: BusDriver
  readonly #clock: Clock
  readonly #source: string
  readonly #onError: (err: unknown) => void
  readonly #onSent: () => void
  #seq = 0
  #batch:
    | { op: 'delete' | 'set'; keys: string[]; trace: string | undefined; waiters: (() => void)[] }
    | undefined
  readonly #retry: BusMessage[] = []
  readonly #inFlight = new Set<Promise<void>>()
  #timer: TimerHandle | undefined
  #draining = false
  #delay = 50
  #closing: Promise<number> | undefined
  static readonly maxQueue = 10_000
  static readonly maxKeyBytes = 1024 * 1024
  static readonly closeTimeout = 1_000

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

  get pending(): number {
    return this.#retry.length
  }

  /** Batches key invalidations of one op within a microtask; resolves after the first publish attempt. */
  keys(op: 'delete' | 'set', keys: readonly string[], trace?: string): Promise<void> {
    if (this.#closing) return Promise.resolve()
    if (this.#batch && this.#batch.op !== op) this.#flushBatch()
    if (!this.#batch) {
      this.#batch = { op, keys: [], trace, waiters: [] }
      queueMicrotask(() => this.#flushBatch())
    }
    const batch = this.#batch
    for (const k of keys) batch.keys.push(k)
    return new Promise((resolve) => batch.waiters.push(resolve))
  }

  send(draft: Draft): Promise<void> {
    if (this.#closing) return Promise.resolve()
    this.#flushBatch()
    return this.#send(this.#stamp(draft))
  }

  #flushBatch(): void {
    const batch = this.#batch
    if (!batch) return
    this.#batch = undefined
    const sends: Promise<void>[] = []
    let chunk: string[] = []
    let bytes = 0
    for (const k of new Set(batch.keys)) {
      if (chunk.length > 0 && bytes + k.length > Publisher.maxKeyBytes) {
        sends.push(this.#send(this.#stamp({ op: batch.op, keys: chunk, trace: batch.trace })))
        chunk = []
        bytes = 0
      }
      chunk.push(k)
      bytes += k.length
    }
    if (chunk.length > 0)
      sends.push(this.#send(this.#stamp({ op: batch.op, keys: chunk, trace: batch.trace })))
    void Promise.all(sends).then(() => {
      for (const w of batch.waiters) w()
    })
  }

  #stamp(draft: Draft): BusMessage {
    const m: BusMessage = {
      ...draft,
      source: this.#source,
      seq: ++this.#seq,
      ts: this.#clock.now(),
    }
    if (m.trace === undefined) delete m.trace
    return m
  }

  #send(message: BusMessage): Promise<void> {
    if (this.#retry.length > 0) {
      // Behind a failed message: keep the order, don't make the writer wait for retries.
      this.#enqueue(message)
      return Promise.resolve()
    }
    const sent = publishSafely(this.#bus, message).then(
      () => this.#onSent(),
      (err: unknown) => {
        this.#onError(err)
        if (!this.#closing) this.#enqueue(message)
      },
    )
    this.#inFlight.add(sent)
    void sent.finally(() => this.#inFlight.delete(sent))
    return sent
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
    if (this.#timer !== undefined || this.#draining || this.#closing) return
    const delay = this.#delay * (0.5 + Math.random())
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined
      void this.#drain()
    }, delay)
    this.#timer.unref?.()
  }

  /** The one retry loop: publishes the queue in order; on failure backs off and re-arms. */
  async #drain(): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    try {
      while (this.#retry.length > 0 && !this.#closing) {
        const item = this.#retry[0] as BusMessage
        try {
          await publishSafely(this.#bus, item)
        } catch (err) {
          this.#onError(err)
          this.#delay = Math.min(this.#delay * 2, 5_000)
          return
        }
        this.#onSent()
        // Remove exactly what was published (the queue may have been trimmed meanwhile).
        const i = this.#retry.indexOf(item)
        if (i >= 0) this.#retry.splice(i, 1)
        this.#delay = 50
      }
    } finally {
      this.#draining = false
      if (this.#retry.length > 0) this.#schedule()
    }
  }

  /**
   * The bus answers again (it resynced): send what waits now instead of after a backoff
   * grown during the outage. Until then peers keep the copies these messages invalidate.
   */
  kick(): void {
    this.#delay = 50
    if (this.#draining || this.#closing || this.#retry.length === 0) return
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    void this.#drain()
  }

  /** Stops retrying and waits (bounded) for sends in flight. Idempotent; resolves how many invalidations were dropped. */
  close(): Promise<number> {
    this.#closing ??= (async () => {
      this.#flushBatch()
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
      this.#timer = undefined
      if (this.#inFlight.size > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([
          Promise.allSettled([...this.#inFlight]),
          new Promise((resolve) => (timer = setTimeout(resolve, Publisher.closeTimeout))),
        ])
        clearTimeout(timer)
      }
      const dropped = this.#retry.length
      this.#retry.length = 0
      return dropped
    })()
    return this.#closing
  }
}

/** A driver that throws instead of rejecting is treated the same (an async function rejects). */
async function publishSafely(bus: BusDriver, message: BusMessage): Promise<void> {
  await bus.publish(message)
}
