import { appendFileSync } from 'node:fs'
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'

/** One JSON line per finished span: easy to read back (the demo prints a trace tree from it). */
class JsonLinesExporter implements SpanExporter {
  readonly #file: string
  readonly #replica: string

  constructor(file: string, replica: string) {
    this.#file = file
    this.#replica = replica
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const lines = spans.map((s) =>
      JSON.stringify({
        replica: this.#replica,
        name: s.name,
        traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId,
        parentSpanId: s.parentSpanContext?.spanId,
        startMs: s.startTime[0] * 1e3 + s.startTime[1] / 1e6,
        durationMs: s.duration[0] * 1e3 + s.duration[1] / 1e6,
        attributes: s.attributes,
        events: s.events.map((e) => e.name),
        status: s.status.code,
      }),
    )
    try {
      appendFileSync(this.#file, lines.join('\n') + '\n')
      done({ code: ExportResultCode.SUCCESS })
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error })
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

/** Wires the OpenTelemetry SDK the way an application would; Strata only uses the API. */
export function setupTracing(replica: string): void {
  const file = process.env['TRACE_FILE']
  const toConsole = process.env['TRACE_CONSOLE'] === '1'
  if (!file && !toConsole) return
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const exporter = toConsole
    ? new ConsoleSpanExporter()
    : new JsonLinesExporter(file as string, replica)
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
}
