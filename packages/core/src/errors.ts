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
  E_NO_PERMISSION: 'E_NO_PERMISSION',
  /** A repository's `save`/`remove` failed: no cache changed; `cause` holds the source's error. */
  E_SOURCE_WRITE: 'E_SOURCE_WRITE',
  /** A write-behind queue holds `maxPending` unpersisted writes; nothing changed. */
  E_WRITE_QUEUE_FULL: 'E_WRITE_QUEUE_FULL',
  /** A write-behind `flush()` did not see the queue drain within its timeout. */
  E_FLUSH_TIMEOUT: 'E_FLUSH_TIMEOUT',
  /** The caller's `signal` aborted its wait (the shared load goes on and is cached). */
  E_ABORTED: 'E_ABORTED',
} as const
export type ErrorCode = (typeof errors)[keyof typeof errors]

export class CacheError extends Error {
  override readonly name = 'CacheError'
  readonly code: ErrorCode
  /**
   * The full key (`<prefix>:<ns>:<key>`) the error is about, when there is one. Kept out
   * of `message` so that keys (which can hold personal data) never reach span text or
   * logs unless the telemetry key mode allows them.
   */
  key: string | undefined

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; key?: string }) {
    super(message, options)
    this.code = code
    this.key = options?.key
  }

  static is(err: unknown, code?: ErrorCode): err is CacheError {
    return err instanceof CacheError && (code === undefined || err.code === code)
  }
}

export function invalidOption(pkg: string, option: string, rule: string): CacheError {
  return new CacheError(errors.E_INVALID_OPTION, `[${pkg}] ${option} ${rule}`)
}
