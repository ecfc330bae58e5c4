import type { BusMessage } from '@strata/core'
import { Packr, Unpackr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { readMsgpack } from '../src/msgpack-reader.js'
import { decodeMessage, encodeMessage } from '../src/index.js'

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** Deterministic values of the types a message holds, arrays at most two deep. */
function generator(seed: number): (depth: number) => unknown {
  let state = seed
  const next = () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32
  const int = (n: number) => Math.floor(next() * n)
  const scalars: (() => unknown)[] = [
    () => null,
    () => next() < 0.5,
    () => int(128),
    () => -1 - int(32),
    () => int(2 ** 16),
    () => int(2 ** 32),
    () => -int(2 ** 31),
    () => int(2 ** 53),
    () => -int(2 ** 53),
    () => Date.now() + next(),
    () => next() * 1e300,
    () => 'k'.repeat(int(40)),
    () => 'ü€𝄞'.repeat(int(100)),
    () => 'x'.repeat(int(70_000)),
  ]
  const value = (depth: number): unknown => {
    if (depth > 0 && next() < 0.3) {
      const n = next() < 0.1 ? 16 + int(300) : int(16)
      return Array.from({ length: n }, () => value(depth - 1))
    }
    return (scalars[int(scalars.length)] as () => unknown)()
  }
  return value
}

describe('msgpack reader', () => {
  it('reads what msgpackr writes exactly as msgpackr does (1 000 generated bodies)', () => {
    const value = generator(7)
    for (let i = 0; i < 1_000; i++) {
      const body = Array.from({ length: 8 }, () => value(1))
      const bytes = packr.pack(body)
      expect(readMsgpack(bytes, 0, 2)).toEqual(unpackr.unpack(bytes))
    }
  })

  it('round-trips messages whose fields take the wider encodings', () => {
    const m: BusMessage = {
      op: 'delete',
      source: 's'.repeat(128),
      seq: 2 ** 40 + 3,
      ts: 1_733_400_000_000.25,
      keys: [...Array.from({ length: 300 }, (_, i) => `app::k${i}`), 'ü'.repeat(40_000)],
    }
    expect(decodeMessage(encodeMessage(m))).toEqual(m)
  })

  it('refuses maps, binary, extensions, truncation, length lies, trailing bytes and deeper arrays', () => {
    const refused = [
      packr.pack({ a: 1 }), // map
      packr.pack(Buffer.from([1, 2])), // bin
      packr.pack(new Date(0)), // extension
      Buffer.from([0xa5, 0x61]), // string cut short
      Buffer.from([0xcb, 0, 0]), // float cut short
      Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]), // 4 billion items in 6 bytes
      Buffer.from([0x91, 0xc0, 0xc0]), // a byte after the value
      packr.pack([[['too deep']]]),
      Buffer.from([]),
    ]
    for (const bytes of refused)
      expect(() => readMsgpack(bytes, 0, 2), bytes.toString('hex')).toThrow()
    expect(readMsgpack(packr.pack([['two deep']]), 0, 2)).toEqual([['two deep']])
  })
})
