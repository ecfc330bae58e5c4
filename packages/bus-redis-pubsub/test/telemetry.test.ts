import { fileURLToPath } from 'node:url'
import { spawnChild, startRedis, type ChildHandle, type RedisHandle } from '@strata/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/otel-replica.mjs', import.meta.url))

interface SpanInfo {
  name: string
  traceId: string
  spanId: string
  parentSpanId?: string
  events: string[]
  links: string[]
  attributes: Record<string, unknown>
}

describe('traces across two real replica processes', () => {
  let redis: RedisHandle
  let a: ChildHandle
  let b: ChildHandle
  beforeAll(async () => {
    redis = await startRedis()
    a = spawnChild(fixture, [], { CACHE_REDIS_URL: redis.url })
    b = spawnChild(fixture, [], { CACHE_REDIS_URL: redis.url })
    await Promise.all([
      a.request({ cmd: 'init', prefix: 'otel' }),
      b.request({ cmd: 'init', prefix: 'otel' }),
    ])
  })
  afterAll(async () => {
    await Promise.all([a.kill(), b.kill()])
    await redis.stop()
  })

  it("a set on replica A and the invalidation received on replica B share A's trace", async () => {
    await b.request({ cmd: 'set', key: 'warm', value: 0 })
    await a.request({ cmd: 'set', key: 'k', value: 'v1' })
    let received: SpanInfo | undefined
    for (let i = 0; i < 200 && !received; i++) {
      const spans = await b.request<SpanInfo[]>({ cmd: 'spans' })
      received = spans.find(
        (s) => s.name === 'cache.bus.receive' && s.attributes['bus.op'] === 'set',
      )
      if (!received) await new Promise((r) => setTimeout(r, 20))
    }
    const aSpans = await a.request<SpanInfo[]>({ cmd: 'spans' })
    const set = aSpans.find((s) => s.name === 'cache.set')
    expect(set).toBeDefined()
    expect(set!.events).toContain('cache.bus.publish')
    expect(received).toBeDefined()
    expect(received!.traceId).toBe(set!.traceId)
    expect(received!.parentSpanId).toBe(set!.spanId)
    expect(received!.links).toEqual([set!.traceId])
    expect(await b.request({ cmd: 'get', key: 'k' })).toBe('v1')
  })
})
