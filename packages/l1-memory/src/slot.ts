import { keyHash, type FrequencySketch } from './sketch.js'

/**
 * W-TinyLFU only: a stored value with its key's sketch mark, so most hits record
 * themselves without hashing their key. The mark is the key's `keyHash` (≥ 0), computed
 * when the value is stored; once the sketch reports the key's counters all at 15, it
 * becomes `-1 - sketch.ages`, and hits skip the sketch until the next aging (nothing they
 * recorded would change it), when the key is hashed once more. A slot is ~40 bytes (1.17×
 * an lru-cache entry in all, against 1.07× without slots; docs/benchmarks.md, memory).
 */
export class Slot {
  constructor(
    readonly value: object,
    public mark: number,
  ) {}
}

/** Records one access of `key`, held in `slot`. */
export function recordHit(sketch: FrequencySketch, slot: Slot, key: string): void {
  const m = slot.mark
  if (m === -1 - sketch.ages) return
  const h = m >= 0 ? m : keyHash(key)
  slot.mark = sketch.add(h) ? -1 - sketch.ages : h
}

/** The sketch's estimate of `key`'s recent accesses (0–15), held in `slot`. */
export function frequencyOf(sketch: FrequencySketch, slot: Slot, key: string): number {
  const m = slot.mark
  if (m === -1 - sketch.ages) return 15
  return sketch.frequencyOf(m >= 0 ? m : keyHash(key))
}
