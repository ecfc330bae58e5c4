import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnChild, startRedis, type ChildHandle } from '@strata/testing'
import { fault, KEYS, startTarget, withAdmin } from './faults.js'
import { CANARIES, droppedBy, type ForgedReport, type ForgedSent } from './forged.js'
import { analyze, type Figures, type ReadRecord, type WriteRecord } from './analyze.js'
import type {
  RefreshProbeResult,
  WorkloadResult,
  WorkloadSpec,
  WriteProbeResult,
} from './protocol.js'

/** Built next to this file (src/ and dist/ are both one level below the package). */
const REPLICA = fileURLToPath(new URL('../dist/replica.js', import.meta.url))

/**
 * `detected`: the fault must make the bus degrade somewhere (a lost-invalidation risk).
 * `hardTimeout: false`: the replicas run without the hard timeout, and no call bound is
 * judged — scenarios that saturate the CPU (a replica blocks its event loop 2 s; a flood
 * of signed messages): a timer that fires before the replies are read would fail loads
 * that Redis answered in time.
 */
export const SCENARIOS = {
  /** No fault. */
  none: { faults: 0, detected: false },
  /** `CLIENT KILL TYPE pubsub` three times under load. */
  'pubsub-killed': { faults: 3, detected: true },
  /** The cache's redis-server SIGKILLed and started again, empty, on the same port. */
  'redis-restarted-empty': { faults: 1, detected: true },
  /** The cache's redis-server frozen (SIGSTOP) for 1.5 s. */
  'redis-frozen': { faults: 1, detected: true },
  /**
   * The bus connects through a TCP proxy; for 1.5 s nothing moves on the subscriber's
   * connection (and on any subscriber connection opened meanwhile), nothing is closed,
   * while L2 and publishing work: only the heartbeat can tell. Held bytes are delivered
   * when it heals.
   */
  'subscriber-blackholed': { faults: 1, detected: true },
  /**
   * `CLIENT PAUSE 1500 WRITE`: writes, scripts and PUBLISH wait; L1 hits go on. Each
   * replica's write probe checks that a write never shows in its L1 before L2 holds it.
   */
  'writes-paused': { faults: 1, detected: false },
  /**
   * `maxmemory` 8 MB with `allkeys-lru`, and 12 MB of filler written three times under
   * load: values, leases and tag versions are evicted.
   */
  'redis-evicts': { faults: 3, detected: false },
  /**
   * Random bytes, and behind a valid entry format byte: strings, arrays and maps claiming
   * 4 GiB, 100 000 levels of nested arrays, msgpack extensions (unknown, timestamp,
   * msgpackr's record and bigint) and random bytes, written over the workload's value
   * keys three times under load. Each payload's decode is also timed by both codecs.
   */
  'hostile-bytes': { faults: 3, detected: false },
  /**
   * `client-output-buffer-limit pubsub 4mb 2mb 1`; one replica blocks its event loop for
   * 2 s while the others write and 16 MB of valid invalidations (of keys nobody holds)
   * flood the channel in paced bursts: Redis drops that subscriber (counted with CLIENT
   * LIST), which must notice, clear and resubscribe, while the replicas that kept reading
   * never degrade. Its reads right after the block may still see old values until it
   * has processed the close, so only "no key stays stale" is asserted, not the 1 s bound.
   */
  'slow-subscriber': { faults: 1, detected: true, hardTimeout: false },
  /**
   * A rolling codec switch caught half-way: two replicas write msgpack entries, two JSON
   * entries, on one keyspace and one channel. Each codec reads the other's entries (the
   * format byte says which), so nothing is corrupt and every invalidation is honoured.
   * No fault is injected: the mix is the condition.
   */
  'mixed-versions': { faults: 0, detected: false },
  /**
   * A primary, a replica and three sentinels (`redis-server --sentinel`); the primary is
   * SIGKILLed under load. Replicas connect through ioredis' Sentinel support, follow the
   * promoted replica, and resync (the primary changed: a new run id).
   */
  'sentinel-failover': { faults: 1, detected: true },
  /**
   * Entries live 1 s and are refreshed ahead at half their TTL (grace 60 s) while the
   * cache's redis-server is SIGKILLed, kept down 10 s, and started again empty: reads keep
   * being answered (0 read errors), no promise rejection goes unhandled, 0 stale keys.
   * Each replica also reads 10 hot keys every 20 ms: at most one background refresh per
   * entry (see probes.ts).
   */
  'refresh-ahead-outage': { faults: 1, detected: true, loadMs: 14_000 },
  /**
   * The bus signed with a shared secret (`auth`); under load, a client with PUBLISH rights
   * sends random bytes, unsigned messages, messages signed with a wrong secret or an
   * unknown key id (deletes of every workload key and 20 canary keys, and clears), and
   * replays of the replicas' own captured messages; then 20 000 validly signed
   * invalidations (1 000 000 with `--long`) at up to 100 000/s. Every replica must drop
   * and count each forged message and keep its canaries in L1.
   */
  'forged-bus': { faults: 1, detected: false, hardTimeout: false },
  /**
   * `--long` only (or named): 10 minutes of the workload with 16 faults cycling through
   * pub/sub killed, Redis frozen, writes paused and Redis restarted empty. Reads and
   * writes are not recorded (memory must stay flat): the figures are the end check, the
   * read p99 and how much replica RSS and Redis memory grew.
   */
  soak: { faults: 16, detected: true, loadMs: 600_000, ops: 50_000_000 },
} as const
export type ScenarioName = keyof typeof SCENARIOS

