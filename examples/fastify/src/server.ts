import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { strataFastify } from '@strata/fastify'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'

interface Product {
  id: string
  name: string
  priceCents: number
}

/**
 * One replica: Fastify with `@strata/fastify`, products as a read-through, write-through
 * repository. The "database" here is a Redis hash (`db:products`) so the example runs
 * with nothing but redis-server; swap `db` for your SQL client.
 */
export async function buildApp(redisUrl: string): Promise<FastifyInstance> {
  const db = new Redis(redisUrl)
  const app = Fastify()
  await app.register(strataFastify, {
    cache: () =>
      createCache({
        prefix: 'fastify-example',
        l1: memoryL1({ maxEntries: 10_000 }),
        l2: redisL2({ redis: redisUrl }),
        bus: redisPubSubBus({ redis: redisUrl }),
        ttl: '5m',
      }),
    healthRoute: '/health/cache',
  })
  app.addHook('onClose', () => {
    db.disconnect()
  })
  const products = app.cache.repository<Product>('products', {
    load: async (id) => {
      const raw = await db.hget('db:products', id)
      return raw === null ? null : (JSON.parse(raw) as Product)
    },
    save: async (id, value) => {
      await db.hset('db:products', id, JSON.stringify(value))
    },
  })
  app.get<{ Params: { id: string } }>('/products/:id', async (req, reply) => {
    const product = await products.get(req.params.id)
    return product ?? reply.code(404).send({ error: 'not found' })
  })
  // Write-through: the database first, then every replica's cache.
  app.put<{ Params: { id: string }; Body: Omit<Product, 'id'> }>('/products/:id', async (req) => {
    const product = { id: req.params.id, name: req.body.name, priceCents: req.body.priceCents }
    await products.set(product.id, product)
    return product
  })
  app.get('/stats', () => app.cache.stats())
  return app
}

/** Entry point of a replica process. */
async function main(): Promise<void> {
  const app = await buildApp(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')
  await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1' })
  const address = app.server.address()
  process.send?.({ ready: true, port: typeof address === 'object' && address ? address.port : 0 })
  const stop = () => void app.close().finally(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) await main()
