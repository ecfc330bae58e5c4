import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { msgpackCodec, redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { redisStreamsWriteBehind } from '@strata/write-behind-redis-streams'
import { Redis } from 'ioredis'
import {
  concurrentThroughput,
  fmt,
  interleave,
  latencies,
  median,
  percentile,
  sleep,
} from './harness.js'
import type { ScenarioResult, Target } from './scenarios.js'

const SOURCE_MS = 2
/** The source's connection pool: at most this many calls at once (a database pool). */
const SOURCE_POOL = 10
const IDS = 10_000

/** A source that takes SOURCE_MS per call on one of SOURCE_POOL connections. */
function pooledSource() {
  let busy = 0
  const waiting: (() => void)[] = []
  let calls = 0
  let persisted = 0
  return {
    get calls() {
      return calls
    },
    get persisted() {
      return persisted
    },
    async call(n: number): Promise<void> {
      if (busy >= SOURCE_POOL) await new Promise<void>((r) => waiting.push(r))
      else busy++
      try {
        calls++
        await sleep(SOURCE_MS)
        persisted += n
      } finally {
        const next = waiting.shift()
        if (next) next()
        else busy--
      }
    },
  }
}

/**
 * Write latency and sustained writes/s of a repository `set`: write-behind (durable
 * enqueue + the write pipeline; this process's worker persists in the background to a
 * source that takes 2 ms per call) against write-through to the same 2 ms source and
 * against a bare ioredis XADD of the same bytes (the floor of a durable enqueue).
 */
export async function writeBehind(
  redisUrl: string,
  prefix: string,
  quick: boolean,
): Promise<ScenarioResult> {
  const rounds = quick ? 2 : 5
  const sequential = quick ? 300 : 1_000
  const ms = quick ? 300 : 1_000
  const value = { id: 1, name: 'product name', priceCents: 1999, stock: 12, tags: ['a', 'b'] }
  const bytes = Buffer.from(
    msgpackCodec().encode({
      value,
      createdAt: 0,
      freshUntil: 0,
      staleUntil: 0,
      tags: [],
      version: 0,
    }),
  )
  const raw = new Redis(redisUrl)
  const queueRedis = new Redis(redisUrl)
  const cache = createCache({
    prefix,
    l1: memoryL1({ maxEntries: 50_000 }),
    l2: redisL2({ redis: redisUrl }),
    bus: redisPubSubBus({ redis: redisUrl }),
  })
  await cache.ready()
  const source = pooledSource()
  const slowSource = (n: number) => source.call(n)
  const behind = cache.repository<typeof value>('behind', {
    load: () => null,
    saveMany: (items) => slowSource(items.length),
    save: () => slowSource(1),
    write: redisStreamsWriteBehind({ redis: queueRedis, batchSize: 500, flushInterval: 20 }),
  })
  const through = cache.repository<typeof value>('through', {
    load: () => null,
    save: () => slowSource(1),
  })
  const id = (i: number) => `p${i % IDS}`
  const plain = cache.namespace('plain')
  const ops: Record<string, (i: number) => Promise<unknown>> = {
    'cache.set alone (no source, no queue)': (i) => plain.set(id(i), value),
    'bare XADD (ioredis)': (i) =>
      raw.xadd(`${prefix}:bare`, 'MAXLEN', '~', '100000', '*', 'i', id(i), 'd', bytes),
    'write-behind set': (i) => behind.set(id(i), value),
    [`write-through set, ${SOURCE_MS} ms source × ${SOURCE_POOL}`]: (i) =>
      through.set(id(i), value),
  }
  const names = Object.keys(ops)
  const lat = await interleave(names, rounds, async (name) => {
    const xs = await latencies(ops[name] as (i: number) => Promise<unknown>, sequential)
    await behind.flush({ timeoutMs: 120_000 })
    return xs
  })
  const tput = await interleave(names, rounds, async (name) => {
    const r = await concurrentThroughput(ops[name] as (i: number) => Promise<unknown>, 64, ms)
    await behind.flush({ timeoutMs: 120_000 })
    return r
  })
  const stats = behind.stats()
  await cache.close()
  raw.disconnect()
  queueRedis.disconnect()
  const p = (name: string, q: number) =>
    median((lat.get(name) ?? []).map((xs) => percentile(xs, q)))
  const w = (name: string) => median(tput.get(name) ?? [])
  const bare = names[1] as string
  const rows = names.map((name) => ({
    contender: name,
    'p50 ms': fmt(p(name, 50), 3),
    'p99 ms': fmt(p(name, 99), 3),
    'p50 ÷ XADD': fmt(p(name, 50) / p(bare, 50), 2),
    'writes/s, 64 in flight': fmt(w(name)),
    'writes/s ÷ XADD': fmt(w(name) / w(bare), 2),
  }))
  const wb = 'write-behind set'
  const wt = names[3] as string
  const targets: Target[] = [
    {
      text: 'write-behind set p50 below write-through with a 2 ms source',
      met: p(wb, 50) < p(wt, 50),
      detail: `${fmt(p(wb, 50), 3)} ms vs ${fmt(p(wt, 50), 3)} ms`,
    },
    {
      text: 'write-behind sustains more writes/s than write-through with a 2 ms source',
      met: w(wb) > w(wt),
      detail: `${fmt(w(wb))} vs ${fmt(w(wt))} writes/s`,
    },
  ]
  return {
    scenario: 'write-behind',
    title: `Repository writes: write-behind vs write-through (${SOURCE_MS} ms source, ${SOURCE_POOL} connections) vs a bare XADD`,
    method: `one process: L1 + L2 + bus cache, ${IDS} ids; sequential latency of ${sequential} sets per round, then writes/s with 64 in flight for ${ms} ms; ${rounds} interleaved rounds, medians; the write-behind worker runs in the same process and persists to the same source as write-through: ${SOURCE_MS} ms per call on a pool of ${SOURCE_POOL} connections (write-behind: ${source.calls} source calls for ${source.persisted} writes persisted this run, ${stats.superseded} coalesced away); the queue is flushed between rounds, outside the timing`,
    isolation: 'all in the main process',
    columns: ['p50 ms', 'p99 ms', 'p50 ÷ XADD', 'writes/s, 64 in flight', 'writes/s ÷ XADD'],
    rows,
    targets,
    skipped: [],
  }
}
