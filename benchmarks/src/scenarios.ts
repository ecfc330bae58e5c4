import { fileURLToPath } from 'node:url'
import {
  BasicTracerProvider,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'
import { ExportResultCode } from '@opentelemetry/core'
import { compressedCodec, createCache, encryptedCodec, jsonCodec, type Entry } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { msgpackCodec } from '@strata/l2-redis'
import { spawnChild, type ChildHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { Packr, Unpackr } from 'msgpackr'
import { CONTENDERS, contender, runnable, type CacheAdapter, type Mode } from './adapters/index.js'
import { decode, encode } from './adapters/raw.js'
import {
  concurrentThroughput,
  fmt,
  interleave,
  median,
  percentile,
  sampleObject,
  sleep,
  throughput,
  throughputSync,
} from './harness.js'
import { adapterFor, runRound, type Round } from './rounds.js'
import { redisWork } from './redis-work.js'
import { writeBehind } from './write-behind.js'

export interface Row {
  contender: string
  [column: string]: string | number
}

export interface Target {
  text: string
  met: boolean | null
  detail: string
}

export interface ScenarioResult {
  scenario: string
  title: string
  method: string
  isolation: string
  columns: string[]
  rows: Row[]
  targets: Target[]
  skipped: string[]
  extra?: Record<string, unknown>
}

export interface Context {
  redisUrl: string
  quick: boolean
  workers: Map<string, ChildHandle>
}

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url))
let prefixSeq = 0
const prefix = (s: string) => `b${process.pid}x${prefixSeq++}${s}`

function worker(ctx: Context, key: string, execArgv: string[] = []): ChildHandle {
  let w = ctx.workers.get(key)
  if (!w) {
    w = spawnChild(WORKER, [], {}, execArgv)
    ctx.workers.set(key, w)
  }
  return w
}

async function closeWorker(ctx: Context, key: string): Promise<void> {
  const w = ctx.workers.get(key)
  if (!w) return
  ctx.workers.delete(key)
  await w.request({ cmd: 'close' }).catch(() => undefined)
  await w.kill()
}

/** Runs a round here, or in the contender's own process when it must be isolated. */
async function round(
  ctx: Context,
  id: string,
  mode: Mode,
  pfx: string,
  r: Round,
  maxEntries?: number,
): Promise<unknown> {
  const spec = {
    contender: id,
    mode,
    redisUrl: ctx.redisUrl,
    prefix: pfx,
    round: r,
    ...(maxEntries ? { maxEntries } : {}),
  }
  if (contender(id).isolated)
    return worker(ctx, `iso-${id}`).request({ cmd: 'round', ...spec }, 300_000)
  return runRound(spec)
}

const ISOLATION_NOTE =
  'cacheable and cache-manager (which load @redis/client through @keyv/redis) run in their own child process each; every other contender runs in the main process. Rounds are interleaved across processes (one contender at a time).'

const target = (text: string, ok: boolean | null, detail: string): Target => ({
  text,
  met: ok,
  detail,
})

// ---------------------------------------------------------------- 1. l1-hit

export async function l1Hit(ctx: Context): Promise<ScenarioResult> {
  const ms = ctx.quick ? 150 : 400
  const rounds = ctx.quick ? 3 : 7
  const lru = new LRUCache<string, object>({ max: 1000, ttl: 3_600_000 })
  const map = new Map<string, object>()
  lru.set('hot', sampleObject(1))
  map.set('hot', sampleObject(1))
  const peers = CONTENDERS.filter((c) => c.id !== 'raw' && c.modes.includes('l1') && runnable(c))
  const names = [
    'Map.get (sync)',
    'lru-cache get (sync)',
    'lru-cache get (awaited)',
    ...peers.map((c) => `${c.id}:l1`),
    'strata:tiered',
    'bentocache:tiered',
  ]
  const pfx = new Map(names.map((n) => [n, prefix('l1')]))
  const results: Record<string, Map<string, number[]>> = {}
  for (const op of ['get', 'getOrSet'] as const) {
    results[op] = await interleave(names, rounds, async (name) => {
      if (name === 'Map.get (sync)') return throughputSync(() => map.get('hot'), ms)
      if (name === 'lru-cache get (sync)') return throughputSync(() => lru.get('hot'), ms)
      if (name === 'lru-cache get (awaited)') return throughput(() => lru.get('hot'), ms)
      const [id, mode] = name.split(':') as [string, Mode]
      if (op === 'get' && contender(id).getOrSetOnly) return Number.NaN
      return (await round(ctx, id, mode, pfx.get(name) as string, {
        kind: 'l1-hit',
        op,
        ms,
      })) as number
    })
  }
  const base = median(results['get']?.get('lru-cache get (awaited)') ?? [])
  const rows: Row[] = names.map((n) => {
    const g = median(results['get']?.get(n) ?? [])
    const gs = median(results['getOrSet']?.get(n) ?? [])
    return {
      contender: n,
      'get ops/s': fmt(g),
      'get ÷ awaited lru': fmt(g / base, 2),
      'getOrSet ops/s': fmt(gs),
      'getOrSet ÷ awaited lru': fmt(gs / base, 2),
    }
  })
  const strata = median(results['get']?.get('strata:l1') ?? [])
  const tiny = median(results['get']?.get('strata-tinylfu:l1') ?? [])
  const peerGets = peers
    .filter((c) => c.id !== 'strata' && c.id !== 'strata-tinylfu')
    .map((c) => median(results['get']?.get(`${c.id}:l1`) ?? []))
    .filter(Number.isFinite)
  const bestPeer = Math.max(...peerGets)
  const bento = median(results['get']?.get('bentocache:l1') ?? [])
  return {
    scenario: 'l1-hit',
    title: 'L1 hit: get and getOrSet on one hot key',
    method: `one hot key holding a ~300-byte object; each contender runs ${ms} ms per round, ${rounds} rounds, order rotated each round; median ops/s; ratio to awaited lru-cache.get in the same run`,
    isolation: ISOLATION_NOTE,
    columns: ['get ops/s', 'get ÷ awaited lru', 'getOrSet ops/s', 'getOrSet ÷ awaited lru'],
    rows,
    targets: [
      target(
        'strata get ≥ 0.70× awaited lru-cache get',
        strata / base >= 0.7,
        `${fmt(strata / base, 2)}×`,
      ),
      target(
        "admission: 'tinylfu' get ≥ 0.70× awaited lru-cache get",
        tiny / base >= 0.7,
        `${fmt(tiny / base, 2)}×`,
      ),
      target(
        'strata get ≥ 1.0× the best peer',
        strata / bestPeer >= 1,
        `${fmt(strata / bestPeer, 2)}× (best peer ${fmt(bestPeer)} ops/s)`,
      ),
      target('strata get ≥ 20× BentoCache', strata / bento >= 20, `${fmt(strata / bento, 1)}×`),
    ],
    skipped: CONTENDERS.filter((c) => !runnable(c)).map(
      (c) => `${c.id}: needs Node ${String(c.minNode)}+ (this run: ${process.version})`,
    ),
  }
}

