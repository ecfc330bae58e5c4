/**
 * Collects what callers add during one tick and runs it as one batch at the end of the
 * tick (`process.nextTick` runs after the current promise jobs, so callers several
 * `await`s deep still make it). DataLoader's idea: many concurrent single-key calls
 * become one round trip. A lone call still leaves in the same tick.
 *
 * Every caller of a batch waits on the batch's one promise and takes its own slice, so
 * a caller costs one `then` instead of a promise with its own resolvers (this sits on
 * the path of every L2 read and fill).
 */
export class TickBatch<I, O> {
  #items: I[] = []
  #pending: Promise<O[]> | undefined
  readonly #run: (items: I[]) => Promise<O[]>
  readonly #defer: (fn: () => void) => void

  /**
   * `run` answers the items in order; if it rejects, every caller of the batch rejects.
   * `wait: 'immediate'` collects until the event loop's check phase instead: loads that
   * finish in one timers phase (Node runs promise jobs between timer callbacks, so they
   * never share a tick) still go out together.
   */
  constructor(run: (items: I[]) => Promise<O[]>, wait: 'tick' | 'immediate' = 'tick') {
    this.#run = run
    this.#defer = wait === 'tick' ? (fn) => process.nextTick(fn) : (fn) => setImmediate(fn)
  }

  add(items: readonly I[]): Promise<O[]> {
    const from = this.#items.length
    for (const item of items) this.#items.push(item)
    const batch = (this.#pending ??= new Promise<O[]>((resolve, reject) => {
      this.#defer(() => {
        const all = this.#items
        this.#items = []
        this.#pending = undefined
        this.#run(all).then(resolve, reject)
      })
    }))
    const count = items.length
    return from === 0
      ? batch.then((out) => (out.length === count ? out : out.slice(0, count)))
      : batch.then((out) => out.slice(from, from + count))
  }
}
