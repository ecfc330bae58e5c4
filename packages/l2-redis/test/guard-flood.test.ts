import {
  spawnChild,
  startRedis,
  waitFor,
  type ChildHandle,
  type RedisHandle,
} from '@strata/testing'
import { Redis } from 'ioredis'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

/**
 * The penetration-guard proofs docs/patterns.md cites: 4 replica processes, Zipf traffic
 * over 10 000 existing ids plus 10 requests for random absent ids per legitimate one,
 * against a real redis-server. Figures are printed as `[proof] …` lines.
 */
const fixture = fileURLToPath(new URL('./fixtures/guard-replica.mjs', import.meta.url))
const IDS = 10_000
const L1 = 2_000

interface Run {
  legit: number
  floods: number
  errors: number
  maxMs: number
  p50: number
  p99: number
  presentLoads: number
  absentLoads: number
  l1Entries: number
}

let server: RedisHandle
let admin: Redis
const children: ChildHandle[] = []

beforeAll(async () => {
  server = await startRedis({ source: 'binary' })
  admin = new Redis(server.url)
})
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})
afterAll(async () => {
  admin.disconnect()
  await server.stop()
})

async function replicas(n: number, prefix: string, guard: boolean, url = server.url) {
  const cs = Array.from({ length: n }, () => spawnChild(fixture, [], { REDIS_TEST_URL: url }))
  children.push(...cs)
  await Promise.all(
    cs.map((c) => c.request({ cmd: 'init', prefix, guard, ids: IDS, l1Entries: L1 })),
  )
  return cs
}

async function run(cs: ChildHandle[], ms: number, flood: number): Promise<Run> {
  const rs = await Promise.all(
    cs.map((c, i) =>
      c.request<Run>({ cmd: 'run', ms, flood, seed: 1 + i, maxRequests: 1_000_000 }, ms + 60_000),
    ),
  )
  const sum = (f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0)
  return {
    legit: sum((r) => r.legit),
    floods: sum((r) => r.floods),
    errors: sum((r) => r.errors),
    maxMs: Math.max(...rs.map((r) => r.maxMs)),
    p50: Math.max(...rs.map((r) => r.p50)),
    p99: Math.max(...rs.map((r) => r.p99)),
    presentLoads: sum((r) => r.presentLoads),
    absentLoads: sum((r) => r.absentLoads),
    l1Entries: Math.max(...rs.map((r) => r.l1Entries)),
  }
}

const hitRatio = (r: Run) => 1 - r.presentLoads / r.legit
const pct = (x: number) => `${(100 * x).toFixed(1)}%`

describe('penetration guard under a flood (4 replica processes)', () => {
  it('flood of random absent ids at 10× the legitimate rate for 20 s', async () => {
    const guarded = await replicas(4, 'flood', true)
    await waitFor(
      async () => (await admin.exists('{flood:bloom:products}')) === 1,
      30_000,
      'filter built',
    )
    await run(guarded, 3_000, 0) // warm-up: the hot set reaches L1 and L2
    const calm = await run(guarded, 5_000, 0)
    const flood = await run(guarded, 20_000, 10)
    const plain = await replicas(4, 'plain', false)
    await run(plain, 3_000, 0)
    const unguarded = await run(plain, 5_000, 10)
    console.log(
      `[proof] flood, guard on: ${flood.floods} absent-id requests, ${flood.absentLoads} reached the loader (${pct(flood.absentLoads / flood.floods)}); ` +
        `legit L1+L2 hit ratio ${pct(hitRatio(calm))} calm → ${pct(hitRatio(flood))} under flood; legit p50/p99 ${flood.p50.toFixed(2)}/${flood.p99.toFixed(2)} ms (calm ${calm.p50.toFixed(2)}/${calm.p99.toFixed(2)}); ` +
        `max L1 entries ${flood.l1Entries} (bound ${L1}); errors ${flood.errors}`,
    )
    console.log(
      `[proof] flood, guard off: ${unguarded.floods} absent-id requests, ${unguarded.absentLoads} reached the loader (${pct(unguarded.absentLoads / unguarded.floods)}); legit p50/p99 ${unguarded.p50.toFixed(2)}/${unguarded.p99.toFixed(2)} ms`,
    )
    expect(flood.errors).toBe(0)
    expect(flood.absentLoads / flood.floods).toBeLessThanOrEqual(0.02)
    expect(hitRatio(calm) - hitRatio(flood)).toBeLessThan(0.05)
    expect(flood.l1Entries).toBeLessThanOrEqual(L1)
    // Without the guard every absent id reaches the loader (the proof's control).
    expect(unguarded.absentLoads / unguarded.floods).toBeGreaterThan(0.9)
  }, 180_000)

  it('fail-open: Redis frozen, then killed, during a flood → loader results, no errors, no hang', async () => {
    const own = await startRedis({ source: 'binary' })
    try {
      const cs = await replicas(2, 'failopen', true, own.url)
      const check = new Redis(own.url)
      await waitFor(
        async () => (await check.exists('{failopen:bloom:products}')) === 1,
        30_000,
        'filter built',
      )
      check.disconnect()
      const running = run(cs, 6_000, 10)
      await new Promise((r) => setTimeout(r, 1_000))
      await own.freeze()
      await new Promise((r) => setTimeout(r, 2_000))
      await own.thaw()
      await new Promise((r) => setTimeout(r, 1_000))
      await own.kill()
      const r = await running
      console.log(
        `[proof] fail-open: ${r.legit} legit + ${r.floods} absent-id requests across a 2 s freeze and a kill; errors ${r.errors}; slowest call ${r.maxMs.toFixed(0)} ms (hard timeout 2000 ms)`,
      )
      expect(r.errors).toBe(0)
      expect(r.legit).toBeGreaterThan(0)
      // A hang detector, not a speed target: nothing waits past the hard timeout plus slack.
      expect(r.maxMs).toBeLessThan(5_000)
    } finally {
      await own.stop()
    }
  }, 60_000)
})