// ---------------------------------------------------------------- 2. l2-hit

export async function l2Hit(ctx: Context): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 3 : 5
  // Unrecorded rounds first, for every contender: Strata's p50 ratio fell from ~1.4 in
  // the first round to ~1.15 by the third as its code got compiled.
  const warmup = ctx.quick ? 0 : 2
  const sequential = ctx.quick ? 500 : 2_000
  const ms = ctx.quick ? 300 : 800
  const redis = new Redis(ctx.redisUrl)
  const rawKeys = Array.from({ length: 256 }, (_, i) => `rawl2tp:${i}`)
  for (const k of rawKeys)
    await redis.set(
      k,
      encode({
        value: sampleObject(1),
        createdAt: 0,
        freshUntil: 0,
        staleUntil: 0,
        tags: [],
        version: 1,
      }),
    )
  const jsonKeys = rawKeys.map((k) => `${k}:json`)
  for (const k of jsonKeys) await redis.set(k, JSON.stringify(sampleObject(1)))
  const names = [
    'ioredis getBuffer + msgpackr decode',
    'ioredis get + JSON.parse',
    'strata:l2',
    'layered-loader:l2',
    'bentocache:l2',
    'cacheable:l2',
    'cache-manager:l2',
  ]
  const pfx = new Map(names.map((n) => [n, prefix('l2')]))
  interface L2 {
    p50: number
    p99: number
    rawP50: number
    rawP99: number
    tput: number
    tputGetOrSet: number
  }
  const parsed = await interleave<L2>(
    names,
    rounds,
    async (name) => {
      if (name.startsWith('ioredis')) {
        const tput = await concurrentThroughput(
          name.includes('JSON')
            ? async (i): Promise<unknown> =>
                JSON.parse((await redis.get(jsonKeys[i % 256] as string)) as string) as unknown
            : async (i) => decode((await redis.getBuffer(rawKeys[i % 256] as string)) as Buffer),
          64,
          ms,
        )
        const nan = Number.NaN
        return { p50: nan, p99: nan, rawP50: nan, rawP99: nan, tput, tputGetOrSet: tput }
      }
      const [id, mode] = name.split(':') as [string, Mode]
      return (await round(ctx, id, mode, pfx.get(name) as string, {
        kind: 'l2-hit',
        sequential,
        inFlight: 64,
        ms,
      })) as L2
    },
    warmup,
  )
  redis.disconnect()
  const m = (n: string, f: keyof L2) => median((parsed.get(n) ?? []).map((x) => x[f]))
  const base = names[0] as string
  const json = names[1] as string
  const contenders = names.slice(2)
  const rawP50 = median(contenders.flatMap((n) => (parsed.get(n) ?? []).map((x) => x.rawP50)))
  const rawP99 = median(contenders.flatMap((n) => (parsed.get(n) ?? []).map((x) => x.rawP99)))
  const rows: Row[] = [
    {
      contender: base,
      'p50 µs': fmt(rawP50 * 1000),
      'p99 µs': fmt(rawP99 * 1000),
      'p50 ÷ paired raw': '1.00',
      '64 in flight get ops/s': fmt(m(base, 'tput')),
      'get ÷ raw': '1.00',
      'get ÷ JSON raw': fmt(m(base, 'tput') / m(json, 'tput'), 2),
      '64 in flight getOrSet ops/s': '—',
      'getOrSet ÷ JSON raw': '—',
    },
    {
      contender: json,
      'p50 µs': '—',
      'p99 µs': '—',
      'p50 ÷ paired raw': '—',
      '64 in flight get ops/s': fmt(m(json, 'tput')),
      'get ÷ raw': fmt(m(json, 'tput') / m(base, 'tput'), 2),
      'get ÷ JSON raw': '1.00',
      '64 in flight getOrSet ops/s': '—',
      'getOrSet ÷ JSON raw': '—',
    },
    ...contenders.map((n) => ({
      contender: n,
      'p50 µs': fmt(m(n, 'p50') * 1000),
      'p99 µs': fmt(m(n, 'p99') * 1000),
      'p50 ÷ paired raw': fmt(median((parsed.get(n) ?? []).map((x) => x.p50 / x.rawP50)), 2),
      '64 in flight get ops/s': fmt(m(n, 'tput')),
      'get ÷ raw': fmt(m(n, 'tput') / m(base, 'tput'), 2),
      'get ÷ JSON raw': fmt(m(n, 'tput') / m(json, 'tput'), 2),
      '64 in flight getOrSet ops/s': fmt(m(n, 'tputGetOrSet')),
      'getOrSet ÷ JSON raw': fmt(m(n, 'tputGetOrSet') / m(json, 'tput'), 2),
    })),
  ]
  const p50r = median((parsed.get('strata:l2') ?? []).map((x) => x.p50 / x.rawP50))
  const tr = m('strata:l2', 'tput') / m(base, 'tput')
  const trJson = m('strata:l2', 'tput') / m(json, 'tput')
  const trGos = m('strata:l2', 'tputGetOrSet') / m(json, 'tput')
  const ll = (f: keyof L2) => m('strata:l2', f) / m('layered-loader:l2', f)
  return {
    scenario: 'l2-hit',
    title: 'L2 hit: L1 miss, Redis hit',
    method: `L2-only configurations (every get goes to Redis), 256 keys holding a ~300-byte object; latency: ${sequential} sequential gets, each paired with a raw ioredis getBuffer + msgpackr decode on its own connection in the same process (alternating call by call); throughput: 64 callers in flight for ${ms} ms, through get and through getOrSet (an L2 hit: the loader is not called); raw rows: ioredis (one command per call) with msgpackr decode, and GET + JSON.parse; ${warmup} unrecorded warm-up rounds, then ${rounds} interleaved rounds, medians`,
    isolation: ISOLATION_NOTE,
    columns: [
      'p50 µs',
      'p99 µs',
      'p50 ÷ paired raw',
      '64 in flight get ops/s',
      'get ÷ raw',
      'get ÷ JSON raw',
      '64 in flight getOrSet ops/s',
      'getOrSet ÷ JSON raw',
    ],
    rows,
    targets: [
      target('strata p50 ≤ 1.10× raw getBuffer + decode', p50r <= 1.1, `${fmt(p50r, 2)}×`),
      target(
        'strata get, 64 in flight ≥ 0.85× raw getBuffer + decode',
        tr >= 0.85,
        `${fmt(tr, 2)}×`,
      ),
      target(
        'strata get, 64 in flight ≥ 0.85× ioredis GET + JSON.parse',
        trJson >= 0.85,
        `${fmt(trJson, 2)}×`,
      ),
      target(
        'strata getOrSet, 64 in flight ≥ 0.85× ioredis GET + JSON.parse',
        trGos >= 0.85,
        `${fmt(trGos, 2)}×`,
      ),
      target('strata get ≥ 1.0× layered-loader', ll('tput') >= 1, `${fmt(ll('tput'), 2)}×`),
      target(
        'strata getOrSet ≥ 1.0× layered-loader',
        ll('tputGetOrSet') >= 1,
        `${fmt(ll('tputGetOrSet'), 2)}×`,
      ),
    ],
    skipped: [],
  }
}

