import { GCProfiler, getHeapStatistics } from 'node:v8'
import { commandstats } from '@strata/testing'
import { Redis } from 'ioredis'
import type { ScenarioResult } from './scenarios.js'
import { adapterFor } from './rounds.js'

const WRITES = new Set(['set', 'sadd', 'srem', 'pexpire', 'del', 'unlink', 'incr'])

/**
 * Redis work per operation, counted by the server: one L2 hit and one miss with its
 * guarded fill, through `getOrSet` on an L2-only cache, one operation at a time (so
 * round trips are visible: every command or script is one round trip here).
 */
export async function redisWork(redisUrl: string, prefix: string): Promise<ScenarioResult> {
  const redis = new Redis(redisUrl)
  const n = 500
  const a = await adapterFor('strata', 'l2', redisUrl, prefix)
  const value = { id: 1, name: 'x'.repeat(100) }
  for (let i = 0; i < n; i++) await a.set(`hot${i}`, value)
  await a.getOrSet('warm', () => Promise.resolve(value)) // scripts loaded
  const measure = async (op: (i: number) => Promise<unknown>) => {
    const before = await commandstats(redis)
    for (let i = 0; i < n; i++) await op(i)
    const after = await commandstats(redis)
    const per = new Map<string, number>()
    for (const [cmd, calls] of after) {
      const d = calls - (before.get(cmd) ?? 0) - (cmd === 'info' ? 1 : 0)
      if (d > 0) per.set(cmd, d / n)
    }
    return per
  }
  const hit = await measure((i) => a.getOrSet(`hot${i}`, () => Promise.resolve(value)))
  const miss = await measure((i) => a.getOrSet(`cold${i}`, () => Promise.resolve(value)))
  redis.disconnect()
  // Heap allocated per miss: 1 000 concurrent cold keys, L1+L2+bus, against the
  // hand-written baseline (lru-cache + ioredis) doing the same misses.
  const perMiss = async (id: string) => {
    const t = await adapterFor(id, 'tiered', redisUrl, `${prefix}-${id}-heap`)
    let round = 0
    const one = async () => {
      const r = round++
      await Promise.all(
        Array.from({ length: 1_000 }, (_, i) =>
          t.getOrSet(`h${r}:${i}`, () => Promise.resolve(value)),
        ),
      )
    }
    for (let w = 0; w < 3; w++) await one()
    const bytes = await allocatedDuring(async () => {
      for (let k = 0; k < 5; k++) await one()
    })
    return bytes / 5_000
  }
  const strataHeap = await perMiss('strata')
  const rawHeap = await perMiss('raw')
  const row = (name: string, per: Map<string, number>) => {
    const total = [...per.values()].reduce((x, y) => x + y, 0)
    // Strata's getOrSet reaches Redis only through scripts: one script call, one round trip.
    const scripts = (per.get('evalsha') ?? 0) + (per.get('eval') ?? 0)
    const trips = scripts > 0 ? scripts : total
    return {
      contender: name,
      'commands per op': total.toFixed(2),
      'round trips per op': trips.toFixed(2),
      'writes per op': [...per]
        .filter(([c]) => WRITES.has(c))
        .reduce((x, [, v]) => x + v, 0)
        .toFixed(2),
      'by command': [...per].map(([c, v]) => `${c} ${v.toFixed(2)}`).join(', '),
    }
  }
  const h = row('strata getOrSet, L2 hit', hit)
  const m = row('strata getOrSet, miss + guarded fill', miss)
  return {
    scenario: 'redis-work',
    title: 'Redis work per operation (INFO commandstats)',
    method: `L2-only strata; ${n} sequential getOrSet L2 hits, then ${n} sequential misses with their fill; heap per miss: v8's GCProfiler around 5 rounds of 1 000 concurrent misses (L1+L2+bus) after 3 warm-up rounds; commands counted by the server, a script's inner commands included; strata's getOrSet reaches Redis only through scripts, so round trips = script calls`,
    isolation: 'main process, its own redis-server',
    columns: ['commands per op', 'round trips per op', 'writes per op', 'by command'],
    rows: [
      h,
      m,
      {
        contender: 'heap allocated per miss (1 000 concurrent, L1+L2+bus)',
        'commands per op': '—',
        'round trips per op': '—',
        'writes per op': '—',
        'by command': `strata ${(strataHeap / 1024).toFixed(1)} KB, hand-written ${(rawHeap / 1024).toFixed(1)} KB`,
      },
    ],
    targets: [
      {
        text: 'L2 hit: one round trip, no write',
        met: Number(h['round trips per op']) <= 1 && Number(h['writes per op']) === 0,
        detail: `${h['round trips per op']} round trip(s), ${h['writes per op']} writes`,
      },
      {
        text: 'miss + fill: ≤ 2 round trips, ≤ 5 commands (inner included)',
        met: Number(m['round trips per op']) <= 2 && Number(m['commands per op']) <= 5,
        detail: `${m['round trips per op']} round trips, ${m['commands per op']} commands`,
      },
      {
        text: 'heap allocated per miss ≤ 12 KB',
        met: strataHeap <= 12 * 1024,
        detail: `${(strataHeap / 1024).toFixed(1)} KB (hand-written ${(rawHeap / 1024).toFixed(1)} KB)`,
      },
    ],
    skipped: [],
  }
}

/**
 * Bytes allocated on the JS heap while `fn` runs: the heap growth between collections
 * plus what each collection freed (v8's GCProfiler reports the heap before and after
 * every GC). Sampling-free, so it counts every allocation.
 */
export async function allocatedDuring(fn: () => Promise<void>): Promise<number> {
  const start = getHeapStatistics().used_heap_size
  const profiler = new GCProfiler()
  profiler.start()
  await fn()
  const end = getHeapStatistics().used_heap_size
  const stats = profiler.stop().statistics
  let allocated = 0
  let last = start
  for (const gc of stats) {
    allocated += gc.beforeGC.heapStatistics.usedHeapSize - last
    last = gc.afterGC.heapStatistics.usedHeapSize
  }
  return allocated + (end - last)
}
