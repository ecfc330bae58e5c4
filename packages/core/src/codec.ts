import { deserialize, serialize } from 'node:v8'
import type { Codec, Entry } from './contracts.js'
import { envelope, isEntry } from './entry.js'
import { assertPlainData } from './plain-data.js'

/** Format bytes: the first byte of every encoded entry names codec and format version. */
export const FormatByte = {
  json1: 0x01,
  v8v1: 0x02,
} as const

function withHeader(format: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1)
  out[0] = format
  out.set(body, 1)
  return out
}

function checked(decoded: unknown, codec: string): Entry {
  if (!isEntry(decoded)) throw new Error(`[core] ${codec}: decoded bytes are not a Strata entry`)
  return decoded
}

export interface JsonCodecOptions {
  /** Bytes above this are refused before decoding. @default 64 MiB */
  maxBytes?: number
}

/**
 * JSON codec: portable and inspectable. It carries plain objects, arrays, strings,
 * finite numbers, booleans and null; anything JSON would change (Date, Map, Set, typed
 * arrays, BigInt, class instances, functions) is refused at encode with the same rules
 * the reader applies. Use msgpack (`@strata/l2-redis`) for the richer types.
 */
export function createJsonCodec(options: JsonCodecOptions = {}): Codec {
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024
  return {
    name: 'json',
    encode: (entry) => {
      assertPlainData(entry.value, { rich: false })
      return withHeader(FormatByte.json1, Buffer.from(JSON.stringify(envelope(entry))))
    },
    decode: (bytes) => {
      if (bytes.length > maxBytes)
        throw new Error(
          `[core] json: entry of ${bytes.length} bytes exceeds the decode cap (${maxBytes})`,
        )
      if (bytes[0] !== FormatByte.json1) throw new Error('[core] json: unknown format byte')
      const entry = checked(
        JSON.parse(
          Buffer.from(bytes.buffer, bytes.byteOffset + 1, bytes.length - 1).toString('utf8'),
        ),
        'json',
      )
      assertPlainData(entry.value, { rich: false })
      return entry
    },
  }
}

/** The JSON codec with the default decode cap (64 MiB). */
export const jsonCodec: Codec = createJsonCodec()

/**
 * V8 structured-clone codec: exact for Date, Map, Set, BigInt, typed arrays. For the
 * in-process memory L2 only: it deserializes whatever V8 can, so never use it on bytes
 * other processes could have written.
 */
export const v8Codec: Codec = {
  name: 'v8',
  encode: (entry) => {
    assertPlainData(entry.value)
    return withHeader(FormatByte.v8v1, serialize(envelope(entry)))
  },
  decode: (bytes) => {
    if (bytes[0] !== FormatByte.v8v1) throw new Error('[core] v8: unknown format byte')
    return checked(deserialize(bytes.subarray(1)), 'v8')
  },
}
