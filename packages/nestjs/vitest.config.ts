import { realRedisTestOptions } from '@strata/testing/vitest'
import { defineConfig } from 'vitest/config'

export default defineConfig({ test: { ...realRedisTestOptions } })
