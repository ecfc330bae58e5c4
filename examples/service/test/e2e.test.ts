import { startRedis, type RedisHandle } from '@strata/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Product } from '../dist/catalog.js'
import { openDatabase, type DatabaseHandle } from '../dist/database.js'
import { getJson, startReplica, type Replica, type ReplicaStats } from '../dist/replicas.js'

// Importing the compiled replica launcher needs `pnpm build` (turbo runs it before tests).
const databaseUrl = process.env['DATABASE_URL']
if (!databaseUrl) {
  console.log(
    '[e2e] DATABASE_URL is not set: the PostgreSQL variant is skipped; the PGlite variant runs',
  )
}

describe.each([
  { kind: 'pglite', url: null },
  { kind: 'postgresql', url: databaseUrl },
])('two replicas over real Redis and $kind', ({ kind, url }) => {
  const skip = kind === 'postgresql' && !url
  let redis: RedisHandle
  let db: DatabaseHandle
  let replicas: Replica[] = []

  beforeAll(async () => {
    if (skip) return
    redis = await startRedis()
    db = await openDatabase(100, url ?? null)
    replicas = await Promise.all(
      ['e2e-1', 'e2e-2'].map((name) =>
        startReplica(name, { redisUrl: redis.url, db: db.config, schema: db.schema }),
      ),
    )
  }, 60_000)
  afterAll(async () => {
    if (skip) return
    await Promise.all(replicas.map((r) => r.stop()))
    await db.close()
    await redis.stop()
  })

  it.skipIf(skip)(
    'a write through replica 1 is served by replica 2; /stats shows the tiers and the bus',
    async () => {
      const [one, two] = replicas as [Replica, Replica]
      const first = await getJson<Product>(`${two.url}/products/7`)
      expect(first.status).toBe(200)
      expect((await getJson<Product>(`${two.url}/products/7`)).body).toEqual(first.body) // now an L1 hit on replica 2
      const put = await getJson<Product>(`${one.url}/products/7`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ priceCents: first.body.priceCents + 1 }),
      })
      expect(put.status).toBe(200)
      let seen = first.body.priceCents
      for (let i = 0; i < 500 && seen !== put.body.priceCents; i++) {
        seen = (await getJson<Product>(`${two.url}/products/7`)).body.priceCents
      }
      expect(seen).toBe(first.body.priceCents + 1)
      const batch = await getJson<Product[]>(`${two.url}/products?ids=7,8,999999`)
      expect(batch.body.map((p) => p.id)).toEqual([7, 8])
      expect((await getJson(`${one.url}/products/999999`)).status).toBe(404)
      expect((await getJson(`${one.url}/products/8`, { method: 'DELETE' })).status).toBe(204)
      // The invalidation reaches replica 2 asynchronously (pub/sub): bounded wait.
      let status = 200
      for (let i = 0; i < 500 && status !== 404; i++) {
        status = (await getJson(`${two.url}/products/8`)).status
      }
      expect(status).toBe(404)
      const stats = (await getJson<ReplicaStats>(`${two.url}/stats`)).body
      expect(stats.replica).toBe('e2e-2')
      expect(stats.cache.l1.hits).toBeGreaterThanOrEqual(1)
      expect(stats.cache.bus.state).toBe('connected')
      expect(stats.cache.bus.received).toBeGreaterThanOrEqual(2)
      expect(stats.cache.loads).toBeGreaterThanOrEqual(2)
    },
  )
})

describe('two replicas with --write-behind (PGlite)', () => {
  let redis: RedisHandle
  let db: DatabaseHandle
  let replicas: Replica[] = []

  beforeAll(async () => {
    redis = await startRedis()
    db = await openDatabase(100, null)
    replicas = await Promise.all(
      ['wb-1', 'wb-2'].map((name) =>
        startReplica(name, {
          redisUrl: redis.url,
          db: db.config,
          schema: db.schema,
          writeBehind: true,
        }),
      ),
    )
  }, 60_000)
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()))
    await db.close()
    await redis.stop()
  })

  it('a PUT is served by the other replica at once and reaches the database through the queue', async () => {
    const [one, two] = replicas as [Replica, Replica]
    const before = (await getJson<Product>(`${two.url}/products/5`)).body
    const put = await getJson<Product>(`${one.url}/products/5`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ stock: before.stock + 7 }),
    })
    expect(put.status).toBe(200)
    let seen = before.stock
    for (let i = 0; i < 500 && seen !== before.stock + 7; i++) {
      seen = (await getJson<Product>(`${two.url}/products/5`)).body.stock
    }
    expect(seen).toBe(before.stock + 7)
    const pool = new pg.Pool(db.config)
    let stock: number | undefined
    for (let i = 0; i < 200 && stock !== before.stock + 7; i++) {
      const { rows } = await pool.query<{ stock: number }>(
        `SELECT stock FROM ${db.schema}.products WHERE id = 5`,
      )
      stock = rows[0]?.stock
      if (stock !== before.stock + 7) await new Promise((r) => setTimeout(r, 50))
    }
    await pool.end()
    expect(stock).toBe(before.stock + 7)
    const stats = (await getJson<ReplicaStats>(`${one.url}/stats`)).body
    expect(stats.repository?.enqueued).toBe(1)
  })
})
