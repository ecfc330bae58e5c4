import { Packr } from 'msgpackr'
import { isEntry, type Entry } from '@strata/core'
import { describe, expect, it } from 'vitest'
import { MSGPACK_V1, jsonCodecReadingMsgpack, msgpackCodec } from '../src/index.js'

const base = {
  createdAt: 1,
  freshUntil: 2,
  staleUntil: 3,
  tags: ['a'],
  tagVersions: [1],
  version: 7,
}

describe('msgpack codec', () => {
  const codec = msgpackCodec()

  it('round-trips Date, Map, Set, Buffer, Uint8Array, BigInt, nested objects and null exactly', () => {
    const value = {
      date: new Date(1_700_000_000_123),
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, { deep: true }],
      ]),
      set: new Set([1, 'x']),
      buf: Buffer.from('hello'),
      bytes: new Uint8Array([1, 2, 3]),
      big: 12_345_678_901_234_567_890n,
      nil: null,
      nested: { list: [1, { x: [null, 'y'] }], float: -1.5, unicode: 'ünïcödé ✓' },
    }
    const out = codec.decode(codec.encode({ ...base, value }))
    expect(out.value).toEqual(value)
    const v = out.value as typeof value
    expect(v.date).toBeInstanceOf(Date)
    expect(v.map).toBeInstanceOf(Map)
    expect(v.set).toBeInstanceOf(Set)
    expect(Buffer.isBuffer(v.buf)).toBe(true)
    expect(v.bytes).toBeInstanceOf(Uint8Array)
    expect(typeof v.big).toBe('bigint')
    expect(out.tags).toEqual(['a'])
    expect(out.version).toBe(7)
  })

  it('starts with a format byte and decodes a fresh process-independent unpack (no shared structures)', () => {
    const bytes = codec.encode({ ...base, value: { id: 1 } })
    expect(bytes[0]).toBe(MSGPACK_V1)
    expect(msgpackCodec().decode(bytes).value).toEqual({ id: 1 })
  })

  it('entries encoded one after another never share bytes (each keeps its own format byte and body)', () => {
    // encode returns views into msgpackr's write buffer: later encodes must not overwrite earlier ones.
    const encoded = Array.from({ length: 500 }, (_, i) =>
      codec.encode({ ...base, value: { i, pad: 'p'.repeat(i % 97) } }),
    )
    encoded.forEach((bytes, i) => {
      expect(bytes[0]).toBe(MSGPACK_V1)
      expect(codec.decode(bytes).value).toEqual({ i, pad: 'p'.repeat(i % 97) })
    })
  })

  it('rejects hostile payloads: random bytes, RegExp/Error extensions, a 2 GB bin32 header, wrong shapes', () => {
    const p = new Packr({ moreTypes: true })
    const wrap = (body: Uint8Array) => Uint8Array.from([MSGPACK_V1, ...body])
    const hostile: Uint8Array[] = [
      Uint8Array.from([0xde, 0xad, 0xbe, 0xef]),
      wrap(p.pack({ ...base, value: /a+b/ })),
      wrap(p.pack({ ...base, value: { e: new Error('boom') } })),
      wrap(Uint8Array.from([0xc6, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3])),
      wrap(p.pack({ value: 1 })),
      wrap(p.pack({ ...base, value: undefined })),
      wrap(p.pack('just a string')),
      new Uint8Array(),
    ]
    let rng = 7
    for (let i = 0; i < 200; i++) {
      const junk = new Uint8Array(1 + (i % 64))
      for (let j = 0; j < junk.length; j++)
        junk[j] = (rng = (rng * 1_103_515_245 + 12_345) % 2 ** 31) & 0xff
      junk[0] = MSGPACK_V1
      hostile.push(junk)
    }
    let decoded = 0
    for (const bytes of hostile) {
      try {
        const e: Entry = codec.decode(bytes)
        decoded++
        // Whatever got through is plain data with the entry shape.
        expect(typeof e.createdAt).toBe('number')
      } catch {
        // refused: a counted miss in core
      }
    }
    expect(decoded).toBeLessThan(hostile.length)
    for (const bytes of hostile.slice(0, 8)) expect(() => codec.decode(bytes)).toThrow()
  })

  it('refuses entries over the decode cap before decoding', () => {
    const small = msgpackCodec({ maxBytes: 10 })
    expect(() => small.decode(codec.encode({ ...base, value: 'x'.repeat(100) }))).toThrow(/cap/)
  })

  it('the JSON codec keeps reading msgpack entries (codec switch during a rolling deploy)', () => {
    const json = jsonCodecReadingMsgpack()
    expect(json.decode(codec.encode({ ...base, value: { a: 1 } })).value).toEqual({ a: 1 })
    const viaJson = json.encode({ ...base, value: { d: '1970-01-01T00:00:00.000Z' } })
    expect(json.decode(viaJson).value).toEqual({ d: '1970-01-01T00:00:00.000Z' })
    expect(codec.decode(viaJson).value).toEqual({ d: '1970-01-01T00:00:00.000Z' })
    // What JSON would change is refused at encode (the reader would get something else).
    expect(() => json.encode({ ...base, value: { d: new Date(0) } })).toThrow(/Date/)
  })

  it('the writer refuses what every reader refuses: functions, class instances, nesting past 64', () => {
    class Point {
      x = 1
    }
    let deep: unknown = 'leaf'
    for (let i = 0; i < 70; i++) deep = { d: deep }
    for (const value of [{ f: () => 1 }, new Point(), [new Point()], deep, { s: Symbol('x') }]) {
      expect(() => codec.encode({ ...base, value })).toThrow()
    }
    // And what it accepts, readers return as given.
    const ok = { m: new Map([['a', new Set([1])]]), d: new Date(5), b: 10n, t: new Uint8Array([1]) }
    expect(codec.decode(codec.encode({ ...base, value: ok })).value).toEqual(ok)
  })

  it('hostile shared-reference bytes are refused at once (no 2^depth walk)', () => {
    // 40 levels whose two branches are the same object: tiny with references, 2^40 nodes expanded.
    let dag: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 40; i++) dag = { l: dag, r: dag }
    const hostile = new Packr({ structuredClone: true, useRecords: true }).pack({
      ...base,
      value: dag,
    })
    expect(hostile.length).toBeLessThan(2_000)
    const bytes = new Uint8Array(hostile.length + 1)
    bytes[0] = MSGPACK_V1
    bytes.set(hostile, 1)
    expect(() => codec.decode(bytes)).toThrow()
  })

  it('the JSON codec caps what it decodes, like msgpack', () => {
    const json = jsonCodecReadingMsgpack({ maxBytes: 100 })
    const big = jsonCodecReadingMsgpack().encode({ ...base, value: 'x'.repeat(1_000) })
    expect(() => json.decode(big)).toThrow(/cap/)
  })

  it('fuzz: 20 000 mutated and random inputs decode to an entry or throw, never hang or return junk', () => {
    let rng = 7
    const random = () => (rng = (rng * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31
    const seeds = [
      codec.encode({ ...base, value: { a: [1, 2, { b: 'c' }], m: new Map([[1, 2]]) } }),
      codec.encode({ ...base, value: 'plain', tags: ['t'], tagVersions: [3] }),
      jsonCodecReadingMsgpack().encode({ ...base, value: { j: [1, null] } }),
    ]
    let decoded = 0
    for (let i = 0; i < 20_000; i++) {
      let bytes: Uint8Array
      if (i % 4 === 0) {
        bytes = new Uint8Array(1 + Math.floor(random() * 64)).map(() => Math.floor(random() * 256))
        if (random() < 0.5) bytes[0] = MSGPACK_V1
      } else {
        bytes = (seeds[i % seeds.length] as Uint8Array).slice()
        const flips = 1 + Math.floor(random() * 4)
        for (let f = 0; f < flips; f++) {
          const at = 1 + Math.floor(random() * (bytes.length - 1))
          bytes[at] = Math.floor(random() * 256)
        }
      }
      let entry: unknown
      try {
        entry = codec.decode(bytes)
      } catch (err) {
        expect(err).toBeInstanceOf(Error)
        continue
      }
      expect(isEntry(entry)).toBe(true)
      decoded++
    }
    expect(decoded).toBeGreaterThan(0)
  })
})
