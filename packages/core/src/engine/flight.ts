import type { Entry } from '../contracts.js'
import type { CallPolicy } from '../call.js'
import type { L2Answer } from './l2.js'
import type { Source } from './loader.js'

/** What a caller of a load gets: the entry, the tier that answered, whether it is stale. */
export interface Outcome {
  entry: Entry
  tier: 'l2' | 'loader'
  stale: boolean
}

/**
 * One load of one key that every concurrent caller awaits. `result` settles with the
 * load's outcome, or earlier with a stale outcome (soft timeout, lock wait): the load
 * then goes on and still stores its value. `start` is the fill-guard epoch when the
 * flight began: a caller arriving after a later invalidation of the key starts a new
 * flight instead of joining this one (it would hand an old value to a read that began
 * after the write).
 */
export class Flight {
  readonly start: number
  readonly tags: readonly string[]
  readonly result: Promise<Outcome>
  settled = false
  /** Settled with the load's own outcome (or failed): nothing more to join. */
  finished = false
  /** The best stale entry known for the key (for callers whose own deadline fires first). */
  stale: Entry | undefined
  /** The lease token L2 handed out with the miss (the fill goes through it). */
  token: string | undefined = undefined
  #resolve!: (o: Outcome) => void
  #reject!: (e: unknown) => void

  constructor(start: number, tags: readonly string[], stale: Entry | undefined) {
    this.start = start
    this.tags = tags
    this.stale = stale
    this.result = new Promise<Outcome>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Nobody may be waiting (refresh-ahead): the rejection is observed by whoever awaits.
    this.result.catch(() => undefined)
  }

  /** Settles once; returns false when the flight had already settled. */
  settle(o: Outcome): boolean {
    if (!o.stale) this.finished = true
    if (this.settled) return false
    this.settled = true
    this.#resolve(o)
    return true
  }

  fail(err: unknown): boolean {
    this.finished = true
    if (this.settled) return false
    this.settled = true
    this.#reject(err)
    return true
  }
}

/** One load of some keys (a single key is a batch of one): the state its steps share. */
export interface Job {
  keys: string[]
  userKeys: string[]
  source: Source
  p: CallPolicy
  flights: Flight[]
  /** Set when the refresh-ahead of an L1 entry started it: only a newer L2 entry counts. */
  refreshing: Entry | undefined
  /** L2 answers read before the job started (getOrSet reads before it builds a flight). */
  read: L2Answer[] | undefined
  /** The hard timeout fired (or the cache closed): nobody waits any more. */
  timedOut: boolean
  /** The cache closed: a late result is not stored. */
  closed: boolean
  controller: AbortController | undefined
  /** The loaders' signal, built on first use (AbortController is costly). */
  signal: () => AbortSignal
}

/** Whether the job's hard timeout fired or the cache closed (a function: it changes across awaits). */
export function over(job: Job): boolean {
  return job.timedOut
}
