import type { L2Driver } from '../contracts.js'
import type { Flight } from './flight.js'
import type { L2Answer, L2Tier } from './l2.js'
import { over, type Job, type ReadPipeline } from './read-pipeline.js'
import type { Shared } from './shared.js'

/** Waiters stop waiting for a holder that keeps renewing after this many lock lifetimes. */
const MAX_WAIT_LIFETIMES = 10

/**
 * One loader call per cold key across replicas (`distributedLock`). The holder renews
 * its lock while the loader runs (compare-and-PEXPIRE), so a load that outlives
 * `lockTtl` does not release the crowd. Waiters poll L2 with backoff and try the lock
 * again on every round: when a holder dies its lock expires and ONE waiter takes over.
 * A waiter with a stale value at hand is served by the soft timeout meanwhile (armed by
 * the pipeline before this runs), and the job's hard timeout ends the wait.
 */
export async function lockedLoad(
  job: Job,
  s: Shared,
  l2: L2Tier,
  pipeline: ReadPipeline,
): Promise<void> {
  const locks = l2.driver.locks as NonNullable<L2Driver['locks']>
  const clock = s.o.clock
  const key = job.keys[0] as string
  const full = s.keys.fullOf(key)
  const flight = job.flights[0] as Flight
  const ttl = s.o.lockTtl
  const giveUpAt = clock.now() + ttl * MAX_WAIT_LIFETIMES
  let delay = 5
  for (;;) {
    if (over(job)) return
    let lock: string | undefined
    try {
      lock = await locks.tryAcquire(full, ttl)
    } catch (err) {
      s.l2Failure(err, 'l2.lock', key)
      return pipeline.loadAndStore(job, [0])
    }
    if (lock !== undefined) return holdAndLoad(job, s, l2, pipeline, lock)
    await new Promise<void>((resolve) => clock.setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 100)
    if (over(job)) return
    const [read] = await l2.read([key], false)
    const e = (read as L2Answer).entry
    if (e && e.freshUntil > clock.now()) {
      await pipeline.l2Hit(key, e, flight.start, job.p)
      flight.settle({ entry: e, tier: 'l2', stale: false })
      return
    }
    if (clock.now() >= giveUpAt) {
      s.report(new Error('gave up waiting for the distributed lock'), 'l2.lock', key)
      return pipeline.loadAndStore(job, [0])
    }
  }
}

async function holdAndLoad(
  job: Job,
  s: Shared,
  l2: L2Tier,
  pipeline: ReadPipeline,
  lock: string,
): Promise<void> {
  const locks = l2.driver.locks as NonNullable<L2Driver['locks']>
  const clock = s.o.clock
  const key = job.keys[0] as string
  const full = s.keys.fullOf(key)
  const flight = job.flights[0] as Flight
  const ttl = s.o.lockTtl
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
    const [again] = await l2.read([key], true)
    const e = (again as L2Answer).entry
    if (e && e.freshUntil > clock.now()) {
      await pipeline.l2Hit(key, e, flight.start, job.p)
      flight.settle({ entry: e, tier: 'l2', stale: false })
      return
    }
    job.tokens[0] = (again as L2Answer).token
    await pipeline.loadAndStore(job, [0])
  } finally {
    held = false
    if (renewal !== undefined) clock.clearTimeout(renewal)
    await locks.release(full, lock).catch(() => undefined)
  }
}
