/**
 * Reads the part of msgpack a bus message uses: nil, booleans, integers, floats, strings
 * and arrays (nested at most `maxDepth` deep). Anything else (maps, binary, extensions),
 * a length running past the end or bytes left over throws.
 *
 * Why not msgpackr's unpack, which wrote the bytes: a replica decodes a message only
 * when a peer writes, so this code is rarely warm. Measured on a peer that polls its L1
 * between messages, msgpackr took ~40 µs per message there (its decoder is large and
 * stays in V8's interpreter), this reader a few: propagation of every write waits on it.
 */
export function readMsgpack(bytes: Buffer, offset: number, maxDepth: number): unknown {
  const r = { pos: offset }
  const value = read(bytes, r, maxDepth)
  if (r.pos !== bytes.length) throw new Error('trailing bytes')
  return value
}

function read(b: Buffer, r: { pos: number }, depth: number): unknown {
  const at = r.pos
  if (at >= b.length) throw new Error('truncated')
  const t = b[at] as number
  r.pos = at + 1
  if (t <= 0x7f) return t
  if (t >= 0xe0) return t - 0x100
  if (t >= 0xa0 && t <= 0xbf) return str(b, r, t & 0x1f)
  if (t >= 0x90 && t <= 0x9f) return array(b, r, t & 0x0f, depth)
  if (t === 0xc0) return null
  if (t === 0xc2) return false
  if (t === 0xc3) return true
  if (t === 0xca) return b.readFloatBE(take(b, r, 4))
  if (t === 0xcb) return b.readDoubleBE(take(b, r, 8))
  // uint 8/16/32 (0xcc–0xce), int 8/16/32 (0xd0–0xd2): widths 1, 2, 4.
  if (t >= 0xcc && t <= 0xce) return uint(b, r, 1 << (t - 0xcc))
  if (t >= 0xd0 && t <= 0xd2) {
    const w = 1 << (t - 0xd0)
    return b.readIntBE(take(b, r, w), w)
  }
  if (t === 0xcf) return Number(b.readBigUInt64BE(take(b, r, 8)))
  if (t === 0xd3) return Number(b.readBigInt64BE(take(b, r, 8)))
  // str 8/16/32 (0xd9–0xdb), array 16/32 (0xdc, 0xdd): the length comes first.
  if (t >= 0xd9 && t <= 0xdb) return str(b, r, uint(b, r, 1 << (t - 0xd9)))
  if (t === 0xdc || t === 0xdd) return array(b, r, uint(b, r, t === 0xdc ? 2 : 4), depth)
  throw new Error(`unsupported msgpack type 0x${t.toString(16)}`)
}

/** An unsigned big-endian integer of `w` bytes (1, 2 or 4). */
function uint(b: Buffer, r: { pos: number }, w: number): number {
  return b.readUIntBE(take(b, r, w), w)
}

/** Reserves `n` bytes and returns where they start. */
function take(b: Buffer, r: { pos: number }, n: number): number {
  const at = r.pos
  if (at + n > b.length) throw new Error('truncated')
  r.pos = at + n
  return at
}

function str(b: Buffer, r: { pos: number }, n: number): string {
  const at = take(b, r, n)
  return b.toString('utf8', at, at + n)
}

function array(b: Buffer, r: { pos: number }, n: number, depth: number): unknown[] {
  if (depth <= 0) throw new Error('nested too deep')
  // Every item takes at least one byte: a length beyond what is left is a lie.
  if (n > b.length - r.pos) throw new Error('truncated')
  const out = new Array<unknown>(n)
  for (let i = 0; i < n; i++) out[i] = read(b, r, depth - 1)
  return out
}
