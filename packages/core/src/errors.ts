/** Stable error codes. Match on `code`, never on message text. */
export const errors = {
  E_INVALID_KEY: 'E_INVALID_KEY',
  E_INVALID_OPTION: 'E_INVALID_OPTION',
  E_UNDEFINED_VALUE: 'E_UNDEFINED_VALUE',
  E_VALUE_TOO_LARGE: 'E_VALUE_TOO_LARGE',
  E_NOT_SERIALIZABLE: 'E_NOT_SERIALIZABLE',
  E_LOADER_ERROR: 'E_LOADER_ERROR',
  E_LOADER_TIMEOUT: 'E_LOADER_TIMEOUT',
  E_L2_UNAVAILABLE: 'E_L2_UNAVAILABLE',
  E_L2_TIMEOUT: 'E_L2_TIMEOUT',
  E_CORRUPT_ENTRY: 'E_CORRUPT_ENTRY',
  E_BUS_UNAVAILABLE: 'E_BUS_UNAVAILABLE',
  E_UNSUPPORTED: 'E_UNSUPPORTED',
  E_CLOSED: 'E_CLOSED',
} as const
export type ErrorCode = (typeof errors)[keyof typeof errors]

export class CacheError extends Error {
  override readonly name = 'CacheError'
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }

  static is(err: unknown, code?: ErrorCode): err is CacheError {
    return err instanceof CacheError && (code === undefined || err.code === code)
  }
}

export function invalidOption(pkg: string, option: string, rule: string): CacheError {
  return new CacheError(errors.E_INVALID_OPTION, `[${pkg}] ${option} ${rule}`)
}
