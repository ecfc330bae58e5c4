/**
 * A pino-compatible logger (pino itself, or anything with these methods). Strata logs
 * state changes and failures at sensible levels and is silent without one. Log lines
 * never carry keys (they can hold personal data).
 */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const noop = (): void => undefined

/** The logger used when none is given: every call is a no-op. */
export const silentLogger: Logger = {
  child: () => silentLogger,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
}

export function isLogger(v: unknown): v is Logger {
  if (typeof v !== 'object' || v === null) return false
  const l = v as Record<string, unknown>
  return ['child', 'debug', 'info', 'warn', 'error'].every((m) => typeof l[m] === 'function')
}
