import { CacheError, errors } from '@strata/core'

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. @default 5 */
  failures?: number
  /** How long it stays open before one probe is let through (ms). @default 2_000 */
  openFor?: number
}

/**
 * Consecutive-failure circuit breaker. Open: calls fail at once with E_L2_UNAVAILABLE
 * (the cache serves L1 and stale L1 without waiting on Redis), its `cause` the last
 * failure (an E_L2_TIMEOUT says Redis is slow rather than gone). After `openFor` one probe
 * goes through (half-open); its success closes the breaker, its failure reopens it.
 */
export class Breaker {
  readonly #threshold: number
  readonly #openFor: number
  readonly #now: () => number
  #failures = 0
  #openUntil = 0
  #probing = false
  /** The failure that last counted: the open breaker's error says why (`cause`). */
  #last: unknown
  opened = 0
  /** Called on open, half-open (probe let through) and close. */
  onChange: ((state: 'open' | 'half-open' | 'closed') => void) | undefined

  constructor(options: BreakerOptions = {}, now: () => number = Date.now) {
    this.#threshold = options.failures ?? 5
    this.#openFor = options.openFor ?? 2_000
    this.#now = now
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.#failures < this.#threshold) return 'closed'
    return this.#now() < this.#openUntil ? 'open' : 'half-open'
  }

  /** Throws when the call must not go to Redis now. */
  admit(): void {
    const state = this.state
    if (state === 'closed') return
    if (state === 'half-open' && !this.#probing) {
      this.#probing = true
      this.onChange?.('half-open')
      return
    }
    throw new CacheError(
      errors.E_L2_UNAVAILABLE,
      '[l2-redis] circuit breaker is open: Redis failed repeatedly, not waiting on it',
      { cause: this.#last },
    )
  }

  success(): void {
    const was = this.#failures >= this.#threshold
    this.#failures = 0
    this.#probing = false
    if (was) this.onChange?.('closed')
  }

  failure(err?: unknown): void {
    this.#last = err
    this.#probing = false
    this.#failures++
    if (this.#failures >= this.#threshold) {
      if (this.#now() >= this.#openUntil) {
        this.opened++
        this.onChange?.('open')
      }
      this.#openUntil = this.#now() + this.#openFor
    }
  }
}