// ---------------------------------------------------------------- 3. miss-load

export async function missLoad(ctx: Context): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 5 : 11
  // A round lasts ~40 ms: without warm-up rounds, a third of the medians' rounds measured
  // how fast each contender's code got compiled (rates climbed 3-4x over the first five).
  const warmup = ctx.quick ? 1 : 4
  const n = 1_000
  const names = ['raw:tiered', 'strata:tiered', 'layered-loader:tiered', 'bentocache:tiered']
  const pfx = new Map(names.map((x) => [x, prefix('miss')]))
  let seq = 0
  const res = await interleave(
    names,
    rounds,
    async (name) => {
      const [id, mode] = name.split(':') as [string, Mode]
      const a = await adapterFor(id, mode, ctx.redisUrl, pfx.get(name) as string)
      const batch = seq++
      const load = () => sleep(1).then(() => sampleObject(batch))
      const t = performance.now()
      await Promise.all(Array.from({ length: n }, (_, i) => a.getOrSet(`m${batch}:${i}`, load)))
      return (n * 1000) / (performance.now() - t)
    },
    warmup,
  )
  const base = median(res.get('raw:tiered') ?? [])
  const rows: Row[] = names.map((x) => ({
    contender: x === 'raw:tiered' ? 'hand-written lru-cache + ioredis getOrSet' : x,
    'ops/s': fmt(median(res.get(x) ?? [])),
    '÷ hand-written': fmt(median(res.get(x) ?? []) / base, 2),
  }))
  const r = median(res.get('strata:tiered') ?? []) / base
  const rll =
    median(res.get('strata:tiered') ?? []) / median(res.get('layered-loader:tiered') ?? [])
  return {
    scenario: 'miss-load',
    title: 'Miss and load: 1 000 concurrent getOrSet of distinct cold keys, 1 ms loader',
    method: `L1+L2+bus configurations; each round 1 000 distinct new keys at once; ops/s = 1 000 / wall time; ${warmup} unrecorded warm-up rounds, then ${rounds} interleaved rounds, medians`,
    isolation: 'all in the main process',
    columns: ['ops/s', '÷ hand-written'],
    rows,
    targets: [
      target('strata ≥ 0.9× the hand-written baseline', r >= 0.9, `${fmt(r, 2)}×`),
      target('strata ≥ 1.0× layered-loader', rll >= 1, `${fmt(rll, 2)}×`),
    ],
    skipped: ['cacheable, cache-manager: measured in l1-hit/l2-hit; not repeated here'],
  }
}

