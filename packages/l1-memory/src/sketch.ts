/**
 * A count-min sketch of access frequencies (TinyLFU's "doorkeeper-less" variant, as in
 * Caffeine's FrequencySketch): 4 rows of saturating counters (max 15) indexed by double
 * hashing; every `sampleSize` increments all counters are halved, so the sketch forgets
 * old popularity (aging). Width 4× the entry bound and aging every 20× the bound were
 * chosen by measurement (docs/benchmarks.md, hit-ratio): 4 × width bytes, ≈ 16 bytes
 * per entry of the bound.
 */
export class FrequencySketch {
  readonly #table: Uint8Array
  readonly #mask: number
  readonly #sampleSize: number
  #additions = 0

  constructor(maxEntries: number) {
    let width = 64
    while (width < maxEntries * 4) width *= 2
    this.#table = new Uint8Array(width * 4)
    this.#mask = width - 1
    this.#sampleSize = 20 * Math.max(64, maxEntries)
  }

  /** Records one access of `key`. */
  increment(key: string): void {
    const h = hash(key)
    const h2 = rehash(h)
    const t = this.#table
    const w = this.#mask + 1
    let added = false
    for (let i = 0; i < 4; i++) {
      const at = i * w + ((h + i * h2) & this.#mask)
      if ((t[at] as number) < 15) {
        t[at] = (t[at] as number) + 1
        added = true
      }
    }
    if (added && ++this.#additions >= this.#sampleSize) this.#age()
  }

  /** The estimated number of recent accesses of `key` (0–15). */
  frequency(key: string): number {
    const h = hash(key)
    const h2 = rehash(h)
    const t = this.#table
    const w = this.#mask + 1
    let min = 15
    for (let i = 0; i < 4; i++) {
      const v = t[i * w + ((h + i * h2) & this.#mask)] as number
      if (v < min) min = v
    }
    return min
  }

  #age(): void {
    const t = this.#table
    for (let i = 0; i < t.length; i++) t[i] = (t[i] as number) >>> 1
    this.#additions = Math.floor(this.#additions / 2)
  }
}

/** FNV-1a over the UTF-16 code units (cheap, no allocation). */
function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** A second, independent-enough hash for double hashing (odd, so rows differ). */
function rehash(h: number): number {
  let x = Math.imul(h ^ (h >>> 16), 0x45d9f3b)
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b)
  return ((x ^ (x >>> 16)) | 1) >>> 0
}
