import type { L2Driver } from '../contracts.js'
import { CacheError, errors } from '../errors.js'
import { over, type Flight, type Job } from './flight.js'
import type { L2Answer, L2Tier } from './l2.js'
import type { ReadPipeline } from './read-pipeline.js'
import { servable } from './read-steps.js'
import type { Shared } from './shared.js'

/** Waiters stop waiting for a holder that keeps renewing after this many lock lifetimes. */
const MAX_WAIT_LIFETIMES = 10

/**
 * One loader call per cold key across replicas (`distributedLock`). The holder renews
 * its lock while the loader runs (compare-and-PEXPIRE), so a load that outlives
 * `lockTtl` does not release the crowd. Waiters poll L2 with backoff and try the lock
 * again on every round: when a holder dies its lock expires and ONE waiter takes over.
 * A waiter with a stale value at hand is served by the soft timeout meanwhile (armed by
 * the pipeline before this runs), and the job's hard timeout ends the wait. When Redis
 * is slow (lock commands time out) callers go on waiting and trying, up to the same
 * bound; when it is gone they load at once (one load per replica: the in-process flight
 * still holds).
 */
export async function lockedLoad(
  job: Job,
  s: Shared,
  l2: L2Tier,
  pipeline: ReadPipeline,
): Promise<void> {
  const at = lockSite(job, s, l2)
  const giveUpAt = at.clock.now() + at.ttl * MAX_WAIT_LIFETIMES
  // One token for every attempt of this load: an attempt that timed out here may have
  // taken the lock on the server, and the next attempt then finds it its own.
  const token = `${s.source}:${++lockSeq}`
  let delay = 5
  for (;;) {
    if (over(job)) return
    let lock: string | undefined
    try {
      lock = await at.locks.tryAcquire(at.full, at.ttl, token)
    } catch (err) {
      s.l2Failure(err, 'l2.lock', at.key)
      // Redis gone (refused, breaker open on connection errors): load here at once. Redis
      // slow (timeouts): keep trying like any waiter, rather than every replica loading.
      if (!isTimeout(err)) return pipeline.loadAndStore(job, [0])
    }
    if (lock !== undefined) return holdAndLoad(job, at, l2, pipeline, lock)
    await new Promise<void>((resolve) => at.clock.setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 100)
    if (over(job)) return
    if (await servedFromL2(job, at, l2, pipeline, false)) return
    if (at.clock.now() >= giveUpAt) {
      s.report(new Error('gave up waiting for the distributed lock'), 'l2.lock', at.key)
      return pipeline.loadAndStore(job, [0])
    }
  }
}

let lockSeq = 0

/** Redis slow rather than gone: a timeout, or a breaker that opened on timeouts. */
function isTimeout(err: unknown): boolean {
  if (!(err instanceof CacheError)) return false
  if (err.code === errors.E_L2_TIMEOUT) return true
  return err.code === errors.E_L2_UNAVAILABLE && isTimeout(err.cause)
}

/** What both sides of the lock work with. */
interface LockSite {
  locks: NonNullable<L2Driver['locks']>
  clock: Shared['o']['clock']
  key: string
  full: string
  flight: Flight
  ttl: number
}

function lockSite(job: Job, s: Shared, l2: L2Tier): LockSite {
  const key = job.keys[0] as string
  return {
    locks: l2.driver.locks as NonNullable<L2Driver['locks']>,
    clock: s.o.clock,
    key,
    full: s.keys.fullOf(key),
    flight: job.flights[0] as Flight,
    ttl: s.o.lockTtl,
  }
}

/** Reads the key again; a fresh entry (someone filled it) settles the flight. */
async function servedFromL2(
  job: Job,
  at: LockSite,
  l2: L2Tier,
  pipeline: ReadPipeline,
  lease: boolean,
): Promise<boolean> {
  const [read] = await l2.read([at.key], lease)
  const e = (read as L2Answer).entry
  if (servable(e, at.clock.now())) {
    at.flight.settle(await pipeline.steps.l2Served(at.key, e, at.flight.start, job.p))
    return true
  }
  if (lease) (job.flights[0] as Flight).token = (read as L2Answer).token
  return false
}

async function holdAndLoad(
  job: Job,
  at: LockSite,
  l2: L2Tier,
  pipeline: ReadPipeline,
  lock: string,
): Promise<void> {
  const { locks, clock, full, ttl } = at
  let renewal: ReturnType<typeof clock.setTimeout> | undefined
  let held = true
  const renew = () => {
    renewal = clock.setTimeout(
      () => {
        void locks.extend(full, lock, ttl).then(
          (ok) => {
            if (!ok) held = false
            else if (held) renew()
          },
          () => held && renew(),
        )
      },
      Math.max(1, Math.floor(ttl / 3)),
    )
    renewal.unref?.()
  }
  renew()
  try {
    // Someone may have filled between our miss and the lock: read again (with a lease).
    if (await servedFromL2(job, at, l2, pipeline, true)) return
    await pipeline.loadAndStore(job, [0])
  } finally {
    held = false
    if (renewal !== undefined) clock.clearTimeout(renewal)
    await locks.release(full, lock).catch(() => undefined)
  }
}
