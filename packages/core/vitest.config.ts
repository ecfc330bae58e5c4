import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// Core's tests use the real L1 driver from source: no build step, one copy of core.
export default defineConfig({
  resolve: {
    alias: {
      '@strata/core/testing': fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)),
      '@strata/core': fileURLToPath(new URL('./src/index.ts', import.meta.url)),
      '@strata/l1-memory': fileURLToPath(new URL('../l1-memory/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
