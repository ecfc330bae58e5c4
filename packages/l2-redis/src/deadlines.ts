import { CacheError, errors } from '@strata/core'

/** " (connection: …)" when the connection's last error is known. */
export function connectionNote(cause: string | undefined): string {
  return cause ? ` (connection: ${cause})` : ''
}

/**
 * Command deadlines without a timer per command: pending commands sit in a set that one
 * interval timer sweeps (every quarter of the timeout), so a deadline fires between
 * 1× and 1.25× `commandTimeout`.
 */
export class Deadlines {
  readonly #pending = new Set<{ at: number; reject: (e: unknown) => void; what: string }>()
  readonly #timeout: number
  #timer: ReturnType<typeof setInterval> | undefined

  readonly #cause: () => string | undefined

  /** `cause`: why the connection last failed, if it did (a refused TLS certificate, …). */
  constructor(timeout: number, cause: () => string | undefined = () => undefined) {
    this.#timeout = timeout
    this.#cause = cause
  }

  /**
   * `work()` under the deadline; `settled(ok)` runs once; failures are mapped by `wrap`.
   * `work` receives `expired()`: a command still waiting to be sent (first connection)
   * checks it and is never sent once its caller has been told it timed out.
   */
  race<T, R = T>(
    work: (expired: () => boolean) => Promise<T>,
    what: string,
    settled: (ok: boolean, err?: unknown) => void,
    wrap: (err: unknown) => unknown,
    map?: (v: T) => R,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const entry = {
        at: Date.now() + this.#timeout,
        reject: (e: unknown) => {
          settled(false, e)
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a CacheError
          reject(e)
        },
        what,
      }
      this.#pending.add(entry)
      this.#arm()
      work(() => !this.#pending.has(entry)).then(
        (v) => {
          if (!this.#pending.delete(entry)) return // timed out already
          settled(true)
          resolve(map ? map(v) : (v as unknown as R))
        },
        (e: unknown) => {
          if (!this.#pending.delete(entry)) return
          const err = wrap(e)
          settled(false, err)
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- wrap returns a CacheError
          reject(err)
        },
      )
    })
  }

  #arm(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => this.#sweep(), Math.max(5, Math.floor(this.#timeout / 4)))
    this.#timer.unref()
  }

  #sweep(): void {
    const now = Date.now()
    for (const e of this.#pending) {
      if (e.at > now) continue
      this.#pending.delete(e)
      e.reject(
        new CacheError(
          errors.E_L2_TIMEOUT,
          `[l2-redis] ${e.what} did not answer within ${this.#timeout} ms${connectionNote(this.#cause())}`,
        ),
      )
    }
    if (this.#pending.size === 0 && this.#timer) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}