// ---------------------------------------------------------------- 4. batch

export async function batch(ctx: Context): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 3 : 7
  const a = await adapterFor('strata', 'l2', ctx.redisUrl, prefix('batch'))
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
  for (const k of keys.slice(0, 40)) await a.set(k, sampleObject(1))
  const names = ['100 sequential get', 'getMany(100)']
  const res = await interleave(names, rounds, async (name) => {
    const t = performance.now()
    for (let rep = 0; rep < 20; rep++) {
      if (name === 'getMany(100)') await a.getMany?.(keys)
      else for (const k of keys) await a.get(k)
    }
    return (performance.now() - t) / 20
  })
  const seq = median(res.get(names[0] as string) ?? [])
  const many = median(res.get(names[1] as string) ?? [])
  return {
    scenario: 'batch',
    title: 'Batch: 100 keys (40 cached) against Redis',
    method: `strata L2-only; time per batch of 100 keys, 20 batches per round, ${rounds} interleaved rounds, medians`,
    isolation: 'main process',
    columns: ['ms per 100 keys', 'speed-up'],
    rows: [
      {
        contender: 'strata: 100 sequential get',
        'ms per 100 keys': fmt(seq, 2),
        'speed-up': '1.00',
      },
      {
        contender: 'strata: getMany(100)',
        'ms per 100 keys': fmt(many, 2),
        'speed-up': fmt(seq / many, 2),
      },
    ],
    targets: [
      target(
        'getMany of 100 keys ≥ 5× faster than 100 sequential gets',
        seq / many >= 5,
        `${fmt(seq / many, 1)}×`,
      ),
    ],
    skipped: [],
  }
}

// ---------------------------------------------------------------- 5. stampede

export async function stampede(ctx: Context): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 3 : 5
  // Unrecorded rounds first, for every contender: without them the first rounds measured
  // each library's first compilation, and how warm it was depended on the scenarios run
  // before in the same process (`bench stampede` alone: Strata 1.80× bare, 1.2–1.3× in full runs).
  const warmup = ctx.quick ? 1 : 4
  const names = [
    'bare single-flight (Map of promises)',
    'strata:tiered',
    'bentocache:tiered',
    'async-cache-dedupe:l1',
  ]
  const pfx = new Map(names.map((x) => [x, prefix('st')]))
  const loads = new Map<string, number>(names.map((x) => [x, 0]))
  let seq = 0
  const res = await interleave(
    names,
    rounds,
    async (name, round) => {
      const key = `cold${seq++}`
      const loader = async () => {
        if (round >= warmup) loads.set(name, (loads.get(name) ?? 0) + 1)
        await sleep(20)
        return sampleObject(1)
      }
      if (name.startsWith('bare')) {
        const t = performance.now()
        const flights = new Map<string, Promise<unknown>>()
        const sf = (k: string) => {
          let p = flights.get(k)
          if (!p) flights.set(k, (p = loader().finally(() => flights.delete(k))))
          return p
        }
        await Promise.all(Array.from({ length: 1_000 }, () => sf(key)))
        return performance.now() - t
      }
      // Built (first round) or looked up before the clock starts: until the seventh session
      // the first round's total included building the cache and connecting it.
      const [id, mode] = name.split(':') as [string, Mode]
      const a = await adapterFor(id, mode, ctx.redisUrl, pfx.get(name) as string)
      const t = performance.now()
      await Promise.all(Array.from({ length: 1_000 }, () => a.getOrSet(key, loader)))
      return performance.now() - t
    },
    warmup,
  )
  const base = median(res.get(names[0] as string) ?? [])
  const rows: Row[] = names.map((x) => ({
    contender: x,
    'loader calls per round': fmt((loads.get(x) ?? 0) / rounds, 2),
    'total ms': fmt(median(res.get(x) ?? []), 1),
    '÷ bare': fmt(median(res.get(x) ?? []) / base, 2),
  }))
  // Across processes: 4 × 250 with the distributed lock.
  const redis = new Redis(ctx.redisUrl)
  const dist: number[] = []
  const distMs: number[] = []
  const procs = Array.from({ length: 4 }, (_, i) => worker(ctx, `stampede-${i}`))
  for (let r = 0; r < rounds; r++) {
    const p = prefix('dist')
    const out = await Promise.all(
      procs.map((w) =>
        w.request<{ start: number; end: number }>(
          {
            cmd: 'stampede',
            redisUrl: ctx.redisUrl,
            prefix: p,
            key: 'cold',
            callers: 250,
            loaderMs: 20,
          },
          60_000,
        ),
      ),
    )
    dist.push(Number(await redis.get(`${p}:loads`)))
    distMs.push(Math.max(...out.map((o) => o.end)) - Math.min(...out.map((o) => o.start)))
  }
  redis.disconnect()
  for (let i = 0; i < 4; i++) await closeWorker(ctx, `stampede-${i}`)
  rows.push({
    contender: 'strata, 4 processes × 250, distributedLock',
    'loader calls per round': fmt(median(dist), 2),
    'total ms': fmt(median(distMs), 1),
    '÷ bare': fmt(median(distMs) / base, 2),
  })
  const strataMs = median(res.get('strata:tiered') ?? [])
  const strataLoads = (loads.get('strata:tiered') ?? 0) / rounds
  return {
    scenario: 'stampede',
    title: 'Stampede: 1 000 concurrent getOrSet of one cold key, 20 ms loader',
    method: `a new cold key per round, ${warmup} unrecorded warm-up rounds, then ${rounds} interleaved rounds; total = time until all 1 000 callers have the value; the cross-process row forks 4 workers that start together`,
    isolation: 'main process; the distributed rows run in 4 child processes',
    columns: ['loader calls per round', 'total ms', '÷ bare'],
    rows,
    targets: [
      target('1 loader call in-process', strataLoads === 1, `${fmt(strataLoads, 2)} per round`),
      target(
        'in-process total ≤ 1.2× bare single-flight',
        strataMs / base <= 1.2,
        `${fmt(strataMs / base, 2)}×`,
      ),
      target(
        '1 loader call across 4 processes (distributedLock)',
        dist.every((d) => d === 1),
        `${dist.join(', ')} per round`,
      ),
    ],
    skipped: [],
  }
}

