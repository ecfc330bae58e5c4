/**
 * The demo's extra phases: warming the catalog from the CLI, an attack of ids that do not
 * exist (the Bloom guard in front of the database), and a replica restart measured with
 * and without warm start.
 */
import { createCache } from '@strata/core'
import { redisL2 } from '@strata/l2-redis'
import pg from 'pg'
import { Catalog } from './catalog.js'
import type { DatabaseHandle } from './database.js'
import { getJson, type Replica, type ReplicaStats } from './replicas.js'

const tty = process.stdout.isTTY
const line = (s: string) => process.stdout.write(tty ? `\r\x1b[2K${s}` : `${s}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Loads every product into L2 ahead of traffic, with a live progress line. */
export async function warmCatalog(
  redisUrl: string,
  db: DatabaseHandle,
  total: number,
): Promise<string> {
  const cache = createCache({
    prefix: 'catalog',
    l2: redisL2({ redis: redisUrl, commandTimeout: 1_000 }),
    ttl: '5m',
    grace: '1h',
    negativeTtl: '10s',
    telemetry: false,
  })
  const pool = new pg.Pool(db.config)
  const catalog = new Catalog(pool, db.schema)
  try {
    await cache.ready()
    const t0 = Date.now()
    const r = await cache.namespace('products').warm(catalog.allIds(), {
      batchSize: 100,
      concurrency: 4,
      options: { tags: ['products'] },
      loadMany: async (ids) => {
        const rows = await catalog.findMany(ids.map(Number))
        return new Map([...rows].map(([id, p]) => [String(id), p]))
      },
      onProgress: (p) =>
        line(
          `  warming: ${p.alreadyCached + p.loaded + p.notFound}/${total} (loaded ${p.loaded}, already cached ${p.alreadyCached})`,
        ),
    })
    if (tty) process.stdout.write('\n')
    return `${r.loaded} loaded, ${r.alreadyCached} already cached, ${r.notFound} not found, ${r.failed} failed in ${Date.now() - t0} ms (one loadMany per 100 ids, no bus message)`
  } finally {
    await cache.close()
    await pool.end()
  }
}

async function stats(replicas: Replica[]): Promise<ReplicaStats[]> {
  return Promise.all(
    replicas.map(async (r) => (await getJson<ReplicaStats>(`${r.url}/stats`)).body),
  )
}

/** A burst of GETs for ids that do not exist, spread over the replicas. */
export async function attack(replicas: Replica[], ms: number): Promise<string> {
  const before = await stats(replicas)
  let sent = 0
  let notFound = 0
  const until = Date.now() + ms
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (Date.now() < until && sent < 200_000) {
        const r = replicas[sent++ % replicas.length] as Replica
        const id = 1_000_000 + Math.floor(Math.random() * 1e9)
        if ((await getJson(`${r.url}/products/${id}`)).status === 404) notFound++
      }
    }),
  )
  const after = await stats(replicas)
  const delta = (f: (s: ReplicaStats) => number) =>
    after.reduce((n, s, i) => n + f(s) - f(before[i] as ReplicaStats), 0)
  const reads = delta((s) => s.databaseReads ?? 0)
  const rejected = delta((s) => s.repository?.guard?.rejected ?? 0)
  return `${sent} requests for ids that do not exist (${notFound} × 404): the guard rejected ${rejected}; database reads for them: ${reads} (${((100 * reads) / Math.max(1, sent)).toFixed(1)}%)`
}

/** L1 hit ratio of `r` over windows of 250 ms while `readers` read Zipf-hot products from it. */
async function ratios(
  r: Replica,
  productId: () => number,
  ms: number,
  stop: (ratio: number, elapsed: number) => boolean,
): Promise<number[]> {
  const out: number[] = []
  let running = true
  const readers = Array.from({ length: 8 }, async () => {
    while (running) await getJson(`${r.url}/products/${productId()}`).catch(() => undefined)
  })
  const t0 = Date.now()
  let prev = (await getJson<ReplicaStats>(`${r.url}/stats`)).body.cache.l1
  while (Date.now() - t0 < ms) {
    await sleep(250)
    const now = (await getJson<ReplicaStats>(`${r.url}/stats`)).body.cache.l1
    const hits = now.hits - prev.hits
    const lookups = hits + now.misses - prev.misses
    prev = now
    const ratio = lookups === 0 ? 0 : hits / lookups
    out.push(ratio)
    if (stop(ratio, Date.now() - t0)) break
  }
  running = false
  await Promise.all(readers)
  return out
}

/**
 * Restarts replica `index` cold, then with warm start, and reports how long each took to
 * reach 90% of the L1 hit ratio it had before (reads only, 8 concurrent readers).
 */
export async function restarts(
  replicas: Replica[],
  index: number,
  productId: () => number,
  start: (warmStart: number) => Promise<Replica>,
): Promise<string[]> {
  const steadyWindows = await ratios(replicas[index] as Replica, productId, 2_000, () => false)
  const steady = steadyWindows.reduce((a, b) => a + b, 0) / Math.max(1, steadyWindows.length)
  const target = 0.9 * steady
  const lines = [
    `  before: replica L1 hit ratio ${(100 * steady).toFixed(1)}% (target after a restart: ${(100 * target).toFixed(1)}%)`,
  ]
  for (const warm of [0, 2_000]) {
    await (replicas[index] as Replica).stop()
    const t0 = Date.now()
    const fresh = await start(warm)
    replicas[index] = fresh
    const startup = Date.now() - t0
    let reached = Number.NaN
    const windows = await ratios(fresh, productId, 15_000, (ratio, elapsed) => {
      if (ratio >= target) reached = elapsed
      return ratio >= target
    })
    lines.push(
      `  ${warm ? `warm start (${warm} keys)` : 'cold start'}: started in ${startup} ms; first 250 ms window ${(100 * (windows[0] ?? 0)).toFixed(1)}% L1 hits; ` +
        (Number.isFinite(reached)
          ? `reached ${(100 * target).toFixed(1)}% after ${(reached / 1000).toFixed(2)} s of traffic`
          : 'did not reach the target in 15 s'),
    )
  }
  return lines
}
