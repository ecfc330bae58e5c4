import { ioredisUnderTest } from '@strata/testing/vitest'
import { Redis } from 'ioredis'
import { expect, it } from 'vitest'

it('runs on the ioredis major STRATA_IOREDIS names (6 by default)', () => {
  expect(ioredisUnderTest(import.meta.url, Redis)).toMatch(/^[56]\./)
})
