/**
 * `pnpm demo`: Redis (REDIS_URL or a local redis-server), a database (DATABASE_URL or an
 * embedded PGlite), three replicas of the catalog service as separate processes, a mixed
 * read/write load with a live display, a visible write on replica 1 that replicas 2 and 3
 * pick up, a summary, and one request's trace tree. `--write-behind`: product updates go
 * through a write-behind repository; the queue is shown draining and the database checked
 * to hold every acknowledged write.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startRedis, type RedisHandle } from '@strata/testing'
import { openDatabase, type DatabaseHandle } from './database.js'
import type { Product } from './catalog.js'
import { getJson, startReplica, type Replica, type ReplicaStats } from './replicas.js'
import { Catalog } from './catalog.js'
import { attack, restarts, warmCatalog } from './demo-phases.js'
import { Redis } from 'ioredis'
import pg from 'pg'

const SECONDS = Number(process.env['DEMO_SECONDS'] ?? 20)
const PRODUCTS = 1_000
const CONSOLE_TRACES = process.argv.includes('--console-traces')
const WRITE_BEHIND = process.argv.includes('--write-behind')
const TRACE_FILE = fileURLToPath(new URL('../traces.jsonl', import.meta.url))
const tty = process.stdout.isTTY

const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s)
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s)
const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s)
const pct = (n: number, d: number) =>
  d === 0 ? '  -  ' : `${((100 * n) / d).toFixed(1).padStart(5)}%`

let redis: RedisHandle | undefined
let db: DatabaseHandle | undefined
let replicas: Replica[] = []
let stopping = false

async function cleanup(): Promise<void> {
  await Promise.allSettled(replicas.map((r) => r.stop()))
  replicas = []
  await db?.close().catch(() => undefined)
  db = undefined
  await redis?.stop().catch(() => undefined)
  redis = undefined
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    process.stdout.write(`\n${signal}: stopping replicas, database and Redis…\n`)
    void cleanup().finally(() => process.exit(130))
  })
}

function statsLine(stats: ReplicaStats[]): string {
  return stats
    .map((s) => {
      const c = s.cache
      const lookups = c.l1.hits + c.l1.misses
      return `${s.replica}: L1 ${pct(c.l1.hits, lookups)} L2 ${pct(c.l2.hits, lookups)} db ${pct(c.loads, lookups)} bus ${c.bus.state}`
    })
    .join(' | ')
    .concat(WRITE_BEHIND ? ` | ${queueLine(stats)}` : '')
}

/** Write-behind queue: depth (all replicas, as sampled) and what the workers persisted. */
function queueLine(stats: ReplicaStats[]): string {
  const q = stats.map((s) => s.repository).filter((x) => x !== undefined)
  const depth = Math.max(0, ...q.map((x) => x.pending))
  const persisted = q.reduce((n, x) => n + x.persisted, 0)
  const superseded = q.reduce((n, x) => n + x.superseded, 0)
  return `queue ${String(depth).padStart(4)} persisted ${persisted} coalesced ${superseded}`
}

/** --write-behind: shows the queue draining, then checks the database holds every write. */
async function drain(): Promise<{ lost: number; ids: number }> {
  console.log(`\n${bold('Write-behind drain')}: the replicas' workers persist what is queued`)
  const until = Date.now() + 60_000
  for (;;) {
    const stats = await allStats()
    const line = `  ${queueLine(stats)}, in flight ${stats.reduce((n, s) => n + (s.repository?.inFlight ?? 0), 0)}`
    process.stdout.write(tty ? `\r\x1b[2K${line}` : `${line}\n`)
    const idle = stats.every((s) => s.repository?.pending === 0 && s.repository.inFlight === 0)
    if (idle || Date.now() > until) break
    await new Promise((r) => setTimeout(r, 250))
  }
  if (tty) process.stdout.write('\n')
  // Every id's newest queued version (Redis) must be the one the database holds.
  const queued = new Redis((redis as RedisHandle).url)
  const versions = await queued.hgetall('{catalog:wb:products:0}:v')
  queued.disconnect()
  const pool = new pg.Pool((db as DatabaseHandle).config)
  const catalog = new Catalog(pool, (db as DatabaseHandle).schema)
  const held = await catalog.writeVersions()
  await pool.end()
  const lost = Object.entries(versions).filter(([id, v]) => (held.get(Number(id)) ?? 0) < Number(v))
  const line = `  ${Object.keys(versions).length} products written through the queue; the database holds the newest acknowledged write of ${Object.keys(versions).length - lost.length} (${lost.length} lost)`
  console.log(lost.length === 0 ? green(line) : line)
  return { lost: lost.length, ids: Object.keys(versions).length }
}

async function allStats(): Promise<ReplicaStats[]> {
  return Promise.all(
    replicas.map(async (r) => (await getJson<ReplicaStats>(`${r.url}/stats`)).body),
  )
}

