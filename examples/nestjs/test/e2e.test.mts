import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { forkService, startRedis, waitFor, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The compiled CommonJS build (turbo builds before tests), started as real replica processes.
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url))
let redis: RedisHandle
const replicas: ChildProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  for (const r of replicas) r.kill('SIGKILL')
  await redis.stop()
})

const replica = () => forkService(MAIN, redis.url, replicas)

describe('the NestJS example (compiled to CommonJS): two replicas on real Redis', () => {
  it('is CommonJS; @Cached / @CacheEvict across replicas; CACHE_MANAGER; health', async () => {
    const compiled = readFileSync(MAIN, 'utf8')
    expect(compiled).toContain('require("@strata/nestjs")')
    expect(compiled).not.toMatch(/^import /m)
    const admin = new Redis(redis.url)
    await admin.hset('db:products', '1', JSON.stringify({ id: '1', name: 'Tea', priceCents: 350 }))
    admin.disconnect()
    const [a, b] = await Promise.all([replica(), replica()])
    const price = async (base: string) =>
      ((await (await fetch(`${base}/products/1`)).json()) as { priceCents: number }).priceCents
    expect(await price(b)).toBe(350)
    const put = await fetch(`${a}/products/1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Tea', priceCents: 400 }),
    })
    expect(put.status).toBe(200)
    await waitFor(async () => (await price(b)) === 400, 5_000, 'B serves the new price')
    expect((await fetch(`${b}/products/404`)).status).toBe(404)
    expect(await (await fetch(`${a}/greeting`)).json()).toEqual({ value: 'hello' })
    const health = await fetch(`${b}/health/cache`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ strata: { status: 'up', cache: 'ok' } })
  })
})
