/**
 * Collects what callers add during one tick and runs it as one batch at the end of the
 * tick (`process.nextTick` runs after the current promise jobs, so callers several
 * `await`s deep still make it). DataLoader's idea: many concurrent single-key calls
 * become one command (per `max` items).
 *
 * Every caller of a batch waits on the batch's one promise and takes its own slice, so
 * a caller costs one `then` instead of a promise with its own resolvers (this sits on
 * the path of every L2 read and fill).
 */
export class TickBatch<I, O> {
  #open: Batch<I, O> | undefined
  readonly #run: (items: readonly I[]) => Promise<O[]>
  readonly #defer: (fn: () => void) => void
  readonly #max: number
  readonly #eager: boolean
  readonly #keyOf: ((item: I) => string) | undefined
  /** With `keyOf`: where each lone item added this tick sits, until its batch is sent. */
  readonly #slots = new Map<string, { batch: Batch<I, O>; index: number }>()
  /** Runs started and not yet settled. */
  #inFlight = 0

  /** `run` answers the items in order; if it rejects, every caller of the batch rejects. */
  constructor(run: (items: readonly I[]) => Promise<O[]>, options: TickBatchOptions<I> = {}) {
    this.#run = run
    this.#defer =
      options.wait === 'immediate' ? (fn) => setImmediate(fn) : (fn) => process.nextTick(fn)
    this.#max = options.max ?? Infinity
    this.#eager = options.eager ?? false
    this.#keyOf = options.keyOf
  }

  add(items: readonly I[]): Promise<O[]> {
    if (this.#eager && this.#inFlight === 0 && this.#open === undefined) return this.#start(items)
    const key = this.#keyOf && items.length === 1 ? this.#keyOf(items[0] as I) : undefined
    const joined = key === undefined ? undefined : this.#slots.get(key)
    if (joined) return answerAt(joined.batch, joined.index)
    let batch = this.#open
    if (!batch || batch.items.length >= this.#max) {
      const b: Batch<I, O> = { items: [], done: undefined as unknown as Promise<O[]> }
      b.done = new Promise<O[]>((resolve, reject) => {
        this.#defer(() => {
          if (this.#open === b) this.#open = undefined
          // Every slot may point at a batch about to leave: none is joined after this.
          this.#slots.clear()
          this.#start(b.items).then(resolve, reject)
        })
      })
      this.#open = batch = b
    }
    const from = batch.items.length
    if (key !== undefined) this.#slots.set(key, { batch, index: from })
    for (const item of items) batch.items.push(item)
    const count = items.length
    return from === 0
      ? batch.done.then((out) => (out.length === count ? out : out.slice(0, count)))
      : count === 1
        ? answerAt(batch, from)
        : batch.done.then((out) => out.slice(from, from + count))
  }

  /**
   * One run, counted while it is out. The count drops in a reaction registered before
   * any caller's, so a caller resuming on the answer already sees the batcher idle.
   */
  #start(items: readonly I[]): Promise<O[]> {
    this.#inFlight++
    const run = this.#run(items)
    run.then(this.#landed, this.#landed)
    return run
  }

  readonly #landed = (): void => {
    this.#inFlight--
  }
}

interface Batch<I, O> {
  items: I[]
  done: Promise<O[]>
}

/** The answer to the lone item at `index` of `batch`. */
function answerAt<I, O>(batch: Batch<I, O>, index: number): Promise<O[]> {
  return batch.done.then((out) => [out[index] as O])
}

export interface TickBatchOptions<I> {
  /**
   * `'immediate'` collects until the event loop's check phase instead of the end of the
   * tick: loads that finish in one timers phase (Node runs promise jobs between timer
   * callbacks, so they never share a tick) still go out together. @default 'tick'
   */
  wait?: 'tick' | 'immediate'
  /**
   * A batch holding `max` items takes no more: later ones start the next batch, which
   * goes out at the same moment, so Redis works on one while this process encodes the
   * next and decodes the one before. One call's items are never split. @default Infinity
   */
  max?: number
  /**
   * Nagle's rule instead of DataLoader's: what is added while no run of this batcher is
   * out (and no batch is open) runs at once; only what arrives while one is out waits for
   * the tick. Sequential callers then pay no deferral (a lone L2 `get` measured ~1–1.5 µs
   * faster, `pnpm bench l2-hit`); under concurrency a run is always out, so callers still
   * batch. @default false
   */
  eager?: boolean
  /**
   * A lone item whose key is already waiting in this tick's batches joins that item
   * instead of being added again: a stampede of one key is one item however many
   * batches of `max` the tick fills (1 000 `getOrSet`s of one key were eight scripts).
   */
  keyOf?: (item: I) => string
}
