/**
 * A count-min sketch of access frequencies (TinyLFU's "doorkeeper-less" variant): 4 rows
 * of saturating 4-bit counters (max 15); every `sampleSize` increments all counters are
 * halved, so the sketch forgets old popularity (aging).
 *
 * A key's 4 counters sit in one block of 4 words (16 bytes, inside one cache line), as
 * Caffeine confines a key's counters to one block: row r is word r of the block, and the
 * key's hash picks one of its 8 counters. An access touches one cache line instead of 4
 * far-apart ones. 32 counters per entry of the bound (16 bytes); aging every 20× the
 * bound, chosen by measurement (docs/benchmarks.md, hit-ratio).
 */
export class FrequencySketch {
  /** Int32 words: reads stay small integers (a Uint32Array's top-bit words read as heap numbers). */
  readonly #table: Int32Array
  /** Block index mask (blocks are 4 words). */
  readonly #mask: number
  readonly #sampleSize: number
  #additions = 0
  /**
   * How many times the counters have been halved. Between two agings counters only grow:
   * a key whose four counters are all at 15 stays there until `ages` changes, so its
   * holder may skip `add` until then (nothing would change, not even the sample count).
   */
  ages = 0

  constructor(maxEntries: number) {
    let blocks = 16
    while (blocks < maxEntries) blocks *= 2
    this.#table = new Int32Array(blocks * 4)
    this.#mask = blocks - 1
    this.#sampleSize = 20 * Math.max(64, maxEntries)
  }

  /** Records one access of `key`. */
  increment(key: string): void {
    this.add(keyHash(key))
  }

  /**
   * Records one access of the key whose `keyHash` is `h`. Returns true when nothing
   * changed: the key's four counters were all at 15 already.
   */
  add(h: number): boolean {
    const t = this.#table
    // The block: the hash's low bits; row r's counter in word r: 3 of the top 12 bits each
    // (they overlap the block bits only beyond 2^19 blocks, a bound over 500 000 entries).
    const at = (h & this.#mask) << 2
    const w0 = t[at] as number
    const w1 = t[at + 1] as number
    const w2 = t[at + 2] as number
    const w3 = t[at + 3] as number
    const s0 = ((h >>> 19) & 7) << 2
    const s1 = ((h >>> 22) & 7) << 2
    const s2 = ((h >>> 25) & 7) << 2
    const s3 = ((h >>> 28) & 7) << 2
    let added = false
    if (((w0 >>> s0) & 15) < 15) {
      t[at] = (w0 + (1 << s0)) | 0
      added = true
    }
    if (((w1 >>> s1) & 15) < 15) {
      t[at + 1] = (w1 + (1 << s1)) | 0
      added = true
    }
    if (((w2 >>> s2) & 15) < 15) {
      t[at + 2] = (w2 + (1 << s2)) | 0
      added = true
    }
    if (((w3 >>> s3) & 15) < 15) {
      t[at + 3] = (w3 + (1 << s3)) | 0
      added = true
    }
    if (!added) return true
    if (++this.#additions >= this.#sampleSize) this.#age()
    return false
  }

  /** The estimated number of recent accesses of `key` (0–15). */
  frequency(key: string): number {
    return this.frequencyOf(keyHash(key))
  }

  /** `frequency` of the key whose `keyHash` is `h`. */
  frequencyOf(h: number): number {
    const t = this.#table
    const at = (h & this.#mask) << 2
    return Math.min(
      ((t[at] as number) >>> (((h >>> 19) & 7) << 2)) & 15,
      ((t[at + 1] as number) >>> (((h >>> 22) & 7) << 2)) & 15,
      ((t[at + 2] as number) >>> (((h >>> 25) & 7) << 2)) & 15,
      ((t[at + 3] as number) >>> (((h >>> 28) & 7) << 2)) & 15,
    )
  }

  #age(): void {
    const t = this.#table
    // Every counter halved at once: shift the word, drop the bit each nibble received from its neighbour.
    for (let i = 0; i < t.length; i++) t[i] = ((t[i] as number) >>> 1) & 0x77777777
    this.#additions = Math.floor(this.#additions / 2)
    this.ages++
  }
}

/**
 * MurmurHash3's body over the UTF-16 code units, two per 32-bit block, then `mix` (no
 * allocation), as 31 bits (0 to 2^31 - 1: a small integer, and negative numbers stay free
 * for an entry's saturation mark). Measured: about half the time of one-unit-at-a-time
 * FNV-1a on 30–40 character keys, the same on short ones.
 */
export function keyHash(s: string): number {
  const n = s.length
  let h = n
  let i = 0
  for (; i + 1 < n; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (i < n) {
    let k = Math.imul(s.charCodeAt(i), 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
  }
  return mix(h) >>> 1
}

/** Finalizer: every input bit reaches the low bits (the word) and the top bits (the counters). */
function mix(h: number): number {
  let x = Math.imul(h ^ (h >>> 16), 0x45d9f3b)
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b)
  return x ^ (x >>> 16)
}