// ---------------------------------------------------------------- 6. propagation

export async function propagation(ctx: Context): Promise<ScenarioResult> {
  const samples = ctx.quick ? 40 : 150
  const rows: Row[] = []
  const cdf: Record<string, number[]> = {}
  const targets: Target[] = []
  for (const processes of [2, 4, 8]) {
    const names = ['raw:tiered', 'strata:tiered', 'bentocache:tiered']
    const stats = new Map<string, number[]>(names.map((n) => [n, []]))
    // Every contender has its own writer here and its own peers, all alive at once, and the
    // samples are interleaved (one per contender in rotation), so load and CPU placement
    // drift over the run affect every contender alike.
    const setups = new Map<
      string,
      { writer: Awaited<ReturnType<typeof adapterFor>>; peers: ChildHandle[] }
    >()
    for (const name of names) {
      const [id, mode] = name.split(':') as [string, Mode]
      const p = prefix('prop')
      const writer = await adapterFor(id, mode, ctx.redisUrl, p)
      const peers = Array.from({ length: processes - 1 }, (_, i) =>
        worker(ctx, `peer-${name}-${i}`),
      )
      await Promise.all(
        peers.map((w) =>
          w.request({ cmd: 'peer', contender: id, mode, redisUrl: ctx.redisUrl, prefix: p }),
        ),
      )
      setups.set(name, { writer, peers })
    }
    await sleep(300) // subscriptions settle (BentoCache has no ready signal)
    for (let s = 0; s < samples; s++) {
      for (let r = 0; r < names.length; r++) {
        const name = names[(s + r) % names.length] as string
        const { writer, peers } = setups.get(name) as {
          writer: Awaited<ReturnType<typeof adapterFor>>
          peers: ChildHandle[]
        }
        const key = `p${s % 10}`
        await writer.set(key, { n: -s })
        await sleep(2)
        await Promise.all(peers.map((w) => w.request({ cmd: 'warm', key })))
        const watching = peers.map((w) =>
          w.request<number | null>({ cmd: 'watch', key, expected: s, maxMs: 2_000 }),
        )
        await sleep(1)
        await writer.set(key, { n: s })
        const t0 = performance.timeOrigin + performance.now()
        for (const seen of await Promise.all(watching))
          stats.get(name)?.push(seen === null ? Number.POSITIVE_INFINITY : seen - t0)
      }
    }
    for (const name of names)
      for (let i = 0; i < processes - 1; i++) await closeWorker(ctx, `peer-${name}-${i}`)
    const base = stats.get('raw:tiered') ?? []
    for (const name of names) {
      const xs = stats.get(name) ?? []
      cdf[`${name} (${processes} processes)`] = [...xs].sort((a, b) => a - b)
      rows.push({
        contender: `${name === 'raw:tiered' ? 'raw SET+PUBLISH, peer drops L1 and GETs' : name} — ${processes} processes`,
        'p50 ms': fmt(Math.max(0, percentile(xs, 50)), 3),
        'p99 ms': fmt(Math.max(0, percentile(xs, 99)), 3),
        'p99.9 ms': fmt(Math.max(0, percentile(xs, 99.9)), 3),
        'p99 ÷ raw': fmt(percentile(xs, 99) / percentile(base, 99), 2),
      })
    }
    const s99 = percentile(stats.get('strata:tiered') ?? [], 99)
    const r99 = percentile(base, 99)
    const b99 = percentile(stats.get('bentocache:tiered') ?? [], 99)
    targets.push(
      target(
        `${processes} processes: strata p99 ≤ 1.5× raw`,
        s99 / r99 <= 1.5,
        `${fmt(s99 / r99, 2)}×`,
      ),
    )
    targets.push(
      target(
        `${processes} processes: strata p99 ≤ ⅓ BentoCache p99`,
        s99 <= b99 / 3,
        `${fmt(s99, 3)} ms vs ${fmt(b99, 3)} ms`,
      ),
    )
  }
  return {
    scenario: 'propagation',
    title: 'Propagation: set on A resolves → B’s next get returns the new value',
    method: `A is the main process, B… are child processes (one set per contender, all alive at once) that first hold the old value in L1 and then poll get() (yielding between calls); propagation = B's first wall-clock time seeing the new value − the time A's set resolved (same machine, performance.timeOrigin + now()); ${samples} writes per contender and size, interleaved across contenders`,
    isolation: 'peers are child processes (one replica each)',
    columns: ['p50 ms', 'p99 ms', 'p99.9 ms', 'p99 ÷ raw'],
    rows,
    targets,
    skipped: [],
    extra: { cdf },
  }
}

