import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { forkService, startRedis, waitFor, type RedisHandle } from '@strata/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The compiled server (turbo builds before tests), started as real replica processes.
const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))
let redis: RedisHandle
const replicas: ChildProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  for (const r of replicas) r.kill('SIGKILL')
  await redis.stop()
})

const replica = () => forkService(SERVER, redis.url, replicas)

describe('the Fastify example: two replicas on real Redis', () => {
  it('a PUT on one replica is served by the other; 404 for unknown ids; health route', async () => {
    const [a, b] = await Promise.all([replica(), replica()])
    const get = async (base: string, id: string) => fetch(`${base}/products/${id}`)
    expect((await get(b, '1')).status).toBe(404) // cached "not found" on B
    const put = await fetch(`${a}/products/1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Tea', priceCents: 350 }),
    })
    expect(put.status).toBe(200)
    await waitFor(async () => (await get(b, '1')).status === 200, 5_000, 'B serves the new product')
    expect(await (await get(b, '1')).json()).toEqual({ id: '1', name: 'Tea', priceCents: 350 })
    const health = await fetch(`${b}/health/cache`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok' })
  })
})
