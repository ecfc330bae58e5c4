import type { Cache } from '@strata/core'
import { invalidOption } from '@strata/core'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface StrataFastifyOptions {
  /** The cache, or a function that creates it (called once, at registration). */
  cache: Cache | (() => Cache | Promise<Cache>)
  /** Register `GET <path>` answering `cache.health()`: 200 unless `down` (503). @default false */
  healthRoute?: string | false
  /** Close the cache on Fastify's `onClose`. @default true */
  close?: boolean
  /** Wait for `cache.ready()` before the server starts (a failure is logged, not fatal). @default true */
  waitReady?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The Strata cache registered by `@strata/fastify`. */
    cache: Cache
  }
}

async function plugin(fastify: FastifyInstance, options: StrataFastifyOptions): Promise<void> {
  const given = (options as Partial<StrataFastifyOptions>).cache
  if (given === undefined) throw invalidOption('fastify', 'cache', 'is required')
  const cache = typeof given === 'function' ? await given() : given
  fastify.decorate('cache', cache)
  if (options.close !== false) fastify.addHook('onClose', () => cache.close())
  if (options.waitReady !== false) {
    await cache.ready().catch((err: unknown) => {
      fastify.log.warn({ err: (err as Error).message }, 'strata: cache not ready at start')
    })
  }
  const path = options.healthRoute
  if (path) {
    fastify.get(path, async (_request, reply) => {
      const health = await cache.health()
      return reply.code(health.status === 'down' ? 503 : 200).send(health)
    })
  }
}

/**
 * `fastify.register(strataFastify, { cache })`: decorates `fastify.cache`, closes it when
 * Fastify closes, and optionally serves its health. See docs/fastify.md.
 */
export const strataFastify = fp(plugin, { name: '@strata/fastify', fastify: '5.x' })
export default strataFastify
