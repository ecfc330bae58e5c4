import { invalidOption } from './errors.js'

/** Milliseconds, or a string such as `'250ms'`, `'30s'`, `'5m'`, `'1h'`, `'2d'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/

/** Parses a duration; throws `E_INVALID_OPTION` naming `option` when it is not one. */
export function toMs(
  value: Duration | undefined,
  option: string,
  pkg = 'core',
): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw invalidOption(
        pkg,
        option,
        `must be a non-negative finite number of ms or a duration string like '5m' (got ${String(value)})`,
      )
    }
    return value
  }
  const match = typeof value === 'string' ? PATTERN.exec(value.trim()) : null
  if (!match) {
    throw invalidOption(
      pkg,
      option,
      `must be a number of ms or a duration string like '5m' (got ${JSON.stringify(value)})`,
    )
  }
  return Number(match[1]) * (UNITS[match[2] as string] as number)
}