// ---------------------------------------------------------------- 7. hit-ratio

export async function hitRatio(ctx: Context): Promise<ScenarioResult> {
  const size = 1_000
  const keys = size * 10
  const requests = ctx.quick ? 30_000 : 100_000
  const names = [
    'raw:l1',
    'strata:l1',
    'strata-tinylfu:l1',
    'layered-loader:l1',
    'bentocache:l1',
    'cacheable:l1',
    'cache-manager:l1',
  ]
  const rows: Row[] = names.map((n) => ({ contender: n === 'raw:l1' ? 'lru-cache (raw)' : n }))
  const ratios = new Map<string, number>()
  const traces: [string, number, number | undefined][] = [
    ['s = 0.8', 0.8, undefined],
    ['s = 1', 1.0, undefined],
    ['s = 1.2', 1.2, undefined],
    ['scan-heavy', 1.0, 0.3],
  ]
  for (const [column, s, scan] of traces) {
    for (const [i, name] of names.entries()) {
      const [id, mode] = name.split(':') as [string, Mode]
      const round_: Round = { kind: 'hit-ratio', s, keys, requests, ...(scan ? { scan } : {}) }
      const ratio = (await round(ctx, id, mode, prefix('hr'), round_, size)) as number
      ratios.set(`${name} ${column}`, ratio)
      ;(rows[i] as Row)[column] = fmt(ratio * 100, 1) + '%'
    }
  }
  const gain = (column: string) =>
    ((ratios.get(`strata-tinylfu:l1 ${column}`) ?? 0) - (ratios.get(`raw:l1 ${column}`) ?? 0)) * 100
  return {
    scenario: 'hit-ratio',
    title: `Hit ratio: L1 bounded to ${size} entries, Zipf traffic over ${keys} keys`,
    method: `${requests} getOrSet calls per trace, the same seeded key sequence for every contender; hit ratio = 1 − loader calls / requests; scan-heavy: Zipf s = 1 with 30% of requests one-off keys`,
    isolation: ISOLATION_NOTE,
    columns: traces.map(([c]) => c),
    rows,
    targets: [
      target(
        "memoryL1 admission: 'tinylfu' ≥ 8 points above LRU at s = 0.8",
        gain('s = 0.8') >= 8,
        `${fmt(gain('s = 0.8'), 1)} points`,
      ),
      target(
        "admission: 'tinylfu' not below LRU on the scan-heavy trace",
        gain('scan-heavy') >= 0,
        `${fmt(gain('scan-heavy'), 1)} points`,
      ),
    ],
    skipped: ['async-cache-dedupe: its memory storage is not bounded by entries the same way'],
  }
}

// ---------------------------------------------------------------- 8. memory

export async function memory(ctx: Context): Promise<ScenarioResult> {
  const entries = ctx.quick ? 30_000 : 100_000
  const names = [
    'lru-cache',
    'strata',
    'strata-tinylfu',
    'bentocache',
    'cacheable',
    'cache-manager',
  ]
  const per = new Map<string, number[]>()
  for (let r = 0; r < (ctx.quick ? 1 : 3); r++) {
    for (const name of names) {
      const w = worker(ctx, `mem-${name}-${r}`, ['--expose-gc'])
      const bytes = await w.request<number>(
        { cmd: 'memory', contender: name, entries, redisUrl: ctx.redisUrl },
        120_000,
      )
      await closeWorker(ctx, `mem-${name}-${r}`)
      per.set(name, [...(per.get(name) ?? []), bytes])
    }
  }
  const base = median(per.get('lru-cache') ?? [])
  const rows: Row[] = names.map((n) => ({
    contender: n === 'lru-cache' ? 'lru-cache with TTL (raw)' : n,
    'bytes per entry': fmt(median(per.get(n) ?? [])),
    '÷ raw': fmt(median(per.get(n) ?? []) / base, 2),
  }))
  const ratio = median(per.get('strata') ?? []) / base
  const tiny = median(per.get('strata-tinylfu') ?? []) / base
  return {
    scenario: 'memory',
    title: `Memory: heap bytes per L1 entry (${entries} entries of a ~300-byte object)`,
    method:
      'a fresh child process per contender and round (--expose-gc); heapUsed + arrayBuffers (typed arrays such as the W-TinyLFU sketch live outside the heap) after − before creating the cache and inserting the entries (keys and values allocated inside the measurement, as in a real fill), divided by entries; L1-only configurations bounded to exactly that many entries',
    isolation: 'every measurement in its own process',
    columns: ['bytes per entry', '÷ raw'],
    rows,
    targets: [
      target('strata ≤ 1.2× raw lru-cache (with TTL)', ratio <= 1.2, `${fmt(ratio, 2)}×`),
      target(
        "admission: 'tinylfu' ≤ 1.2× raw lru-cache (with TTL)",
        tiny <= 1.2,
        `${fmt(tiny, 2)}×`,
      ),
    ],
    skipped: [],
  }
}

