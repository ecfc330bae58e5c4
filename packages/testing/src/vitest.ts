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
 * The driver packages develop on ioredis 6 (their `ioredis` dev dependency). With
 * `STRATA_IOREDIS=5`, resolves `ioredis` to the package's `ioredis5` dev dependency
 * (`npm:ioredis@^5.8.2`), so a suite runs on the other major. `from`: the config's
 * `import.meta.url`.
 */
export function ioredisMajor(from: string): { alias?: Record<string, string> } {
  if (process.env['STRATA_IOREDIS'] !== '5') return {}
  const require = createRequire(from)
  return { alias: { ioredis: dirname(require.resolve('ioredis5/package.json')) } }
}

/**
 * The ioredis version a suite runs on, checked: `Redis` (what the suite imported as
 * `ioredis`) must be the class of the major `STRATA_IOREDIS` names (6 by default).
 */
export function ioredisUnderTest(from: string, Redis: unknown): string {
  const want = process.env['STRATA_IOREDIS'] ?? '6'
  const require = createRequire(from)
  const name = want === '5' ? 'ioredis5' : 'ioredis'
  const version = (require(`${name}/package.json`) as { version: string }).version
  if (!version.startsWith(`${want}.`) || (require(name) as { Redis: unknown }).Redis !== Redis) {
    throw new Error(`[testing] expected the suite to run on ioredis ${want}, it runs on another`)
  }
  return version
}
