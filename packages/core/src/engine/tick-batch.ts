/**
 * Collects what callers add during one tick and runs it as one batch at the end of the
 * tick (`process.nextTick` runs after the current promise jobs, so callers several
 * `await`s deep still make it). DataLoader's idea: many concurrent single-key calls
 * become one round trip. A lone call still leaves in the same tick.
 */
export class TickBatch<I, O> {
  #items: I[] = []
  #waiters: {
    from: number
    count: number
    resolve: (out: O[]) => void
    reject: (err: unknown) => void
  }[] = []
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
    return new Promise((resolve, reject) => {
      if (this.#waiters.length === 0) this.#defer(() => void this.#flush())
      this.#waiters.push({ from: this.#items.length, count: items.length, resolve, reject })
      for (const item of items) this.#items.push(item)
    })
  }

  async #flush(): Promise<void> {
    const items = this.#items
    const waiters = this.#waiters
    this.#items = []
    this.#waiters = []
    let out: O[]
    try {
      out = await this.#run(items)
    } catch (err) {
      for (const w of waiters) w.reject(err)
      return
    }
    if (waiters.length === 1) (waiters[0] as (typeof waiters)[number]).resolve(out)
    else for (const w of waiters) w.resolve(out.slice(w.from, w.from + w.count))
  }
}