/** Whether the scenario's replicas run with the hard timeout (and their calls are judged by it). */
export function hardTimeout(name: ScenarioName): boolean {
  const s = SCENARIOS[name]
  return !('hardTimeout' in s) || s.hardTimeout
}

export interface RunOptions {
  replicas?: number
  /** Operations per replica, and the time bound of the load phase. */
  opsPerReplica?: number
  maxMs?: number
  /** Quiet time before the permanent-staleness check. @default 2 000 */
  quiesceMs?: number
  /** `forged-bus`: validly signed invalidations in the flood. @default 20 000 */
  floodMessages?: number
  log?: (line: string) => void
}

export interface Report {
  scenario: ScenarioName
  replicas: number
  figures: Figures
  /** Keys some replica still served old after the quiesce: [key, served, source]. */
  permanentlyStale: [string, number, number][]
  failedWrites: number
  readErrors: number
  ops: number
  loadMs: number
  degraded: number
  /** Each replica's bus degradations, with their reasons (replica 0 is the one `slow-subscriber` blocks). */
  degradedByReplica: string[][]
  resynced: number
  /** Entries replicas read from L2 that were not valid (counted misses, deleted). */
  corrupt: number
  /** Keys the cache's Redis evicted (INFO stats `evicted_keys`). */
  evictedKeys: number
  /** `sentinel-failover`: from the SIGKILL to the sentinels naming the new primary (ms). */
  recoveryMs: number | undefined
  /**
   * Most loads of one key running at once in one replica. Reported, not a criterion: a
   * caller arriving after an invalidation of the key (a write, a bus gap) starts its own
   * load rather than join one that began before it, by design.
   */
  maxLoadsInFlight: number
  unhandledRejections: number
  staleServed: number
  /** The slowest replica's 99th percentile read latency (ms). */
  readP99Ms: number
  /** Each replica's (replica 0 is the one `slow-subscriber` blocks). */
  readP99ByReplica: number[]
  /** The slowest replica's 99th percentile of L1 hits (a probe key read every 5 ms). */
  l1HitP99Ms: number
  /** From the first fault to the last replica's bus degrading (ms; detected faults only). */
  detectMs: number | undefined
  /** Largest growth of a replica's RSS from before the load (soak: 10% into it) to after the quiesce (MB). */
  rssGrowthMb: number
  /** The same for its live heap, each measured after a full collection (MB): what a leak would grow. */
  heapGrowthMb: number
  /** Growth of the cache Redis' `used_memory` over the same span (MB). */
  redisMemoryGrowthMb: number
  forged: ForgedReport | undefined
  /** The longest cache read and write in any replica (ms); bounds in CALL_BOUNDS. */
  readMaxMs: number
  writeMaxMs: number
  /** `writes-paused`, summed over replicas. */
  writeProbe: WriteProbeResult | undefined
  /** `refresh-ahead-outage`: background refreshes summed, the most of one entry in one replica. */
  refreshProbe: RefreshProbeResult | undefined
  /** `slow-subscriber`: subscriber connections Redis closed during the flood. */
  subscribersDropped: number | undefined
  /** `hostile-bytes`: the longest decode of one hostile payload (ms). */
  hostileDecodeMaxMs: number | undefined
}

