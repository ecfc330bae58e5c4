/**
 * `p`, or the error `onTimeout()` builds if `p` has not settled after `ms`. The timer is
 * cleared either way, and a late rejection of `p` is swallowed (nobody waits for it).
 * For drivers whose commands must never keep a caller waiting past a bound.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  p.catch(() => undefined)
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}

/**
 * `p`, or `onAbort()` as soon as `signal` aborts (at once if it already has). The work
 * behind `p` goes on; only this wait ends.
 */
export function untilAborted<T>(
  p: Promise<T>,
  signal: AbortSignal,
  onAbort: () => Error,
): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined)
    return Promise.reject(onAbort())
  }
  let listener: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    listener = () => reject(onAbort())
    signal.addEventListener('abort', listener, { once: true })
  })
  p.catch(() => undefined)
  return Promise.race([p, aborted]).finally(() =>
    signal.removeEventListener('abort', listener as () => void),
  )
}
