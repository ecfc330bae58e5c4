import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { SpanKind, trace } from '@opentelemetry/api'
import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { Redis } from 'ioredis'
import pg from 'pg'
import { Catalog, type Product } from './catalog.js'
import { cacheAside, writeBehind, type Patch } from './products.js'
import { setupTracing } from './tracing.js'

/**
 * One replica of the catalog service. By default reads are cache-aside through Strata
 * (`getOrSet` / `getOrSetMany`, tagged `products`) and writes go to the database first,
 * then `cache.delete()` tells every replica to drop its L1 copy. With `writeBehind`,
 * products are a write-behind repository (see products.ts).
 */
export interface ServiceOptions {
  replica: string
  port: number
  redisUrl: string
  db: pg.PoolConfig
  schema: string
  writeBehind?: boolean
  /** Keys to load into L1 from the fleet's hot set before serving (0 = cold start). */
  warmStart?: number
}

export interface Service {
  readonly port: number
  readonly cache: Cache
  close(): Promise<void>
}

const PRODUCT = /^\/products\/(\d+)$/

function send(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
  })
  res.end(json)
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let raw = ''
  for await (const chunk of req) {
    raw += String(chunk)
    if (raw.length > 64 * 1024) throw new Error('body too large')
  }
  const parsed: unknown = raw ? JSON.parse(raw) : {}
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('body must be a JSON object')
  return parsed as Record<string, unknown>
}

export async function startService(o: ServiceOptions): Promise<Service> {
  const pool = new pg.Pool(o.db)
  const catalog = new Catalog(pool, o.schema)
  const cache = createCache({
    prefix: 'catalog',
    l1: memoryL1({ maxEntries: 50_000, maxBytes: 64 * 1024 * 1024 }),
    l2: redisL2({ redis: o.redisUrl, commandTimeout: 250 }),
    bus: redisPubSubBus({ redis: o.redisUrl }),
    ttl: '5m',
    grace: '1h',
    negativeTtl: '10s',
    timeouts: { soft: 100, hard: 3_000 },
    // The demo restarts a replica mid-run: merge the hot set often enough to matter.
    hotSet: { interval: '2s' },
    ...(o.warmStart ? { warmStart: { keys: o.warmStart, budget: '3s' } } : {}),
  })
  cache.on('error', () => undefined) // counted in stats().errors; the service keeps serving
  await cache.ready()
  const queueRedis = o.writeBehind ? new Redis(o.redisUrl) : undefined
  const products = queueRedis ? writeBehind(cache, catalog, queueRedis) : cacheAside(cache, catalog)
  const tracer = trace.getTracer('example-service')
  let requests = 0

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++
    const url = new URL(req.url ?? '/', 'http://localhost')
    const match = PRODUCT.exec(url.pathname)
    if (req.method === 'GET' && match) {
      const id = Number(match[1])
      const product = await products.find(id)
      if (product) send(res, 200, product)
      else send(res, 404, { error: 'not found' })
      return
    }
    if (req.method === 'GET' && url.pathname === '/products') {
      const ids = (url.searchParams.get('ids') ?? '')
        .split(',')
        .map(Number)
        .filter((n) => Number.isSafeInteger(n) && n > 0)
        .slice(0, 500)
      const found = await products.findMany(ids)
      send(
        res,
        200,
        found.filter((p): p is Product => p !== null),
      )
      return
    }
    if (req.method === 'PUT' && match) {
      const id = Number(match[1])
      const body = await readJson(req)
      const patch: Patch = {}
      if (typeof body['name'] === 'string') patch.name = body['name']
      if (Number.isSafeInteger(body['priceCents'])) patch.priceCents = body['priceCents'] as number
      if (Number.isSafeInteger(body['stock'])) patch.stock = body['stock'] as number
      const updated = await products.update(id, patch)
      if (updated) send(res, 200, updated)
      else send(res, 404, { error: 'not found' })
      return
    }
    if (req.method === 'DELETE' && match) {
      const id = Number(match[1])
      const removed = await products.remove(id)
      send(res, removed ? 204 : 404, removed ? null : { error: 'not found' })
      return
    }
    if (req.method === 'GET' && url.pathname === '/stats') {
      send(res, 200, {
        replica: o.replica,
        pid: process.pid,
        requests,
        cache: cache.stats(),
        repository: products.repository(),
        databaseReads: catalog.reads,
      })
      return
    }
    if (req.method === 'GET' && url.pathname === '/health') {
      send(res, 200, { ok: true, bus: cache.stats().bus.state })
      return
    }
    send(res, 404, { error: 'no such route' })
  }

  const server = createServer((req, res) => {
    const route = PRODUCT.test(new URL(req.url ?? '/', 'http://localhost').pathname)
      ? '/products/:id'
      : (req.url ?? '/').split('?')[0]
    void tracer.startActiveSpan(
      `${req.method ?? 'GET'} ${route ?? '/'}`,
      { kind: SpanKind.SERVER, attributes: { 'service.replica': o.replica } },
      async (span) => {
        try {
          await handle(req, res)
        } catch (err) {
          if (!res.headersSent) send(res, 500, { error: (err as Error).message })
        } finally {
          span.setAttribute('http.status_code', res.statusCode)
          span.end()
        }
      },
    )
  })
  await new Promise<void>((resolve) => server.listen(o.port, '127.0.0.1', () => resolve()))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : o.port
  return {
    port,
    cache,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await cache.close()
      queueRedis?.disconnect()
      await pool.end()
    },
  }
}

/** Entry point of a replica process: configuration from the environment. */
async function main(): Promise<void> {
  const replica = process.env['REPLICA'] ?? `replica-${process.pid}`
  setupTracing(replica)
  const db = JSON.parse(process.env['DB_CONFIG'] ?? '{}') as pg.PoolConfig
  const service = await startService({
    replica,
    port: Number(process.env['PORT'] ?? 0),
    redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    db,
    schema: process.env['DB_SCHEMA'] ?? 'public',
    writeBehind: process.env['WRITE_BEHIND'] === '1',
    warmStart: Number(process.env['WARM_START'] ?? 0),
  })
  process.send?.({ ready: true, port: service.port })
  const stop = () => {
    void service.close().finally(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('disconnect', stop)
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) await main()
