import { createCache, type Logger } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { startRedis, waitFor } from '@strata/testing'
import { describe, expect, it } from 'vitest'
import { redisL2 } from '../src/index.js'

/** A pino-shaped logger that records lines. */
function recorder() {
  const lines: { level: string; obj: object; msg: string | undefined; bindings: object }[] = []
  const make = (bindings: object): Logger => ({
    child: (b) => make({ ...bindings, ...b }),
    debug: (obj, msg) => lines.push({ level: 'debug', obj, msg, bindings }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg, bindings }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg, bindings }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg, bindings }),
  })
  return { lines, logger: make({}) }
}

describe('health and logging against a real redis-server', () => {
  it('health(): ok, then down while Redis is frozen (breaker open, PING fails), ok again after; logged without keys', async () => {
    const redis = await startRedis({ source: 'binary' })
    const { lines, logger } = recorder()
    try {
      const cache = createCache({
        prefix: 'health',
        l1: memoryL1(),
        l2: redisL2({
          redis: redis.url,
          commandTimeout: 100,
          breaker: { failures: 2, openFor: 200 },
        }),
        logger,
      })
      await cache.ready()
      await cache.set('secret-user-42', 1)
      const ok = await cache.health()
      expect(ok.status).toBe('ok')
      expect(ok.l2?.breaker).toBe('closed')
      expect(ok.l2?.pingMs).toBeGreaterThanOrEqual(0)
      expect(ok.bus.state).toBe('none')
      await redis.freeze()
      for (let i = 0; i < 3; i++) await cache.getOrSet(`miss-${i}`, () => i).catch(() => undefined)
      const down = await cache.health()
      expect(down.status).toBe('down')
      expect(down.l2?.pingMs).toBeUndefined()
      expect(
        lines.some((l) => l.level === 'warn' && (l.obj as { breaker?: string }).breaker === 'open'),
      ).toBe(true)
      await redis.thaw()
      await waitFor(async () => (await cache.health()).status === 'ok', 10_000, 'healthy again')
      await cache.getOrSet('after', () => 1)
      expect(lines.some((l) => (l.obj as { breaker?: string }).breaker === 'closed')).toBe(true)
      await cache.close()
      expect(lines.at(-1)?.msg).toBe('strata: cache closed')
      expect((await cache.health()).status).toBe('down')
      // Every line is bound to the library and cache; no line carries a key.
      for (const l of lines) {
        expect(l.bindings).toMatchObject({ lib: 'strata', cache: 'health' })
        expect(JSON.stringify(l)).not.toContain('secret-user-42')
        expect(JSON.stringify(l)).not.toContain('miss-')
      }
    } finally {
      await redis.stop()
    }
  })

  it('`await using` closes the cache at the end of the scope', async () => {
    const redis = await startRedis({ source: 'binary' })
    try {
      let outer: ReturnType<typeof createCache> | undefined
      {
        await using cache = createCache({ prefix: 'dispose', l2: redisL2({ redis: redis.url }) })
        outer = cache
        await cache.set('a', 1)
      }
      await expect(outer.set('b', 2)).rejects.toMatchObject({ code: 'E_CLOSED' })
    } finally {
      await redis.stop()
    }
  })

  it('refuses a logger without the pino methods', () => {
    expect(() =>
      createCache({ l1: memoryL1(), logger: { info: () => undefined } as never }),
    ).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
  })
})
