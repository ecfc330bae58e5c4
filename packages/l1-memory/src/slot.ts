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

/** Whether `slot`'s key was seen with all four counters at 15 since the last aging. */
export function saturated(sketch: FrequencySketch, slot: Slot): boolean {
  return slot.mark === -1 - sketch.ages
}

/**
 * Records one access of `key`, held in `slot`, unless it is `saturated` (a hit path
 * checks that first itself, so the common case costs no call).
 */
export function recordHit(sketch: FrequencySketch, slot: Slot, key: string): void {
  if (saturated(sketch, slot)) return
  const m = slot.mark
  const h = m >= 0 ? m : keyHash(key)
  slot.mark = sketch.add(h) ? -1 - sketch.ages : h
}

/** The sketch's estimate of `key`'s recent accesses (0–15), held in `slot`. */
export function frequencyOf(sketch: FrequencySketch, slot: Slot, key: string): number {
  if (saturated(sketch, slot)) return 15
  const m = slot.mark
  return sketch.frequencyOf(m >= 0 ? m : keyHash(key))
}
