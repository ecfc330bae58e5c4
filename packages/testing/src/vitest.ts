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
