import { Body, Controller, Get, Inject, NotFoundException, Param, Put } from '@nestjs/common'
import type { Cache as CacheManager } from 'cache-manager'
import { CACHE_MANAGER, CacheEvict, Cached, StrataHealthIndicator } from '@strata/nestjs'
import { Redis } from 'ioredis'

interface Product {
  id: string
  name: string
  priceCents: number
}

/** The "database" is a Redis hash so the example needs nothing but redis-server. */
const db = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379')

@Controller()
export class ProductsController {
  constructor(
    @Inject(CACHE_MANAGER) private readonly manager: CacheManager,
    private readonly health: StrataHealthIndicator,
  ) {}

  @Get('products/:id')
  @Cached({ key: (id: string) => `product:${id}`, ttl: '5m' })
  async find(@Param('id') id: string): Promise<Product> {
    const raw = await db.hget('db:products', id)
    if (raw === null) throw new NotFoundException()
    return JSON.parse(raw) as Product
  }

  @Put('products/:id')
  @CacheEvict({ keys: (id: string) => [`product:${id}`] })
  async update(@Param('id') id: string, @Body() body: Omit<Product, 'id'>): Promise<Product> {
    const product = { id, name: body.name, priceCents: body.priceCents }
    await db.hset('db:products', id, JSON.stringify(product))
    return product
  }

  /** Code written against @nestjs/cache-manager keeps working on Strata's tiers. */
  @Get('greeting')
  async greeting(): Promise<{ value: unknown }> {
    const value = (await this.manager.get<string>('greeting')) ?? 'hello'
    await this.manager.set('greeting', value, 60_000)
    return { value }
  }

  @Get('health/cache')
  check() {
    return this.health.isHealthy('strata')
  }
}
