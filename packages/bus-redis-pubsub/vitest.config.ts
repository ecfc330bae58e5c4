import { ioredisMajor, realRedisTestOptions } from '@strata/testing/vitest'
import { defineConfig } from 'vitest/config'

// `STRATA_IOREDIS=5 vitest run` runs this suite on ioredis 5 (see @strata/testing/vitest).
export default defineConfig({
  resolve: ioredisMajor(import.meta.url),
  test: { ...realRedisTestOptions },
})
