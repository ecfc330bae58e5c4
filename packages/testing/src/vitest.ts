import { createRequire } from 'node:module'
import { dirname } from 'node:path'

/**
 * The vitest `test` options of every package whose tests start real redis-server
 * processes: one forked worker per file, files one at a time (fault tests with
 * detection bounds must not share the 2 cores), generous timeouts for server start-up.
 */
export const realRedisTestOptions: {
  include: string[]
  pool: 'forks'
  fileParallelism: boolean
  testTimeout: number
  hookTimeout: number
} = {
  include: ['test/**/*.test.ts'],
  pool: 'forks',
  fileParallelism: false,
  testTimeout: 30_000,
  hookTimeout: 30_000,
}

/**
 * With `STRATA_IOREDIS=6`, resolves `ioredis` to the package's `ioredis6` dev dependency
 * (`npm:ioredis@^6`), so a suite runs on the other major. `from`: the config's
 * `import.meta.url`.
 */
export function ioredisMajor(from: string): { alias?: Record<string, string> } {
  if (process.env['STRATA_IOREDIS'] !== '6') return {}
  const require = createRequire(from)
  return { alias: { ioredis: dirname(require.resolve('ioredis6/package.json')) } }
}

/**
 * The ioredis version a suite runs on, checked: `Redis` (what the suite imported as
 * `ioredis`) must be the class of the major `STRATA_IOREDIS` names (5 by default).
 */
export function ioredisUnderTest(from: string, Redis: unknown): string {
  const want = process.env['STRATA_IOREDIS'] ?? '5'
  const require = createRequire(from)
  const name = want === '6' ? 'ioredis6' : 'ioredis'
  const version = (require(`${name}/package.json`) as { version: string }).version
  if (!version.startsWith(`${want}.`) || (require(name) as { Redis: unknown }).Redis !== Redis) {
    throw new Error(`[testing] expected the suite to run on ioredis ${want}, it runs on another`)
  }
  return version
}
