import { invalidOption } from './errors.js'

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

function isLogger(v: unknown): v is Logger {
  if (typeof v !== 'object' || v === null) return false
  const l = v as Record<string, unknown>
  return ['child', 'debug', 'info', 'warn', 'error'].every((m) => typeof l[m] === 'function')
}

/** The cache's logger: a child bound to the library and cache name, or silent. */
export function resolveLogger(logger: unknown, name: string): Logger {
  if (logger === undefined) return silentLogger
  if (!isLogger(logger)) {
    throw invalidOption(
      'core',
      'logger',
      'must have child, debug, info, warn and error methods (pino-compatible)',
    )
  }
  return logger.child({ lib: 'strata', cache: name })
}
