import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  gunzipSync,
  gzipSync,
} from 'node:zlib'
import type { Codec, Entry } from './contracts.js'
import { invalidOption } from './errors.js'

/**
 * Codec wrappers. Each output starts with its own format byte, so a wrapped codec's bytes
 * never pass for the inner codec's (0x01 JSON, 0x02 V8 and msgpack's own stay distinct):
 *
 *   0x30 <inner bytes>                 below the compression threshold, stored as is
 *   0x31 <gzip(inner bytes)>
 *   0x32 <brotli(inner bytes)>
 *   0x40 <key id length> <key id> <12-byte IV> <AES-256-GCM ciphertext> <16-byte tag>
 *
 * Encryption authenticates the full cache key as associated data: bytes copied to another
 * key (or replayed under it) fail to decrypt and read as a corrupt entry (a miss).
 */
const RAW = 0x30
const GZIP = 0x31
const BROTLI = 0x32
const SEALED = 0x40

export interface CompressedCodecOptions {
  /** Inner bytes below this are stored uncompressed. @default 1024 */
  threshold?: number
  /** @default 'brotli' */
  algorithm?: 'brotli' | 'gzip'
  /** Decompressed bytes above this are refused (a decompression bomb). @default 64 MiB */
  maxBytes?: number
}

function prefixed(format: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1)
  out[0] = format
  out.set(body, 1)
  return out
}

/** Compresses what `inner` encodes above `threshold` bytes (node:zlib brotli or gzip). */
export function compressedCodec(inner: Codec, options: CompressedCodecOptions = {}): Codec {
  const threshold = options.threshold ?? 1024
  const algorithm = options.algorithm ?? 'brotli'
  const maxOutputLength = options.maxBytes ?? 64 * 1024 * 1024
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw invalidOption('core', 'compressedCodec: threshold', 'must be a non-negative integer')
  }
  if ((algorithm as string) !== 'brotli' && (algorithm as string) !== 'gzip') {
    throw invalidOption('core', 'compressedCodec: algorithm', "must be 'brotli' or 'gzip'")
  }
  const brotli = { params: { [constants.BROTLI_PARAM_QUALITY]: 4 }, maxOutputLength }
  return {
    name: `${algorithm}(${inner.name})`,
    keyed: inner.keyed,
    encode(entry: Entry, key?: string): Uint8Array {
      const bytes = inner.encode(entry, key)
      if (bytes.length < threshold) return prefixed(RAW, bytes)
      return algorithm === 'brotli'
        ? prefixed(BROTLI, brotliCompressSync(bytes, brotli))
        : prefixed(GZIP, gzipSync(bytes))
    },
    decode(bytes: Uint8Array, key?: string): Entry {
      const body = bytes.subarray(1)
      switch (bytes[0]) {
        case RAW:
          return inner.decode(body, key)
        case GZIP:
          return inner.decode(gunzipSync(body, { maxOutputLength }), key)
        case BROTLI:
          return inner.decode(brotliDecompressSync(body, { maxOutputLength }), key)
        default:
          throw new Error('[core] compressed codec: unknown format byte')
      }
    },
  }
}

export interface EncryptedCodecOptions {
  /** Key id → 32-byte AES-256 key. Keep retired keys here until their entries expired. */
  keys: Record<string, Uint8Array>
  /** The key new entries are sealed with. */
  activeKeyId: string
}

/**
 * AES-256-GCM over what `inner` encodes, with the full cache key as associated data and
 * key rotation through key ids (entries sealed with a retired key still open while it is
 * listed; a removed key makes them misses).
 */
export function encryptedCodec(inner: Codec, options: EncryptedCodecOptions): Codec {
  const keys = new Map<string, Buffer>()
  for (const [id, key] of Object.entries(options.keys)) {
    if (id.length === 0 || Buffer.byteLength(id) > 255) {
      throw invalidOption('core', 'encryptedCodec: keys', 'key ids must be 1-255 bytes')
    }
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw invalidOption('core', `encryptedCodec: keys.${id}`, 'must be 32 bytes (AES-256)')
    }
    keys.set(id, Buffer.from(key))
  }
  const active = keys.get(options.activeKeyId)
  if (!active) {
    throw invalidOption('core', 'encryptedCodec: activeKeyId', 'must name one of `keys`')
  }
  const activeId = Buffer.from(options.activeKeyId)
  const aad = (key: string | undefined) => Buffer.from(key ?? '')
  return {
    name: `aes-256-gcm(${inner.name})`,
    keyed: true,
    encode(entry: Entry, key?: string): Uint8Array {
      const plain = inner.encode(entry, key)
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', active, iv)
      cipher.setAAD(aad(key))
      const body = Buffer.concat([cipher.update(plain), cipher.final()])
      return Buffer.concat([
        Buffer.from([SEALED, activeId.length]),
        activeId,
        iv,
        body,
        cipher.getAuthTag(),
      ])
    },
    decode(bytes: Uint8Array, key?: string): Entry {
      const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
      if (b[0] !== SEALED || b.length < 2)
        throw new Error('[core] encrypted codec: unknown format byte')
      const idEnd = 2 + (b[1] as number)
      const secret = keys.get(b.subarray(2, idEnd).toString())
      if (!secret) throw new Error('[core] encrypted codec: sealed with a key id not in `keys`')
      if (b.length < idEnd + 12 + 16) throw new Error('[core] encrypted codec: truncated')
      const decipher = createDecipheriv('aes-256-gcm', secret, b.subarray(idEnd, idEnd + 12))
      decipher.setAAD(aad(key))
      decipher.setAuthTag(b.subarray(b.length - 16))
      const plain = Buffer.concat([
        decipher.update(b.subarray(idEnd + 12, b.length - 16)),
        decipher.final(),
      ])
      return inner.decode(plain, key)
    },
  }
}