/** Hot products are read far more often than cold ones (roughly Zipf-like). */
function productId(): number {
  return 1 + Math.floor(PRODUCTS * Math.random() ** 3)
}

async function drive(): Promise<{
  requests: number
  errors: number
  writes: number
  batches: number
}> {
  const deadline = Date.now() + SECONDS * 1_000
  const totals = { requests: 0, errors: 0, writes: 0, batches: 0 }
  let next = 0
  const worker = async () => {
    // Bounded by time and by count.
    while (Date.now() < deadline && totals.requests < 5_000_000 && !stopping) {
      const replica = replicas[next++ % replicas.length] as Replica
      const dice = Math.random()
      try {
        if (dice < 0.88) {
          await getJson(`${replica.url}/products/${productId()}`)
        } else if (dice < 0.94) {
          const ids = Array.from({ length: 20 }, productId).join(',')
          await getJson(`${replica.url}/products?ids=${ids}`)
          totals.batches++
        } else {
          const id = productId()
          await getJson(`${replica.url}/products/${id}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ stock: Math.floor(Math.random() * 100) }),
          })
          totals.writes++
        }
      } catch {
        totals.errors++
      }
      totals.requests++
    }
  }
  const started = Date.now()
  const display = setInterval(() => {
    void allStats().then(
      (stats) => {
        const elapsed = (Date.now() - started) / 1_000
        const line = `${dim(`[${elapsed.toFixed(0).padStart(2)}s]`)} ${String(totals.requests).padStart(7)} req ${String(Math.round(totals.requests / elapsed)).padStart(5)}/s  ${statsLine(stats)}`
        process.stdout.write(tty ? `\r\x1b[2K${line}` : `${line}\n`)
      },
      () => undefined,
    )
  }, 1_000)
  await Promise.all(Array.from({ length: 24 }, worker))
  clearInterval(display)
  if (tty) process.stdout.write('\n')
  return totals
}

async function visibleWrite(): Promise<{ replica: string; ms: number }[]> {
  const id = 42
  const [first, ...others] = replicas as [Replica, ...Replica[]]
  for (const r of replicas) await getJson(`${r.url}/products/${id}`) // every replica holds it in L1
  const before = (await getJson<Product>(`${first.url}/products/${id}`)).body
  const newPrice = before.priceCents + 100
  console.log(
    `\n${bold('A visible write')}: product ${id} costs ${before.priceCents} cents on every replica.`,
  )
  const put = await getJson<Product>(`${first.url}/products/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ priceCents: newPrice }),
  })
  const t0 = performance.now()
  console.log(
    `  ${first.name}: PUT /products/${id} {"priceCents": ${newPrice}} → ${put.status} ${WRITE_BEHIND ? '(queued durably, cache updated, invalidation published)' : '(database updated, cache.delete() published)'}`,
  )
  const results = await Promise.all(
    others.map(async (r) => {
      for (let i = 0; i < 5_000; i++) {
        const { body } = await getJson<Product>(`${r.url}/products/${id}`)
        if (body.priceCents === newPrice) return { replica: r.name, ms: performance.now() - t0 }
      }
      return { replica: r.name, ms: Number.NaN }
    }),
  )
  for (const r of results) {
    console.log(
      `  ${r.replica}: GET /products/${id} → ${newPrice} cents, ${green(`${r.ms.toFixed(2)} ms`)} after the write returned (includes the HTTP round trip)`,
    )
  }
  return results
}

function summary(stats: ReplicaStats[]): void {
  console.log(`\n${bold('Summary')}`)
  const head = [
    'replica',
    'requests',
    'L1 hits',
    'L2 hits',
    'db loads',
    'coalesced',
    'L1 ratio',
    'bus',
    'published',
    'received',
    'degraded',
  ]
  const rows = stats.map((s) => {
    const c = s.cache
    const lookups = c.l1.hits + c.l1.misses
    return [
      s.replica,
      s.requests,
      c.l1.hits,
      c.l2.hits,
      c.loads,
      c.coalesced,
      pct(c.l1.hits, lookups).trim(),
      c.bus.state,
      c.bus.published,
      c.bus.received,
      c.bus.degradedCount,
    ].map(String)
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const fmt = (cells: string[]) => '  ' + cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ')
  console.log(fmt(head))
  for (const r of rows) console.log(fmt(r))
}

interface SpanLine {
  replica: string
  name: string
  traceId: string
  spanId: string
  parentSpanId?: string
  durationMs: number
  attributes: Record<string, unknown>
  events: string[]
}

function printTrace(): void {
  if (CONSOLE_TRACES) {
    console.log(`\nTraces went to each replica's console (--console-traces).`)
    return
  }
  if (!existsSync(TRACE_FILE)) return
  const spans = readFileSync(TRACE_FILE, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SpanLine)
  const loaded = spans.find(
    (s) =>
      s.name === 'cache.getOrSet' &&
      s.attributes['cache.tier'] === 'loader' &&
      spans.some((c) => c.parentSpanId === s.spanId && c.name === 'cache.load'),
  )
  console.log(`\n${bold('Traces')}: ${spans.length} spans in ${TRACE_FILE}`)
  if (!loaded) return
  const inTrace = spans.filter((s) => s.traceId === loaded.traceId)
  const root = inTrace.find((s) => !inTrace.some((p) => p.spanId === s.parentSpanId)) ?? loaded
  console.log(`One request that missed every tier (trace ${root.traceId}):`)
  const walk = (s: SpanLine, indent: string) => {
    const a = s.attributes
    const tier =
      a['cache.tier'] !== undefined
        ? ` cache.tier=${a['cache.tier'] as string} cache.hit=${(a['cache.hit'] as boolean) ? 'true' : 'false'}`
        : ''
    console.log(`${indent}${s.name}${tier}  ${dim(`${s.durationMs.toFixed(2)} ms, ${s.replica}`)}`)
    for (const c of inTrace.filter((x) => x.parentSpanId === s.spanId)) walk(c, `${indent}  `)
  }
  walk(root, '  ')
  const hit = spans.find((s) => s.name === 'cache.getOrSet' && s.attributes['cache.tier'] === 'l1')
  if (hit)
    console.log(
      `  … and an L1 hit: ${hit.name} cache.tier=l1 ${dim(`${hit.durationMs.toFixed(3)} ms`)}`,
    )
}

async function main(): Promise<void> {
  console.log(bold('Strata demo: 3 replicas of a catalog service sharing Redis and PostgreSQL'))
  if (process.env['REDIS_URL']) {
    console.log(`Redis: ${process.env['REDIS_URL']} (REDIS_URL)`)
    redis = {
      url: process.env['REDIS_URL'],
      host: '',
      port: 0,
      source: 'url',
      stop: async () => undefined,
      kill: async () => undefined,
      freeze: async () => undefined,
      thaw: async () => undefined,
      restart: async () => undefined,
    }
  } else {
    redis = await startRedis()
    console.log(
      `Redis: started ${redis.source === 'container' ? 'a container' : 'redis-server'} at ${redis.url}`,
    )
  }
  db = await openDatabase(PRODUCTS)
  console.log(
    `Database: ${db.kind === 'pglite' ? 'embedded PostgreSQL (PGlite) served on ' + String(db.config.port) : 'PostgreSQL (DATABASE_URL)'}, schema ${db.schema}, ${PRODUCTS} products`,
  )
  rmSync(TRACE_FILE, { force: true })
  const env = {
    redisUrl: redis.url,
    db: db.config,
    schema: db.schema,
    traceFile: CONSOLE_TRACES ? undefined : TRACE_FILE,
    traceConsole: CONSOLE_TRACES,
    writeBehind: WRITE_BEHIND,
  }
  replicas = await Promise.all(
    ['replica-1', 'replica-2', 'replica-3'].map((name) => startReplica(name, env)),
  )
  console.log(
    `Replicas: ${replicas.map((r) => `${r.name} (pid ${String(r.process.pid)}) ${r.url}`).join(', ')}`,
  )
  console.log(
    `\n${bold('Warming')}: every product into L2 before traffic (cache.warm from this CLI)`,
  )
  console.log(`  ${await warmCatalog(redis.url, db, PRODUCTS)}`)
  console.log(
    `\n${bold(`Mixed load for ${SECONDS} s`)} (88% GET one, 6% GET batch of 20, 6% PUT${WRITE_BEHIND ? ' through a write-behind repository' : ''}; round-robin over the replicas)`,
  )
  const totals = await drive()
  if (stopping) return
  console.log(
    `  ${totals.requests} requests (${totals.writes} writes, ${totals.batches} batches), ${totals.errors} errors`,
  )
  const propagation = await visibleWrite()
  const drained = WRITE_BEHIND ? await drain() : { lost: 0 }
  console.log(
    `\n${bold('Attack')}: 3 s of GETs for random ids that do not exist (Bloom-filter guard on)`,
  )
  console.log(`  ${await attack(replicas, 3_000)}`)
  console.log(
    `\n${bold('Restart')}: replica-3 restarted cold, then with warm start (the fleet's hot keys from L2 into L1 before it serves)`,
  )
  for (const l of await restarts(replicas, 2, productId, (warmStart) =>
    startReplica('replica-3', { ...env, warmStart }),
  )) {
    console.log(l)
  }
  summary(await allStats())
  if (WRITE_BEHIND) console.log(`  write-behind: ${drained.lost} acknowledged writes lost`)
  printTrace()
  await cleanup()
  const ok =
    totals.errors === 0 && propagation.every((p) => Number.isFinite(p.ms)) && drained.lost === 0
  console.log(`\n${ok ? green('Done') : 'Done with errors'}: replicas, database and Redis stopped.`)
  process.exitCode = ok ? 0 : 1
}

main().catch(async (err: unknown) => {
  if (stopping) return // Ctrl-C: the signal handler is already cleaning up
  console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`)
  await cleanup()
  process.exit(1)
})
