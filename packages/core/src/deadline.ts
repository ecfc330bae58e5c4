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
