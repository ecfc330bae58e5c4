import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('./fixtures/require-all.cjs', import.meta.url))

describe('CommonJS consumers', () => {
  it('every public package can be require()d from a .cjs file and works', () => {
    const out = JSON.parse(
      execFileSync(process.execPath, [script], { encoding: 'utf8' }),
    ) as Record<string, unknown>
    expect(out['value']).toBe('from a CommonJS caller')
    expect(out['@strata/core']).toEqual(expect.arrayContaining(['createCache', 'CacheError']))
    expect(out['@strata/l1-memory']).toContain('memoryL1')
    expect(out['@strata/l2-redis']).toEqual(expect.arrayContaining(['redisL2', 'redisBloomGuard']))
    expect(out['@strata/bus-redis-pubsub']).toContain('redisPubSubBus')
    expect(out['@strata/write-behind-redis-streams']).toContain('redisStreamsWriteBehind')
    expect(out['@strata/keyv']).toContain('KeyvStrata')
    expect(out['@strata/fastify']).toContain('strataFastify')
  })
})
