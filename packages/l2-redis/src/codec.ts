import { Packr, Unpackr } from 'msgpackr'
import { envelope, isEntry, jsonCodec, type Codec, type Entry } from '@strata/core'

/** Format byte of entries this codec writes; bump it when the layout changes, keep decoding old ones. */
export const MSGPACK_V1 = 0x10

/**
 * msgpackr with self-describing records (`useRecords: true`, no shared structures):
 * measured here, records decode faster than plain maps from ~1 KB up and every replica
 * can decode every other replica's bytes without a structure registry (shared
 * structures are faster still but need one, which a rolling deploy would break).
 * `moreTypes` keeps Set and typed arrays; Map, Date, BigInt, Buffer and null round-trip.
 */
const options = { useRecords: true, moreTypes: true } as const
const packr = new Packr(options)
const unpackr = new Unpackr(options)

const PLAIN_PROTOTYPES = new Set<unknown>([Object.prototype, null])

/**
 * msgpackr revives a few extension types (Error, RegExp) that Strata never writes.
 * Decoded values are walked once and anything but data (plain objects, arrays, Map,
 * Set, Date, typed arrays, primitives) makes the whole entry corrupt.
 */
function assertPlainData(v: unknown, depth: number): void {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'function' || typeof v === 'symbol') throw new Error('unexpected type')
    return
  }
  if (depth > 64) throw new Error('nesting too deep')
  if (Array.isArray(v)) {
    for (const item of v) assertPlainData(item, depth + 1)
    return
  }
  if (v instanceof Date || ArrayBuffer.isView(v)) return
  if (v instanceof Map) {
    for (const [k, item] of v) {
      assertPlainData(k, depth + 1)
      assertPlainData(item, depth + 1)
    }
    return
  }
  if (v instanceof Set) {
    for (const item of v) assertPlainData(item, depth + 1)
    return
  }
  if (!PLAIN_PROTOTYPES.has(Object.getPrototypeOf(v))) {
    throw new Error(`refusing to return a ${v.constructor.name || 'class'} instance`)
  }
  for (const key in v) assertPlainData((v as Record<string, unknown>)[key], depth + 1)
}

export interface MsgpackCodecOptions {
  /** Bytes above this are refused before decoding. @default 64 MiB */
  maxBytes?: number
}

export function msgpackCodec(opts: MsgpackCodecOptions = {}): Codec {
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024
  return {
    name: 'msgpack',
    encode(entry: Entry): Uint8Array {
      const body = packr.pack(envelope(entry))
      const out = new Uint8Array(body.length + 1)
      out[0] = MSGPACK_V1
      out.set(body, 1)
      return out
    },
    decode(bytes: Uint8Array): Entry {
      if (bytes.length > maxBytes)
        throw new Error(
          `[l2-redis] entry of ${bytes.length} bytes exceeds the decode cap (${maxBytes})`,
        )
      const format = bytes[0]
      if (format !== MSGPACK_V1) {
        // Entries written by the JSON codec stay readable when a deployment switches codecs.
        if (format === 0x01) return jsonCodec.decode(bytes)
        throw new Error(`[l2-redis] unknown entry format byte ${String(format)}`)
      }
      // A Buffer source makes msgpack `bin` decode as Buffer (what the writer had); plain
      // Uint8Arrays travel as a typed-array extension and come back as Uint8Array.
      const body = Buffer.from(bytes.buffer, bytes.byteOffset + 1, bytes.length - 1)
      const decoded: unknown = unpackr.unpack(body)
      if (!isEntry(decoded)) throw new Error('[l2-redis] decoded bytes are not a Strata entry')
      assertPlainData(decoded.value, 0)
      return decoded
    },
  }
}

/** JSON codec that also reads msgpack entries (so a switch to JSON keeps old entries readable). */
export function jsonCodecReadingMsgpack(): Codec {
  const mp = msgpackCodec()
  return {
    name: 'json',
    encode: (entry) => jsonCodec.encode(entry),
    decode: (bytes) => (bytes[0] === MSGPACK_V1 ? mp.decode(bytes) : jsonCodec.decode(bytes)),
  }
}
