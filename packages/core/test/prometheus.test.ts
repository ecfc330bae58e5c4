import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { createCache, MemoryBusHub, memoryL2 } from '@strata/core'
import { createFakeClock } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { describe, expect, it } from 'vitest'

const dashboard = fileURLToPath(
  new URL('../../../docs/grafana/strata-dashboard.json', import.meta.url),
)

/** Every `strata_…` series name a PromQL expression of the dashboard reads. */
function queried(): string[] {
  const json = JSON.parse(readFileSync(dashboard, 'utf8')) as {
    panels: { targets?: { expr: string }[] }[]
  }
  const names = new Set<string>()
  for (const p of json.panels)
    for (const t of p.targets ?? [])
      for (const m of t.expr.matchAll(/strata_[a-z0-9_]+/g)) names.add(m[0])
  return [...names]
}

describe('Prometheus recipe and Grafana dashboard', () => {
  it('every metric the dashboard queries is one Strata emits through the Prometheus exporter', async () => {
    const exporter = new PrometheusExporter({ preventServerStart: true })
    const meterProvider = new MeterProvider({ readers: [exporter] })
    const clock = createFakeClock()
    const hub = new MemoryBusHub()
    const make = () =>
      createCache({
        prefix: 'prom',
        clock,
        l1: memoryL1({ maxEntries: 2 }),
        l2: memoryL2(),
        bus: hub.bus(),
        ttl: 1_000,
        grace: '1h',
        telemetry: { meterProvider },
      })
    const a = make()
    const b = make()
    await Promise.all([a.ready(), b.ready()])
    // Traffic that touches every instrument: loads, hits, evictions, bus, stale serves.
    for (const k of ['x', 'y', 'z']) await a.getOrSet(k, () => k)
    await a.getOrSet('x', () => 'again')
    await a.set('y', 'y2')
    clock.advance(2_000)
    await a.getOrSet('z', () => {
      throw new Error('source down')
    })
    const { resourceMetrics } = await exporter.collect()
    const text = new PrometheusSerializer().serialize(resourceMetrics)
    const emitted = new Set(
      [...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)].map((m) => m[1]),
    )
    const names = queried()
    expect(names.length).toBeGreaterThanOrEqual(8)
    expect(names.filter((n) => !emitted.has(n))).toEqual([])
    await a.close()
    await b.close()
    await meterProvider.shutdown()
  })
})