/**
 * Runs one scenario: a cache Redis and a source-of-truth Redis (both started here, on
 * loopback), `replicas` real processes running the workload, the scenario's faults spread
 * over the load, a quiesce, then every key checked on every replica against the source.
 */
export async function runScenario(name: ScenarioName, options: RunOptions = {}): Promise<Report> {
  const replicas = options.replicas ?? 4
  const scenario = SCENARIOS[name]
  const opsPerReplica = options.opsPerReplica ?? ('ops' in scenario ? scenario.ops : 100_000)
  const maxMs = options.maxMs ?? ('loadMs' in scenario ? scenario.loadMs : 4_000)
  const log = options.log ?? (() => undefined)
  // Servers of our own even when REDIS_URL is set: faults go only to servers we started.
  const target = await startTarget(name)
  const truthRedis = await startRedis({ source: 'binary' })
  const children: ChildHandle[] = []
  try {
    for (let i = 0; i < replicas; i++)
      children.push(
        spawnChild(REPLICA, [], { ...target.env, TRUTH_REDIS_URL: truthRedis.url }, [
          '--expose-gc',
        ]),
      )
    await Promise.all(
      children.map((c, i) =>
        c.request({
          cmd: 'init',
          prefix: `cc-${name}`,
          codec: name === 'mixed-versions' && i % 2 === 1 ? 'json' : 'msgpack',
          refresh: name === 'refresh-ahead-outage',
          auth: name === 'forged-bus',
          hard: hardTimeout(name),
        }),
      ),
    )
    if (name === 'forged-bus') {
      // Canaries in every replica's L1 (the set's own invalidations delivered first).
      await (children[0] as ChildHandle).request({ cmd: 'canary', op: 'set' })
      await sleep(300)
      await Promise.all(children.map((c) => c.request({ cmd: 'canary', op: 'warm' })))
    }
    const memBefore = await memoryOf(children)
    const redisBefore = await usedMemory(await target.url())
    const started = Date.now()
    const work = Promise.all(
      children.map((c, replica) => {
        const spec: WorkloadSpec = {
          replica,
          replicas,
          ...KEYS,
          ops: opsPerReplica,
          maxMs,
          writeShare: 0.1,
          concurrency: 8,
          loaderDelayMs: 5,
          seed: replica + 1,
          record: name !== 'soak',
          writeProbe: name === 'writes-paused',
          hotKeys: name === 'refresh-ahead-outage' ? 10 : 0,
        }
        return c.request<WorkloadResult>({ cmd: 'run', spec }, maxMs + 60_000)
      }),
    )
    // The soak's memory baseline is taken once warmed up (10% into the load).
    const memBase =
      name === 'soak'
        ? sleep(maxMs * 0.1).then(() => memoryOf(children))
        : Promise.resolve(memBefore)
    const faults = SCENARIOS[name].faults
    let recoveryMs: number | undefined
    let forged: ForgedSent | undefined
    let hostileDecodeMaxMs: number | undefined
    let subscribersDropped: number | undefined
    let firstFaultAt: number | undefined
    const settled = work.then(
      () => true,
      () => true,
    )
    for (let f = 1; f <= faults; f++) {
      // Spread over the expected load time; stop injecting once the load is over.
      const done = await Promise.race([
        settled,
        sleep((maxMs * 0.6) / (faults + 1)).then(() => false),
      ])
      if (done) break
      log(`  fault ${f}/${faults}: ${name}`)
      firstFaultAt ??= Date.now()
      const outcome = await fault(
        name === 'soak' ? (SOAK_FAULTS[(f - 1) % SOAK_FAULTS.length] as string) : name,
        target,
        `cc-${name}`,
        children,
        options.floodMessages,
      )
      recoveryMs = outcome.recoveryMs ?? recoveryMs
      forged = outcome.forged ?? forged
      subscribersDropped = outcome.subscribersDropped ?? subscribersDropped
      if (outcome.decodeMaxMs !== undefined)
        hostileDecodeMaxMs = Math.max(hostileDecodeMaxMs ?? 0, outcome.decodeMaxMs)
    }
    const results = await work
    const loadMs = Date.now() - started
    // Quiesce (bounded): every replica connected again, its queues drained, then quiet
    // time for the last messages.
    const deadline = Date.now() + 20_000
    for (let i = 0; i < 1_000 && Date.now() < deadline; i++) {
      const states = await Promise.all(
        children.map((c) =>
          c.request<{
            stats: {
              bus: { state: string; pendingPublishes: number }
              l2: { pendingRepairs: number }
            }
          }>({
            cmd: 'stats',
          }),
        ),
      )
      // Settled: every bus connected, its queued invalidations sent, every repair landed.
      if (
        states.every(
          (s) =>
            s.stats.bus.state === 'connected' &&
            s.stats.bus.pendingPublishes === 0 &&
            s.stats.l2.pendingRepairs === 0,
        )
      )
        break
      await sleep(50)
    }
    await sleep(options.quiesceMs ?? 2_000)
    const wrong = await Promise.all(
      children.map((c) => c.request<[string, number, number][]>({ cmd: 'check', ...KEYS })),
    )
    const stats = await Promise.all(
      children.map((c) =>
        c.request<{
          stats: {
            bus: { degradedCount: number; resyncedCount: number }
            l2: { corrupt: number }
            staleServed: number
          }
          maxInFlight: number
          unhandled: number
          rejected: Record<string, number>
          degradedAt: number[]
          events: string[]
          rssMb: number
          heapMb: number
        }>({ cmd: 'stats', gc: true }),
      ),
    )
    let forgedReport: ForgedReport | undefined
    if (forged) {
      forgedReport = {
        sent: forged,
        rejected: droppedBy(stats.map((st) => st.rejected)),
        canariesEvicted: CANARIES.length * replicas - forged.canaryL1Hits,
      }
    }
    const redisAfter = await usedMemory(await target.url())
    const base = await memBase
    let evictedKeys = 0
    await withAdmin(await target.url(), async (a) => {
      evictedKeys = Number(/evicted_keys:(\d+)/.exec(await a.info('stats'))?.[1] ?? 0)
    })
    const reads: ReadRecord[] = results.flatMap((r) => r.reads)
    const writes: WriteRecord[] = results.flatMap((r) => r.writes)
    return {
      scenario: name,
      replicas,
      figures: analyze(reads, writes),
      permanentlyStale: wrong.flat(),
      failedWrites: results.reduce((n, r) => n + r.failedWrites, 0),
      readErrors: results.reduce((n, r) => n + r.readErrors, 0),
      ops: results.reduce((n, r) => n + r.ops, 0),
      loadMs,
      degraded: stats.reduce((n, s) => n + s.stats.bus.degradedCount, 0),
      degradedByReplica: stats.map((s) => s.events.filter((e) => e.startsWith('degraded'))),
      resynced: stats.reduce((n, s) => n + s.stats.bus.resyncedCount, 0),
      corrupt: stats.reduce((n, s) => n + s.stats.l2.corrupt, 0),
      evictedKeys,
      recoveryMs,
      maxLoadsInFlight: Math.max(...stats.map((s) => s.maxInFlight)),
      unhandledRejections: stats.reduce((n, s) => n + s.unhandled, 0),
      staleServed: stats.reduce((n, s) => n + s.stats.staleServed, 0),
      readP99Ms: Math.max(...results.map((r) => r.readP99Ms)),
      readP99ByReplica: results.map((r) => r.readP99Ms),
      l1HitP99Ms: Math.max(...results.map((r) => r.l1HitP99Ms)),
      detectMs: detectionMs(
        firstFaultAt,
        stats.map((st) => st.degradedAt),
      ),
      forged: forgedReport,
      rssGrowthMb: Math.max(...stats.map((m, i) => m.rssMb - (base[i]?.rssMb ?? m.rssMb))),
      heapGrowthMb: Math.max(...stats.map((m, i) => m.heapMb - (base[i]?.heapMb ?? m.heapMb))),
      redisMemoryGrowthMb: redisAfter - redisBefore,
      readMaxMs: Math.max(...results.map((r) => r.readMaxMs)),
      writeMaxMs: Math.max(...results.map((r) => r.writeMaxMs)),
      writeProbe: sumWriteProbes(results),
      refreshProbe: sumRefreshProbes(results),
      hostileDecodeMaxMs,
      subscribersDropped,
    }
  } finally {
    await Promise.all(
      children.map((c) => c.request({ cmd: 'close' }, 10_000).catch(() => undefined)),
    )
    await Promise.all(children.map((c) => c.kill()))
    await target.stop()
    await truthRedis.stop()
  }
}

