import { createCache, type Cache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { startRedis, waitFor, type RedisHandle } from '@strata/testing'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { strataFastify } from '../src/index.js'

let server: RedisHandle
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

/** A source of truth both app instances read and write. */
const db = new Map<string, { id: string; price: number }>([['1', { id: '1', price: 100 }]])
let dbReads = 0

/** One instance of a small service: its own cache and connections, on real Redis. */
async function app(): Promise<{ app: FastifyInstance; cache: Cache }> {
  const cache = createCache({
    prefix: 'fastify',
    l1: memoryL1(),
    l2: redisL2({ redis: server.url }),
    bus: redisPubSubBus({ redis: server.url }),
  })
  const fastify = Fastify()
  await fastify.register(strataFastify, { cache, healthRoute: '/health' })
  fastify.get<{ Params: { id: string } }>('/items/:id', async (req, reply) => {
    const item = await fastify.cache.getOrSet(`item:${req.params.id}`, () => {
      dbReads++
      return db.get(req.params.id) ?? null
    })
    return item ?? reply.code(404).send({ error: 'not found' })
  })
  fastify.put<{ Params: { id: string }; Body: { price: number } }>('/items/:id', async (req) => {
    const item = { id: req.params.id, price: req.body.price }
    db.set(req.params.id, item)
    await fastify.cache.delete(`item:${req.params.id}`)
    return item
  })
  await fastify.ready()
  return { app: fastify, cache }
}

describe('@strata/fastify with two instances on real Redis', () => {
  it('fastify.cache, a write on A evicts B’s L1 copy, health route, cache closed with the app', async () => {
    const a = await app()
    const b = await app()
    const read = async (x: FastifyInstance) =>
      (await x.inject({ method: 'GET', url: '/items/1' })).json<{ price: number }>().price
    expect(await read(b.app)).toBe(100)
    expect(await read(b.app)).toBe(100)
    expect(dbReads).toBe(1)
    expect(b.cache.stats().l1.hits).toBeGreaterThanOrEqual(1)
    const put = await a.app.inject({ method: 'PUT', url: '/items/1', payload: { price: 120 } })
    expect(put.statusCode).toBe(200)
    await waitFor(async () => (await read(b.app)) === 120, 5_000, 'B serves the new price')
    const health = await b.app.inject({ method: 'GET', url: '/health' })
    expect(health.statusCode).toBe(200)
    expect(health.json()).toMatchObject({ status: 'ok', bus: { state: 'connected' } })
    expect((await a.app.inject({ method: 'GET', url: '/items/404' })).statusCode).toBe(404)
    await a.app.close()
    await b.app.close()
    await expect(a.cache.set('x', 1)).rejects.toMatchObject({ code: 'E_CLOSED' })
    await expect(b.cache.set('x', 1)).rejects.toMatchObject({ code: 'E_CLOSED' })
  })

  it('a factory creates the cache at registration; close: false leaves it open', async () => {
    let created = 0
    const cache = createCache({ prefix: 'fastify2', l1: memoryL1() })
    const f = Fastify()
    await f.register(strataFastify, {
      cache: () => {
        created++
        return cache
      },
      close: false,
    })
    await f.ready()
    expect(f.cache).toBe(cache)
    await f.close()
    await f.cache.set('still', 'open')
    expect(created).toBe(1)
    await cache.close()
    await expect(
      Fastify()
        .register(strataFastify, {} as never)
        .ready(),
    ).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
  })
})
