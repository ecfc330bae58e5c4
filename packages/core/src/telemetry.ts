import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import {
  context,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api'
import { CacheError } from './errors.js'
import type { Tier } from './events.js'

const { version } = createRequire(import.meta.url)('../package.json') as { version: string }
export const INSTRUMENTATION_NAME = '@strata/core'
export const INSTRUMENTATION_VERSION = version

export interface TelemetryOptions {
  /** Record keys on spans: never (default: keys can hold personal data), raw, or SHA-256 (first 16 hex). */
  keys?: 'none' | 'raw' | 'hashed'
  /** Child spans for L2 round trips (turn off when ioredis is already instrumented). @default true */
  l2Spans?: boolean
  /** Use these providers instead of the global ones (tests, or several SDKs in one process). */
  tracerProvider?: TracerProvider
  meterProvider?: MeterProvider
}

/** What the engine learned about one operation, for its span and metrics. */
export interface Probe {
  tier: Tier
  hit: boolean
  stale: boolean
  coalesced: boolean
}

export interface Gauges {
  entries(): number
  bytes(): number
  busState(): string
}

const NOOP_PROVIDER_NAMES = new Set(['NoopTracerProvider', 'NoopMeterProvider'])

function isNoop(provider: unknown): boolean {
  const delegate = (provider as { getDelegate?: () => unknown }).getDelegate?.() ?? provider
  return NOOP_PROVIDER_NAMES.has((delegate as object).constructor.name)
}

/**
 * OpenTelemetry through `@opentelemetry/api` only. `on` is false while no SDK is
 * registered (checked once a second, so an SDK registered later is picked up): the hot
 * paths then read one boolean and do nothing else.
 */
export class Telemetry {
  on = false
  /** Maps the keys the engine passes to the form recorded on spans. */
  fullKey: (k: string) => string = (k) => k
  readonly #enabled: boolean
  readonly #options: TelemetryOptions
  readonly #base: Attributes
  readonly #gauges: Gauges
  #tracer: Tracer | undefined
  #requests: Counter | undefined
  #duration: Histogram | undefined
  #loadDuration: Histogram | undefined
  #busMessages: Counter | undefined
  #busLag: Histogram | undefined
  #evictions: Counter | undefined
  #staleServed: Counter | undefined
  #timer: ReturnType<typeof setInterval> | undefined
  #meterProvider: MeterProvider | undefined

  constructor(enabled: boolean, options: TelemetryOptions, name: string, gauges: Gauges) {
    this.#enabled = enabled
    this.#options = options
    this.#base = { 'cache.name': name }
    this.#gauges = gauges
    if (!enabled) return
    this.refresh()
    if (!options.tracerProvider || !options.meterProvider) {
      this.#timer = setInterval(() => this.refresh(), 1_000)
      this.#timer.unref()
    }
  }

  get l2Spans(): boolean {
    return this.on && this.#options.l2Spans !== false
  }

  /** Re-reads the providers: an SDK registered after the cache was built is picked up. */
  refresh(): void {
    if (!this.#enabled) return
    const tp = this.#options.tracerProvider ?? trace.getTracerProvider()
    const mp = this.#options.meterProvider ?? metrics.getMeterProvider()
    const tracing = !isNoop(tp)
    const metering = !isNoop(mp)
    this.#tracer = tracing ? tp.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION) : undefined
    if (metering && mp !== this.#meterProvider) this.#createInstruments(mp)
    this.#meterProvider = metering ? mp : undefined
    this.on = tracing || metering
  }

  #createInstruments(mp: MeterProvider): void {
    const m = mp.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION)
    this.#requests = m.createCounter('strata.cache.requests', {
      description: 'Cache lookups by the tier that answered and the result',
    })
    this.#duration = m.createHistogram('strata.cache.operation.duration', {
      unit: 'ms',
      description: 'Duration of cache operations',
    })
    this.#loadDuration = m.createHistogram('strata.cache.load.duration', {
      unit: 'ms',
      description: 'Duration of loader calls',
    })
    this.#busMessages = m.createCounter('strata.bus.messages', {
      description: 'Bus messages by direction and op',
    })
    this.#busLag = m.createHistogram('strata.bus.lag', {
      unit: 'ms',
      description: 'Publish to receive delay (publisher clock to receiver clock)',
    })
    this.#evictions = m.createCounter('strata.cache.evictions', {
      description: 'Entries removed from L1, by reason',
    })
    this.#staleServed = m.createCounter('strata.cache.stale_served', {
      description: 'Stale values served from grace',
    })
    const base = this.#base
    m.createObservableGauge('strata.cache.l1.entries', {
      description: 'Entries in L1',
    }).addCallback((r) => r.observe(this.#gauges.entries(), base))
    m.createObservableGauge('strata.cache.l1.bytes', {
      unit: 'By',
      description: 'Estimated bytes in L1',
    }).addCallback((r) => r.observe(this.#gauges.bytes(), base))
    m.createObservableGauge('strata.bus.state', {
      description: '1 for the current bus state',
    }).addCallback((r) => {
      const state = this.#gauges.busState()
      for (const s of ['connecting', 'connected', 'degraded', 'closed'])
        r.observe(s === state ? 1 : 0, { ...base, 'bus.state': s })
    })
  }

  #keyAttr(attrs: Attributes, key: string | undefined): void {
    const mode = this.#options.keys ?? 'none'
    if (key === undefined || mode === 'none') return
    const full = this.fullKey(key)
    attrs['cache.key'] =
      mode === 'raw' ? full : createHash('sha256').update(full).digest('hex').slice(0, 16)
  }

  /** The L1-hit fast path of `get`/`getOrSet` (only called when `on`). */
  l1Hit(operation: string, namespace: string, key: string): void {
    const attrs: Attributes = {
      ...this.#base,
      'cache.namespace': namespace,
      'cache.operation': operation,
      'cache.hit': true,
      'cache.tier': 'l1',
      'cache.stale': false,
      'cache.coalesced': false,
    }
    this.#requests?.add(1, { ...this.#base, tier: 'l1', result: 'hit' })
    this.#duration?.record(0, { ...this.#base, operation, tier: 'l1' })
    if (this.#tracer) {
      this.#keyAttr(attrs, key)
      this.#tracer
        .startSpan(`cache.${operation}`, { kind: SpanKind.INTERNAL, attributes: attrs })
        .end()
    }
  }

  /** Wraps one operation in an active span and records its metrics from the probe. */
  async operation<T>(
    operation: string,
    namespace: string,
    key: string | undefined,
    count: number | undefined,
    fn: (probe: Probe) => Promise<T>,
  ): Promise<T> {
    const probe: Probe = { tier: 'none', hit: false, stale: false, coalesced: false }
    const start = performance.now()
    const tracer = this.#tracer
    const span = tracer?.startSpan(`cache.${operation}`, {
      kind: SpanKind.INTERNAL,
      attributes: { ...this.#base, 'cache.namespace': namespace },
    })
    try {
      const result = span
        ? await context.with(trace.setSpan(context.active(), span), () => fn(probe))
        : await fn(probe)
      return result
    } catch (err) {
      if (span) recordError(span, err)
      throw err
    } finally {
      const ms = performance.now() - start
      this.#duration?.record(ms, { ...this.#base, operation, tier: probe.tier })
      if (operation === 'get' || operation === 'getOrSet') {
        const result = probe.stale ? 'stale' : probe.hit ? 'hit' : 'miss'
        this.#requests?.add(1, { ...this.#base, tier: probe.tier, result })
      }
      if (span) {
        const attrs: Attributes = {
          'cache.hit': probe.hit,
          'cache.tier': probe.tier,
          'cache.stale': probe.stale,
          'cache.coalesced': probe.coalesced,
        }
        if (count !== undefined) attrs['cache.keys.count'] = count
        this.#keyAttr(attrs, key)
        span.setAttributes(attrs)
        span.end()
      }
    }
  }

  /** The loader call: a `cache.load` child span and the load-duration histogram. */
  async load<T>(fn: () => Promise<T>): Promise<T> {
    const start = performance.now()
    const span = this.#tracer?.startSpan('cache.load', {
      kind: SpanKind.INTERNAL,
      attributes: this.#base,
    })
    try {
      return span ? await context.with(trace.setSpan(context.active(), span), fn) : await fn()
    } catch (err) {
      if (span) recordError(span, err)
      throw err
    } finally {
      span?.end()
      this.#loadDuration?.record(performance.now() - start, this.#base)
    }
  }

  /** One L2 round trip as a child span (`cache.l2.<command>`). */
  async l2<T>(command: string, fn: () => Promise<T>): Promise<T> {
    const span = this.#tracer?.startSpan(`cache.l2.${command}`, {
      kind: SpanKind.CLIENT,
      attributes: { ...this.#base, 'db.system': 'redis' },
    })
    if (!span) return fn()
    try {
      return await fn()
    } catch (err) {
      recordError(span, err)
      throw err
    } finally {
      span.end()
    }
  }

  staleServed(): void {
    this.#staleServed?.add(1, this.#base)
  }

  evicted(reason: string): void {
    this.#evictions?.add(1, { ...this.#base, reason })
  }

  /** W3C traceparent of the active span (carried in bus messages), if any. */
  traceparent(): string | undefined {
    if (!this.#tracer) return undefined
    const sc = trace.getSpanContext(context.active())
    if (!sc || !trace.isSpanContextValid(sc)) return undefined
    return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`
  }

  published(op: string): void {
    this.#busMessages?.add(1, { ...this.#base, direction: 'publish', op })
    const span = trace.getSpan(context.active())
    span?.addEvent('cache.bus.publish', { 'bus.op': op })
  }

  /** A bus message arrived: counter, lag, and a span in the publisher's trace. */
  received(op: string, ts: number, traceparent: string | undefined, keys: number): void {
    this.#busMessages?.add(1, { ...this.#base, direction: 'receive', op })
    this.#busLag?.record(Math.max(0, Date.now() - ts), this.#base)
    const tracer = this.#tracer
    if (!tracer) return
    const parent = traceparent ? parseTraceparent(traceparent) : undefined
    const ctx = parent ? trace.setSpanContext(context.active(), parent) : context.active()
    const span = tracer.startSpan(
      'cache.bus.receive',
      {
        kind: SpanKind.CONSUMER,
        attributes: { ...this.#base, 'bus.op': op, 'cache.keys.count': keys },
        ...(parent ? { links: [{ context: parent }] } : {}),
      },
      ctx,
    )
    span.end()
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer)
  }
}

function recordError(span: Span, err: unknown): void {
  const code = err instanceof CacheError ? err.code : undefined
  span.recordException(err instanceof Error ? err : new Error(String(err)))
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: code ?? (err instanceof Error ? err.message : String(err)),
  })
  if (code) span.setAttribute('error.type', code)
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export function parseTraceparent(value: string): SpanContext | undefined {
  const m = TRACEPARENT.exec(value)
  if (!m) return undefined
  return {
    traceId: m[1] as string,
    spanId: m[2] as string,
    traceFlags: parseInt(m[3] as string, 16),
    isRemote: true,
  }
}
