import 'reflect-metadata'
import { Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { StrataModule } from '@strata/nestjs'
import { ProductsController } from './products.controller'

const redis = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'

@Module({
  imports: [
    StrataModule.forRootAsync({
      useFactory: () => ({
        cache: {
          prefix: 'nest-example',
          l1: memoryL1({ maxEntries: 10_000 }),
          l2: redisL2({ redis }),
          bus: redisPubSubBus({ redis }),
        },
      }),
    }),
  ],
  controllers: [ProductsController],
})
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module is a decorated class
class AppModule {}

async function main(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest's options are plain objects
  const app = await NestFactory.create(AppModule, { logger: false })
  app.enableShutdownHooks()
  await app.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1')
  const server = app.getHttpServer() as { address(): { port: number } }
  const address = server.address()
  process.send?.({ ready: true, port: address.port })
  process.on('disconnect', () => void app.close().finally(() => process.exit(0)))
}

void main()