/** The last replica's first degradation after `at`, in ms after it; undefined if one never degraded. */
function detectionMs(at: number | undefined, degradedAt: number[][]): number | undefined {
  if (at === undefined) return undefined
  let worst = 0
  for (const times of degradedAt) {
    const first = times.find((t) => t >= at)
    if (first === undefined) return undefined
    worst = Math.max(worst, first - at)
  }
  return worst
}

function sumWriteProbes(results: readonly WorkloadResult[]): WriteProbeResult | undefined {
  const probes = results.flatMap((r) => (r.writeProbe ? [r.writeProbe] : []))
  if (probes.length === 0) return undefined
  const sum = (f: keyof WriteProbeResult) => probes.reduce((n, p) => n + p[f], 0)
  return {
    writes: sum('writes'),
    failedWrites: sum('failedWrites'),
    readsWhilePending: sum('readsWhilePending'),
    newValueInL1: sum('newValueInL1'),
    newValueInL1BeforeL2: sum('newValueInL1BeforeL2'),
  }
}

function sumRefreshProbes(results: readonly WorkloadResult[]): RefreshProbeResult | undefined {
  const probes = results.flatMap((r) => (r.refreshProbe ? [r.refreshProbe] : []))
  if (probes.length === 0) return undefined
  return {
    background: probes.reduce((n, p) => n + p.background, 0),
    maxPerEntry: Math.max(...probes.map((p) => p.maxPerEntry)),
  }
}

/** The faults the soak cycles through. */
const SOAK_FAULTS = ['pubsub-killed', 'redis-frozen', 'writes-paused', 'redis-restarted-empty']

async function usedMemory(url: string): Promise<number> {
  let mb = 0
  await withAdmin(url, async (a) => {
    mb = Number(/used_memory:(\d+)/.exec(await a.info('memory'))?.[1] ?? 0) / 2 ** 20
  })
  return mb
}

/** Each replica's RSS and live heap (after a full collection), in MB. */
async function memoryOf(
  children: readonly ChildHandle[],
): Promise<{ rssMb: number; heapMb: number }[]> {
  return Promise.all(
    children.map((c) => c.request<{ rssMb: number; heapMb: number }>({ cmd: 'stats', gc: true })),
  )
}
