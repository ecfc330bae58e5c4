import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { compressedCodec, encryptedCodec, jsonCodec, type Entry } from '@strata/core'
import { describe, expect, it } from 'vitest'

const entry = (value: unknown): Entry => ({
  value,
  createdAt: 1,
  freshUntil: 2,
  staleUntil: 3,
  tags: [],
  version: 4,
})
const big = { text: 'strata '.repeat(2_000), n: [1, 2, 3] }
const k1 = randomBytes(32)
const k2 = randomBytes(32)

describe('compressedCodec', () => {
  it('round-trips; compresses above the threshold only (brotli and gzip)', () => {
    for (const algorithm of ['brotli', 'gzip'] as const) {
      const c = compressedCodec(jsonCodec, { threshold: 100, algorithm })
      const small = c.encode(entry({ a: 1 }))
      const large = c.encode(entry(big))
      expect(small[0]).toBe(0x30)
      expect(large[0]).toBe(algorithm === 'brotli' ? 0x32 : 0x31)
      expect(large.length).toBeLessThan(jsonCodec.encode(entry(big)).length / 10)
      expect(c.decode(small)).toEqual(entry({ a: 1 }))
      expect(c.decode(large)).toEqual(entry(big))
    }
  })

  it('refuses unknown formats, corrupt streams and decompression bombs', () => {
    const c = compressedCodec(jsonCodec, { threshold: 0, algorithm: 'gzip', maxBytes: 10_000 })
    expect(() => c.decode(new Uint8Array([0x99, 1, 2]))).toThrow()
    expect(() => c.decode(new Uint8Array([0x31, 1, 2, 3]))).toThrow()
    const bomb = new Uint8Array([0x31, ...gzipSync(Buffer.alloc(1_000_000))])
    expect(() => c.decode(bomb)).toThrow()
    expect(() => compressedCodec(jsonCodec, { algorithm: 'zstd' as never })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
  })
})

describe('encryptedCodec', () => {
  const codec = encryptedCodec(jsonCodec, { keys: { k1 }, activeKeyId: 'k1' })

  it('round-trips, bound to its key; ciphertext differs each time (random IV)', () => {
    const a = codec.encode(entry(big), 'app::user:1')
    const b = codec.encode(entry(big), 'app::user:1')
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false)
    expect(codec.decode(a, 'app::user:1')).toEqual(entry(big))
    expect(Buffer.from(a).includes(Buffer.from('strata strata'))).toBe(false)
  })

  it('tampered bytes, another key (replay) and a wrong secret all fail to decode', () => {
    const sealed = codec.encode(entry({ balance: 100 }), 'app::acct:1')
    const tampered = Uint8Array.from(sealed)
    tampered[tampered.length - 20] = (tampered[tampered.length - 20] as number) ^ 1
    expect(() => codec.decode(tampered, 'app::acct:1')).toThrow()
    expect(() => codec.decode(sealed, 'app::acct:2')).toThrow()
    const impostor = encryptedCodec(jsonCodec, { keys: { k1: k2 }, activeKeyId: 'k1' })
    expect(() => impostor.decode(sealed, 'app::acct:1')).toThrow()
    expect(() => codec.decode(sealed.subarray(0, 10), 'app::acct:1')).toThrow()
  })

  it('rotation: new entries use the active key, entries of a listed retired key still open', () => {
    const old = codec.encode(entry('v1'), 'k')
    const rotated = encryptedCodec(jsonCodec, { keys: { k1, k2 }, activeKeyId: 'k2' })
    const fresh = rotated.encode(entry('v2'), 'k')
    expect(rotated.decode(old, 'k')).toEqual(entry('v1'))
    expect(rotated.decode(fresh, 'k')).toEqual(entry('v2'))
    const retired = encryptedCodec(jsonCodec, { keys: { k2 }, activeKeyId: 'k2' })
    expect(() => retired.decode(old, 'k')).toThrow(/key id not in/)
  })

  it('composes with compression and refuses bad keys', () => {
    const both = encryptedCodec(compressedCodec(jsonCodec, { threshold: 10 }), {
      keys: { k1 },
      activeKeyId: 'k1',
    })
    expect(both.keyed).toBe(true)
    expect(both.decode(both.encode(entry(big), 'x'), 'x')).toEqual(entry(big))
    expect(() =>
      encryptedCodec(jsonCodec, { keys: { k1: randomBytes(16) }, activeKeyId: 'k1' }),
    ).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
    expect(() => encryptedCodec(jsonCodec, { keys: { k1 }, activeKeyId: 'nope' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
  })
})
