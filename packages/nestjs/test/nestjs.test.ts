import {
  spawnChild,
  startRedis,
  waitFor,
  type ChildHandle,
  type RedisHandle,
} from '@strata/testing'
import { Redis } from 'ioredis'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/app.mjs', import.meta.url))
let server: RedisHandle
let admin: Redis
const apps: ChildHandle[] = []

beforeAll(async () => {
  server = await startRedis()
  admin = new Redis(server.url)
})
afterAll(async () => {
  await Promise.all(apps.map((a) => a.kill()))
  admin.disconnect()
  await server.stop()
})

async function boot(prefix: string): Promise<{ child: ChildHandle; base: string }> {
  const child = spawnChild(fixture, [], { REDIS_TEST_URL: server.url })
  apps.push(child)
  const { port } = await child.request<{ port: number }>({ cmd: 'init', prefix }, 60_000)
  return { child, base: `http://127.0.0.1:${port}` }
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON shape
async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init)
  return { status: res.status, body: (await res.json()) as T }
}

const put = (body: unknown): RequestInit => ({
  method: 'PUT',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

describe('@strata/nestjs: two NestJS applications (real processes) on real Redis', () => {
  it('@Cached coalesces into getOrSet, @CacheEvict on one app evicts the other’s L1, CACHE_MANAGER, health, close on shutdown', async () => {
    await admin.hset('db:products', '1', JSON.stringify({ price: 100 }))
    const a = await boot('nest')
    const b = await boot('nest')
    const price = async (base: string) =>
      (await json<{ price: number }>(`${base}/products/1`)).body.price
    expect(await price(b.base)).toBe(100)
    expect(await price(b.base)).toBe(100)
    const before = await b.child.request<{ loads: number; cache: { l1: { hits: number } } }>({
      cmd: 'stats',
    })
    expect(before.loads).toBe(1)
    expect(before.cache.l1.hits).toBeGreaterThanOrEqual(1)
    // 20 concurrent requests for a cold product: one load (getOrSet single-flight).
    await admin.hset('db:products', '2', JSON.stringify({ price: 7 }))
    const prices = await Promise.all(
      Array.from({ length: 20 }, () => json<{ price: number }>(`${b.base}/products/2`)),
    )
    expect(prices.every((p) => p.body.price === 7)).toBe(true)
    const after = await b.child.request<{ loads: number }>({ cmd: 'stats' })
    expect(after.loads).toBe(2)
    expect((await json(`${a.base}/products/1`, put({ price: 120 }))).status).toBe(200)
    await waitFor(async () => (await price(b.base)) === 120, 5_000, 'B serves the new price')
    // cache-manager code (the @nestjs/cache-manager token) shares the same tiers.
    expect(
      (await json(`${a.base}/products/manager/greeting`, put({ value: 'hello' }))).status,
    ).toBe(200)
    expect((await json<{ value: string }>(`${b.base}/products/manager/greeting`)).body.value).toBe(
      'hello',
    )
    const health = await json<{ strata: { status: string; cache: string } }>(
      `${a.base}/products/health/cache`,
    )
    expect(health.status).toBe(200)
    expect(health.body.strata).toMatchObject({ status: 'up', cache: 'ok' })
    expect(await a.child.request({ cmd: 'close' })).toEqual({ afterClose: 'E_CLOSED' })
    expect(await b.child.request({ cmd: 'close' })).toEqual({ afterClose: 'E_CLOSED' })
  }, 60_000)
})
