import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr'
import {
  assertPlainData,
  createJsonCodec,
  envelope,
  isEntry,
  type Codec,
  type Entry,
} from '@strata/core'

/** Format byte of entries this codec writes; bump it when the layout changes, keep decoding old ones. */
export const MSGPACK_V1 = 0x10

/**
 * msgpackr with self-describing records (`useRecords: true`, no shared structures):
 * measured here, records decode faster than plain maps from ~1 KB up and every replica
 * can decode every other replica's bytes without a structure registry (shared
 * structures are faster still but need one, which a rolling deploy would break).
 * `moreTypes` keeps Set and typed arrays; Map, Date, BigInt, Buffer and null round-trip.
 */
const packr = new Packr({ useRecords: true, moreTypes: true })
// No shared references when reading: a crafted entry could otherwise decode into a DAG
// whose branches share objects (2^depth visits for the walk below, and for the caller).
const unpackr = new Unpackr({ useRecords: true, moreTypes: true, structuredClone: false })

/**
 * What this codec writes and reads: plain data plus Date, Map, Set, typed arrays and
 * BigInt, nesting at most 64 deep and 1 000 000 values. The writer checks with the same
 * rules as the reader, so it never accepts what other replicas would refuse.
 */
const RULES = { rich: true, maxDepth: 64, maxNodes: 1_000_000 } as const

export interface MsgpackCodecOptions {
  /** Bytes above this are refused before decoding. @default 64 MiB */
  maxBytes?: number
}

/**
 * The bytes `encode` returns are a view into msgpackr's shared write buffer (no copy per
 * entry): hand them to Redis as Strata does, or copy them (`slice()`) before keeping them
 * for long, or each one kept holds its whole 8 KB buffer in memory.
 */
export function msgpackCodec(opts: MsgpackCodecOptions = {}): Codec {
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024
  const json = createJsonCodec({ maxBytes })
  return {
    name: 'msgpack',
    encode(entry: Entry): Uint8Array {
      assertPlainData(entry.value, RULES)
      // One byte reserved in front for the format: no copy of the packed bytes (a copy
      // is a fresh off-heap buffer per entry, which the miss path pays for in GC).
      const out = packr.pack(envelope(entry), RESERVE_START_SPACE | 1)
      out[0] = MSGPACK_V1
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
        if (format === 0x01) return json.decode(bytes)
        throw new Error(`[l2-redis] unknown entry format byte ${String(format)}`)
      }
      // A Buffer source makes msgpack `bin` decode as Buffer (what the writer had); plain
      // Uint8Arrays travel as a typed-array extension and come back as Uint8Array.
      const body = Buffer.from(bytes.buffer, bytes.byteOffset + 1, bytes.length - 1)
      const decoded: unknown = unpackr.unpack(body)
      if (!isEntry(decoded)) throw new Error('[l2-redis] decoded bytes are not a Strata entry')
      assertPlainData(decoded.value, RULES)
      return decoded
    },
  }
}

/** JSON codec that also reads msgpack entries (so a switch to JSON keeps old entries readable). */
export function jsonCodecReadingMsgpack(opts: MsgpackCodecOptions = {}): Codec {
  const mp = msgpackCodec(opts)
  const json = createJsonCodec(opts)
  return {
    name: 'json',
    encode: (entry) => json.encode(entry),
    decode: (bytes) => (bytes[0] === MSGPACK_V1 ? mp.decode(bytes) : json.decode(bytes)),
  }
}
