import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
} from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base'
import {
  createCache,
  errors,
  INSTRUMENTATION_NAME,
  memoryL2,
  MemoryBusHub,
  type Cache,
} from '@strata/core'
import { createFakeClock } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { deferred, settle } from './matrix.js'

class TestReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
}

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
})

describe('OpenTelemetry', () => {
  let exporter: InMemorySpanExporter
  let reader: TestReader
  let tracerProvider: BasicTracerProvider
  let meterProvider: MeterProvider
  let cache: Cache
  const clock = createFakeClock()

  const make = (options: Parameters<typeof createCache>[0]) =>
    createCache({
      prefix: 'otel',
      clock,
      telemetry: { tracerProvider, meterProvider, keys: 'hashed' },
      ...options,
    })

  beforeEach(() => {
    exporter = new InMemorySpanExporter()
    tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    })
    reader = new TestReader()
    meterProvider = new MeterProvider({ readers: [reader] })
  })
  afterEach(async () => {
    await cache.close()
  })

  const spans = (name?: string): ReadableSpan[] =>
    exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name)

  async function metric(name: string) {
    const { resourceMetrics } = await reader.collect()
    for (const sm of resourceMetrics.scopeMetrics) {
      expect(sm.scope.name).toBe(INSTRUMENTATION_NAME)
      for (const m of sm.metrics) if (m.descriptor.name === name) return m.dataPoints
    }
    return []
  }

  it('L1 hit, L2 hit and loader miss: one span each with the tier that answered; the load has a cache.load child', async () => {
    const l2 = memoryL2({ clock })
    cache = make({ l1: memoryL1({ clock }), l2 })
    const other = make({ l2, name: 'writer' }) // writes L2 only
    await cache.getOrSet('a', () => 'loaded')
    await cache.getOrSet('a', () => 'unused')
    await other.set('b', 'from-l2')
    await cache.getOrSet('b', () => 'unused')
    const ops = spans('cache.getOrSet')
    expect(ops.map((s) => s.attributes['cache.tier'])).toEqual(['loader', 'l1', 'l2'])
    expect(ops.map((s) => s.attributes['cache.hit'])).toEqual([false, true, true])
    expect(ops[0]!.attributes['cache.name']).toBe('otel')
    expect(ops[0]!.attributes['cache.namespace']).toBe('')
    expect(ops[0]!.attributes['cache.key']).toMatch(/^[0-9a-f]{16}$/)
    const load = spans('cache.load')
    expect(load).toHaveLength(1)
    expect(load[0]!.parentSpanContext?.spanId).toBe(ops[0]!.spanContext().spanId)
    expect(spans('cache.l2.get').length).toBeGreaterThanOrEqual(2)
    const requests = await metric('strata.cache.requests')
    const byTier = Object.fromEntries(
      requests.map((d) => [
        `${String(d.attributes['tier'])}/${String(d.attributes['result'])}`,
        d.value,
      ]),
    )
    expect(byTier).toMatchObject({ 'loader/miss': 1, 'l1/hit': 1, 'l2/hit': 1 })
    const loads = (await metric('strata.cache.load.duration')) as DataPoint<Histogram>[]
    expect(loads[0]!.value.count).toBe(1)
    expect(cache.stats().l1.entries).toBe(2)
    const entries = await metric('strata.cache.l1.entries')
    expect(entries.find((d) => d.attributes['cache.name'] === 'otel')?.value).toBe(2)
    expect(entries.find((d) => d.attributes['cache.name'] === 'writer')?.value).toBe(0)
    await other.close()
  })

  it('keys are not recorded unless asked', async () => {
    cache = createCache({
      prefix: 'otel',
      l1: memoryL1(),
      telemetry: { tracerProvider, meterProvider },
    })
    await cache.getOrSet('secret-key', () => 1)
    expect(spans('cache.getOrSet')[0]!.attributes['cache.key']).toBeUndefined()
    // Nor in error text (span status and exception events).
    await cache
      .getOrSet('user:alice@example.com', () => Promise.reject(new Error('db down')))
      .catch(() => undefined)
    const text = JSON.stringify(
      exporter.getFinishedSpans().map((s) => [s.status, s.events.map((e) => e.attributes)]),
    )
    expect(text).toContain('E_LOADER_ERROR')
    expect(text).not.toContain('alice')
  })

  it('stale served and coalesced loads are visible; errors carry the CacheError code', async () => {
    cache = make({ l1: memoryL1({ clock }), ttl: 100, grace: 10_000 })
    await cache.getOrSet('s', () => 'old')
    clock.advance(101)
    await cache.getOrSet('s', () => {
      throw new Error('boom')
    })
    const gate = deferred<string>()
    const first = cache.getOrSet('c', () => gate.promise)
    const second = cache.getOrSet('c', () => 'unused')
    await settle()
    gate.resolve('v')
    await Promise.all([first, second])
    await expect(
      cache.getOrSet('e', () => Promise.reject(new Error('down'))),
    ).rejects.toMatchObject({ code: errors.E_LOADER_ERROR })
    const ops = spans('cache.getOrSet')
    const stale = ops.find((s) => s.attributes['cache.stale'] === true)
    expect(stale?.attributes['cache.tier']).toBe('loader')
    expect(ops.filter((s) => s.attributes['cache.coalesced'] === true)).toHaveLength(1)
    const failed = ops.at(-1)!
    expect(failed.status.code).toBe(2)
    expect(failed.attributes['error.type']).toBe(errors.E_LOADER_ERROR)
    expect(spans('cache.load').some((s) => s.events.some((e) => e.name === 'exception'))).toBe(true)
    const staleServed = await metric('strata.cache.stale_served')
    expect(staleServed[0]?.value).toBe(1)
  })

  it('batch operations record key counts; writes publish with a bus event', async () => {
    cache = make({ l1: memoryL1({ clock }), l2: memoryL2({ clock }) })
    await cache.getOrSetMany(['x', 'y', 'z'], (missing) => new Map(missing.map((k) => [k, k])))
    await cache.getMany(['x', 'y'])
    await cache.set('x', 1)
    await cache.invalidateTags(['t'])
    await cache.clear()
    expect(spans('cache.getOrSetMany')[0]!.attributes).toMatchObject({
      'cache.keys.count': 3,
      'cache.tier': 'loader',
    })
    expect(spans('cache.getMany')[0]!.attributes).toMatchObject({
      'cache.keys.count': 2,
      'cache.tier': 'l1',
      'cache.hit': true,
    })
    for (const name of ['cache.set', 'cache.invalidateTags', 'cache.clear'])
      expect(spans(name)).toHaveLength(1)
  })

  it('bus traffic is counted both ways, with lag and state gauges', async () => {
    const hub = new MemoryBusHub()
    const l2 = memoryL2({ clock })
    cache = make({ l1: memoryL1({ clock }), l2, bus: hub.bus(), name: 'writer' })
    const peer = make({ l1: memoryL1({ clock }), l2, bus: hub.bus(), name: 'reader' })
    await cache.set('k', 1)
    await cache.delete('k')
    await settle()
    const messages = await metric('strata.bus.messages')
    const count = (name: string, direction: string, op: string) =>
      messages.find(
        (d) =>
          d.attributes['cache.name'] === name &&
          d.attributes['direction'] === direction &&
          d.attributes['op'] === op,
      )?.value
    expect(count('writer', 'publish', 'set')).toBe(1)
    expect(count('writer', 'publish', 'delete')).toBe(1)
    expect(count('reader', 'receive', 'set')).toBe(1)
    expect(count('reader', 'receive', 'delete')).toBe(1)
    const lag = (await metric('strata.bus.lag')) as DataPoint<Histogram>[]
    expect(lag.find((d) => d.attributes['cache.name'] === 'reader')?.value.count).toBe(2)
    const state = await metric('strata.bus.state')
    expect(
      state.find(
        (d) => d.attributes['cache.name'] === 'reader' && d.attributes['bus.state'] === 'connected',
      )?.value,
    ).toBe(1)
    await peer.close()
  })

  it('telemetry: false records nothing', async () => {
    cache = createCache({ l1: memoryL1(), telemetry: false })
    await cache.getOrSet('k', () => 1)
    expect(spans()).toHaveLength(0)
  })
})
