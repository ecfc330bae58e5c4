import type { BusMessage } from '@strata/core'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { channelName, decodeMessage, encodeMessage, WIRE_VERSION } from '../src/index.js'

describe('wire format', () => {
  const samples: BusMessage[] = [
    { op: 'delete', source: 'r1', seq: 1, ts: 1_700_000_000_000.5, keys: ['a::1', 'a::2'] },
    { op: 'set', source: 'r1', seq: 2, ts: 1, keys: ['a::x'] },
    { op: 'tags', source: 'r2', seq: 3, ts: 2, tags: ['users', 'ünï'] },
    { op: 'clear', source: 'r2', seq: 4, ts: 3, prefixes: ['a:'] },
    {
      op: 'clear-namespace',
      source: 'r3',
      seq: 5,
      ts: 4,
      prefixes: ['a:ns:', 'a:ns/'],
      trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    },
  ]

  it('round-trips every op', () => {
    for (const m of samples) expect(decodeMessage(encodeMessage(m))).toEqual(m)
    expect(decodeMessage(encodeMessage({ op: 'heartbeat', source: 's', seq: 9, ts: 1 }))).toEqual({
      op: 'heartbeat',
      source: 's',
      seq: 9,
      ts: 1,
    })
  })

  it('starts with the wire version, which is also in the channel name', () => {
    expect(encodeMessage(samples[0]!)[0]).toBe(WIRE_VERSION)
    expect(channelName('app')).toBe(`strata:v${WIRE_VERSION}:app`)
  })

  it('rejects other versions, unknown ops and malformed bodies', () => {
    const good = encodeMessage(samples[0]!)
    const otherVersion = Buffer.from(good)
    otherVersion[0] = WIRE_VERSION + 1
    expect(() => decodeMessage(otherVersion)).toThrow(/version/)
    expect(() => decodeMessage(Buffer.from([WIRE_VERSION, 0x93, 1, 2, 3]))).toThrow()
    expect(() => decodeMessage(Buffer.from([WIRE_VERSION]))).toThrow()
    expect(() =>
      decodeMessage(
        Buffer.from([WIRE_VERSION, 0x98, 99, 0xa1, 0x73, 1, 1, 0xc0, 0xc0, 0xc0, 0xc0]),
      ),
    ).toThrow(/op/)
    expect(() =>
      decodeMessage(
        Buffer.from([WIRE_VERSION, 0x98, 1, 0xa1, 0x73, 1, 1, 0x91, 7, 0xc0, 0xc0, 0xc0]),
      ),
    ).toThrow(/keys/)
  })

  it('validates every header field: a NaN, fractional or negative seq, an empty or huge source, a bad ts', () => {
    const body = (seq: unknown, source: unknown = 'r1', ts: unknown = 1) =>
      Buffer.concat([
        Buffer.from([WIRE_VERSION]),
        new Packr({ useRecords: false }).pack([1, source, seq, ts, ['k'], null, null, null]),
      ])
    expect(decodeMessage(body(1)).seq).toBe(1)
    for (const bad of [Number.NaN, 1.5, -1, 0, Infinity, '3'])
      expect(() => decodeMessage(body(bad))).toThrow(/header/)
    for (const bad of ['', 'x'.repeat(129), 7])
      expect(() => decodeMessage(body(1, bad))).toThrow(/header/)
    expect(() => decodeMessage(body(1, 'r1', Number.NaN))).toThrow(/header/)
  })
})