// ---------------------------------------------------------------- 9. codec

export async function codec(ctx: Context): Promise<ScenarioResult> {
  const ms = ctx.quick ? 150 : 400
  const rounds = ctx.quick ? 3 : 5
  const small = sampleObject(1)
  const big = { items: Array.from({ length: 30 }, (_, i) => sampleObject(i)) }
  const entry = (value: unknown): Entry => ({
    value,
    createdAt: 1,
    freshUntil: 2,
    staleUntil: 3,
    tags: [],
    version: 1,
  })
  const strataMp = msgpackCodec()
  const plain = new Packr({ useRecords: false })
  const plainU = new Unpackr({ useRecords: false })
  const records = new Packr({ useRecords: true })
  const recordsU = new Unpackr({ useRecords: true })
  const shared = new Packr({ structures: [] })
  const brotli = compressedCodec(strataMp, { algorithm: 'brotli' })
  const gzip = compressedCodec(strataMp, { algorithm: 'gzip' })
  const sealed = encryptedCodec(strataMp, { keys: { k: Buffer.alloc(32, 1) }, activeKeyId: 'k' })
  const codecs: Record<string, { enc: (v: Entry) => Uint8Array; dec: (b: Uint8Array) => unknown }> =
    {
      'JSON (strata jsonCodec)': {
        enc: (v) => jsonCodec.encode(v),
        dec: (b) => jsonCodec.decode(b),
      },
      'msgpackr maps': { enc: (v) => plain.pack(v), dec: (b): unknown => plainU.unpack(b) },
      'msgpackr records': { enc: (v) => records.pack(v), dec: (b): unknown => recordsU.unpack(b) },
      'msgpackr shared structures (needs a registry)': {
        enc: (v) => shared.pack(v),
        dec: (b): unknown => shared.unpack(b),
      },
      'strata msgpack codec (records + checks)': {
        enc: (v) => strataMp.encode(v),
        dec: (b) => strataMp.decode(b),
      },
      'compressedCodec(msgpack), brotli above 1 KB': {
        enc: (v) => brotli.encode(v),
        dec: (b) => brotli.decode(b),
      },
      'compressedCodec(msgpack), gzip above 1 KB': {
        enc: (v) => gzip.encode(v),
        dec: (b) => gzip.decode(b),
      },
      'encryptedCodec(msgpack), AES-256-GCM': {
        enc: (v) => sealed.encode(v, 'app::user:1'),
        dec: (b) => sealed.decode(b, 'app::user:1'),
      },
    }
  const names = Object.keys(codecs)
  const rows: Row[] = names.map((n) => ({ contender: n }))
  for (const [label, value] of [
    ['~300 B', small],
    ['~10 KB', big],
  ] as const) {
    const e = entry(value)
    const res = await interleave(names, rounds, async (n) => {
      const c = codecs[n] as (typeof codecs)[string]
      const bytes = c.enc(e)
      return throughputSync(() => c.dec(c.enc(e)) ?? bytes, ms)
    })
    const base = median(res.get('JSON (strata jsonCodec)') ?? [])
    names.forEach((n, i) => {
      const c = codecs[n] as (typeof codecs)[string]
      const row = rows[i] as Row
      row[`${label} enc+dec ops/s`] = fmt(median(res.get(n) ?? []))
      row[`${label} ÷ JSON`] = fmt(median(res.get(n) ?? []) / base, 2)
      row[`${label} bytes`] = c.enc(e).length
    })
  }
  return {
    scenario: 'codec',
    title: 'Codec: encode + decode of one entry',
    method: `round trips per second, ${ms} ms per codec per round, ${rounds} interleaved rounds, medians; ratio to JSON in the same run`,
    isolation: 'main process (nothing here loads @redis/client)',
    columns: [
      '~300 B enc+dec ops/s',
      '~300 B ÷ JSON',
      '~300 B bytes',
      '~10 KB enc+dec ops/s',
      '~10 KB ÷ JSON',
      '~10 KB bytes',
    ],
    rows,
    targets: [],
    skipped: [],
  }
}

// ---------------------------------------------------------------- 10. telemetry-overhead

