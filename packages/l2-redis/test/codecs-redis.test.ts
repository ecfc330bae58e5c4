import { compressedCodec, createCache, encryptedCodec } from '@strata/core'
import { startRedis } from '@strata/testing'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { msgpackCodec, redisL2 } from '../src/index.js'

describe('codec wrappers on real Redis', () => {
  it('encrypted + compressed msgpack entries: stored sealed; copied to another key they read as a miss', async () => {
    const redis = await startRedis({ source: 'binary' })
    const admin = new Redis(redis.url)
    try {
      const codec = encryptedCodec(compressedCodec(msgpackCodec(), { threshold: 64 }), {
        keys: { k1: Buffer.alloc(32, 7) },
        activeKeyId: 'k1',
      })
      const cache = createCache({ prefix: 'sealed', l2: redisL2({ redis: redis.url, codec }) })
      const value = { card: '4111 1111 1111 1111', note: 'x'.repeat(500) }
      await cache.set('acct:1', value)
      expect(await cache.get('acct:1')).toEqual(value)
      const raw = await admin.getBuffer('{sealed::acct:1}')
      expect(raw?.[0]).toBe(0x40)
      expect(raw?.includes(Buffer.from('4111'))).toBe(false)
      await admin.set('{sealed::acct:2}', raw as Buffer, 'PX', 60_000)
      expect(await cache.get('acct:2')).toBeUndefined()
      expect(cache.stats().l2.corrupt).toBe(1)
      await cache.close()
    } finally {
      admin.disconnect()
      await redis.stop()
    }
  })
})
