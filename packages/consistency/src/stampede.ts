/**
 * `stampede-under-stall`: 8 replica processes × 500 callers of one cold key with
 * `distributedLock`, first while the cache's Redis sleeps (`DEBUG SLEEP 2`), then with
 * the lock holder SIGKILLed mid-load. Loader calls are logged in a second Redis (never
 * faulted), so a killed holder's call is still counted.
 */
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnChild, startRedis, type ChildHandle } from '@strata/testing'
import { Redis } from 'ioredis'

const REPLICA = fileURLToPath(new URL('../dist/replica.js', import.meta.url))

export interface StampedeOptions {
  replicas?: number
  callers?: number
  /** How long the cache's Redis sleeps under the first stampede (s). @default 2 */
  stallSeconds?: number
  lockTtlMs?: number
  log?: (line: string) => void
}

export interface StampedeReport {
  scenario: 'stampede-under-stall'
  replicas: number
  callers: number
  lockTtlMs: number
  stall: {
    /** Loader calls across every replica for the one cold key (≤ 1 per lock window). */
    loads: number
    answered: number
    errors: number
    /** From the first call to the last caller answered (ms). */
    totalMs: number
  }
  killed: {
    /** Loader calls: the holder's (killed) and its successors'. */
    loads: number
    /** From the SIGKILL of the holder to the next loader call (ms); ≤ lockTtl + 100 ms. */
    takeoverMs: number | undefined
    answered: number
    errors: number
  }
}

type Answer = { ok: number; errors: number }

export async function runStampede(options: StampedeOptions = {}): Promise<StampedeReport> {
  const replicas = options.replicas ?? 8
  const callers = options.callers ?? 500
  const lockTtl = options.lockTtlMs ?? 1_000
  const log = options.log ?? (() => undefined)
  const cacheRedis = await startRedis({
    source: 'binary',
    args: ['--enable-debug-command', 'local'],
  })
  const truthRedis = await startRedis({ source: 'binary' })
  const truth = new Redis(truthRedis.url)
  const children: ChildHandle[] = []
  try {
    for (let i = 0; i < replicas; i++)
      children.push(
        spawnChild(REPLICA, [], {
          CACHE_REDIS_URL: cacheRedis.url,
          TRUTH_REDIS_URL: truthRedis.url,
        }),
      )
    const ask = (c: ChildHandle, i: number, key: string, loadMs: number, n = callers) =>
      c.request<Answer>(
        { cmd: 'stampede', prefix: 'stampede', replica: i, key, callers: n, loadMs, lockTtl },
        lockTtl * 20 + 30_000,
      )
    // Every replica started, its cache built and connected, before the fault.
    await Promise.all(children.map((c, i) => ask(c, i, 'warm-up', 0, 1)))

    // 1. The stall: every replica's first commands wait behind DEBUG SLEEP.
    log(`  DEBUG SLEEP ${options.stallSeconds ?? 2} under ${replicas} × ${callers} callers`)
    const admin = new Redis(cacheRedis.url)
    await admin.ping()
    const sleeping = admin.call('DEBUG', 'SLEEP', String(options.stallSeconds ?? 2))
    await sleep(20)
    const t0 = Date.now()
    const stalled = await Promise.all(children.map((c, i) => ask(c, i, 'cold-stall', 200)))
    const stallMs = Date.now() - t0
    await sleeping
    admin.disconnect()
    const stallLoads = await truth.llen('loads:cold-stall')

    // 2. The holder dies mid-load: the lock expires and one waiter takes over.
    log(`  lock holder SIGKILLed mid-load (lockTtl ${lockTtl} ms)`)
    const pending = children.map((c, i) =>
      ask(c, i, 'cold-kill', lockTtl * 3).then(
        (a) => a,
        () => undefined,
      ),
    )
    let first: string | undefined
    for (let i = 0; i < 200 && first === undefined; i++) {
      first = (await truth.lindex('loads:cold-kill', 0)) ?? undefined
      if (first === undefined) await sleep(25)
    }
    if (first === undefined) throw new Error('no replica started loading cold-kill')
    const holder = Number(first.split(':')[0])
    await sleep(lockTtl / 2) // mid-load
    const killedAt = Date.now()
    await (children[holder] as ChildHandle).kill()
    let second: string | undefined
    for (let i = 0; i < 400 && second === undefined && Date.now() < killedAt + lockTtl * 5; i++) {
      second = (await truth.lindex('loads:cold-kill', 1)) ?? undefined
      if (second === undefined) await sleep(10)
    }
    const answers = (await Promise.all(pending)).filter((a, i) => i !== holder && a) as Answer[]
    const killLoads = await truth.llen('loads:cold-kill')
    children.splice(holder, 1)
    const sum = (xs: Answer[], f: (a: Answer) => number) => xs.reduce((n, a) => n + f(a), 0)
    return {
      scenario: 'stampede-under-stall',
      replicas,
      callers,
      lockTtlMs: lockTtl,
      stall: {
        loads: stallLoads,
        answered: sum(stalled, (a) => a.ok),
        errors: sum(stalled, (a) => a.errors),
        totalMs: stallMs,
      },
      killed: {
        loads: killLoads,
        takeoverMs: second === undefined ? undefined : Number(second.split(':')[1]) - killedAt,
        answered: sum(answers, (a) => a.ok),
        errors: sum(answers, (a) => a.errors) + (replicas - 1 - answers.length) * callers,
      },
    }
  } finally {
    await Promise.all(
      children.map((c) => c.request({ cmd: 'close' }, 10_000).catch(() => undefined)),
    )
    await Promise.all(children.map((c) => c.kill()))
    truth.disconnect()
    await cacheRedis.stop()
    await truthRedis.stop()
  }
}

export function stampedeSummary(r: StampedeReport): string {
  return (
    `${r.scenario.padEnd(22)} ${r.replicas} replicas × ${r.callers} callers, lockTtl ${r.lockTtlMs} ms · ` +
    `under DEBUG SLEEP: ${r.stall.loads} loader call(s), ${r.stall.answered} answered, ${r.stall.errors} errors, all answered in ${r.stall.totalMs} ms · ` +
    `holder SIGKILLed: ${r.killed.loads} loader calls (holder + successors), takeover ${r.killed.takeoverMs ?? '—'} ms after the kill, ${r.killed.answered} answered, ${r.killed.errors} errors`
  )
}

/** ≤ 1 loader call per lock window; takeover within lockTtl + 100 ms; every caller answered. */
export function stampedeVerdict(r: StampedeReport): string[] {
  const out: string[] = []
  if (r.stall.loads > 1) out.push(`${r.stall.loads} loader calls under the stall (≤ 1)`)
  if (r.stall.errors > 0) out.push(`${r.stall.errors} callers failed under the stall`)
  if (r.stall.answered !== r.replicas * r.callers)
    out.push(`${r.stall.answered} of ${r.replicas * r.callers} answered under the stall`)
  if (r.killed.loads !== 2) out.push(`${r.killed.loads} loader calls around the kill (want 2)`)
  if (r.killed.takeoverMs === undefined) out.push('nobody took over from the killed holder')
  else if (r.killed.takeoverMs > r.lockTtlMs + 100)
    out.push(`takeover ${r.killed.takeoverMs} ms > lockTtl + 100 ms`)
  if (r.killed.errors > 0) out.push(`${r.killed.errors} callers failed around the kill`)
  return out
}
