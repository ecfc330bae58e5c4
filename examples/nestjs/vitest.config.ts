import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.mts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
})