export async function telemetryOverhead(ctx: Context): Promise<ScenarioResult> {
  const ms = ctx.quick ? 150 : 400
  const rounds = ctx.quick ? 5 : 9
  const noop: SpanExporter = {
    export: (_s: ReadableSpan[], done) => done({ code: ExportResultCode.SUCCESS }),
    shutdown: () => Promise.resolve(),
  }
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(noop)],
  })
  const variants = {
    'telemetry: false': createCache({ l1: memoryL1(), telemetry: false }),
    'telemetry on, no SDK': createCache({ l1: memoryL1() }),
    'telemetry on, SDK (no-op exporter)': createCache({
      l1: memoryL1(),
      telemetry: { tracerProvider },
    }),
  }
  for (const c of Object.values(variants)) await c.set('hot', sampleObject(1))
  const names = Object.keys(variants)
  const res = await interleave(names, rounds, (n) =>
    throughput(() => variants[n as keyof typeof variants].get('hot'), ms),
  )
  const base = median(res.get('telemetry: false') ?? [])
  const rows: Row[] = names.map((n) => ({
    contender: n,
    'get ops/s': fmt(median(res.get(n) ?? [])),
    '÷ off': fmt(median(res.get(n) ?? []) / base, 3),
  }))
  const r = median(res.get('telemetry on, no SDK') ?? []) / base
  for (const c of Object.values(variants)) await c.close()
  return {
    scenario: 'telemetry-overhead',
    title: 'Telemetry overhead on the L1-hit get path',
    method: `strata L1 only, one hot key; ${ms} ms per variant per round, ${rounds} interleaved rounds, medians`,
    isolation: 'main process',
    columns: ['get ops/s', '÷ off'],
    rows,
    targets: [target('on without an SDK within 10% of off', r >= 0.9, `${fmt(r, 3)}×`)],
    skipped: [],
  }
}

// ------------------------------------------------- propagation with a lone key

/**
 * Propagation when the written key is the only entry in the peer's L1, and when the
 * peer's L1 also holds 1 000 other keys: deleting lru-cache's last entry used to reset
 * its arrays (≈ 1 ms at 10 000 entries) on every invalidation of a lone key.
 */
export async function propagationLone(ctx: Context): Promise<ScenarioResult> {
  const samples = ctx.quick ? 30 : 120
  const names = ['raw:tiered', 'strata:tiered']
  const rows: Row[] = []
  const targets: Target[] = []
  for (const variant of ['alone in L1', 'with 1 000 other keys']) {
    const stats = new Map<string, number[]>(names.map((n) => [n, []]))
    const setups = new Map<string, { writer: CacheAdapter; peer: ChildHandle }>()
    for (const name of names) {
      const [id, mode] = name.split(':') as [string, Mode]
      const p = prefix('lone')
      const writer = await adapterFor(id, mode, ctx.redisUrl, p)
      const peer = worker(ctx, `lone-${name}-${variant}`)
      await peer.request({ cmd: 'peer', contender: id, mode, redisUrl: ctx.redisUrl, prefix: p })
      if (variant !== 'alone in L1') {
        const others = Array.from({ length: 1_000 }, (_, i) => `other${i}`)
        for (const k of others) await writer.set(k, { n: 0 })
        await peer.request({ cmd: 'warmMany', keys: others }, 60_000)
      }
      setups.set(name, { writer, peer })
    }
    await sleep(200)
    for (let s = 0; s < samples; s++) {
      for (let r = 0; r < names.length; r++) {
        const name = names[(s + r) % names.length] as string
        const { writer, peer } = setups.get(name) as { writer: CacheAdapter; peer: ChildHandle }
        await writer.set('solo', { n: -s })
        await sleep(2)
        await peer.request({ cmd: 'warm', key: 'solo' })
        const watching = peer.request<number | null>({
          cmd: 'watch',
          key: 'solo',
          expected: s,
          maxMs: 2_000,
        })
        await sleep(1)
        await writer.set('solo', { n: s })
        const t0 = performance.timeOrigin + performance.now()
        const seen = await watching
        stats.get(name)?.push(seen === null ? Number.POSITIVE_INFINITY : seen - t0)
      }
    }
    for (const name of names) await closeWorker(ctx, `lone-${name}-${variant}`)
    const raw50 = percentile(stats.get('raw:tiered') ?? [], 50)
    for (const name of names) {
      const xs = stats.get(name) ?? []
      rows.push({
        contender: `${name === 'raw:tiered' ? 'raw SET+PUBLISH, peer drops L1 and GETs' : name} — ${variant}`,
        'p50 ms': fmt(Math.max(0, percentile(xs, 50)), 3),
        'p99 ms': fmt(Math.max(0, percentile(xs, 99)), 3),
        'p50 ÷ raw': fmt(percentile(xs, 50) / raw50, 2),
      })
    }
    const r = percentile(stats.get('strata:tiered') ?? [], 50) / raw50
    targets.push(target(`${variant}: strata p50 ≤ 1.5× raw`, r <= 1.5, `${fmt(r, 2)}×`))
  }
  return {
    scenario: 'propagation-lone',
    title: 'Propagation of one key: alone in the peer L1, and among 1 000 others',
    method: `2 processes (writer here, one peer); each sample: write, peer warms the key, peer polls get() while the writer writes again; time from the write's acknowledgement to the peer serving the new value; ${samples} interleaved samples per contender and variant`,
    isolation: 'peer in a child process',
    columns: ['p50 ms', 'p99 ms', 'p50 ÷ raw'],
    rows,
    targets,
    skipped: ['bentocache: measured in propagation'],
  }
}

export const SCENARIOS: Record<string, (ctx: Context) => Promise<ScenarioResult>> = {
  'redis-work': (ctx) => redisWork(ctx.redisUrl, prefix('work')),
  'l1-hit': l1Hit,
  'propagation-lone': propagationLone,
  'l2-hit': l2Hit,
  'miss-load': missLoad,
  batch,
  stampede,
  propagation,
  'hit-ratio': hitRatio,
  memory,
  codec,
  'telemetry-overhead': telemetryOverhead,
  'write-behind': (ctx) => writeBehind(ctx.redisUrl, prefix('wb'), ctx.quick),
}
