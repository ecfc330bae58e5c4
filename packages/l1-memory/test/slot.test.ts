import { describe, expect, it } from 'vitest'
import { FrequencySketch, keyHash } from '../src/sketch.js'
import { frequencyOf, recordHit, Slot } from '../src/slot.js'

describe('Slot marks (a saturated key skips the sketch until it ages)', () => {
  it('hits recorded through slots leave the sketch exactly as recording every hit does, across agings', () => {
    // Two sketches, the same accesses: one through slots (which skip saturated keys),
    // one recording every access. A skip that outlived an aging would leave the slot
    // sketch behind on the hot keys.
    const viaSlots = new FrequencySketch(64)
    const every = new FrequencySketch(64)
    const keys = Array.from({ length: 2_000 }, (_, i) => `key:${i}`)
    const slots = new Map(keys.map((k) => [k, new Slot({}, keyHash(k))]))
    let seed = 7
    // An LCG's high bits (its low bits repeat with short periods).
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16
    for (let i = 0; i < 20_000; i++) {
      // Mostly a few hot keys, sometimes any key.
      const key = keys[next() % 2 === 0 ? next() % 2_000 : next() % 5] as string
      recordHit(viaSlots, slots.get(key) as Slot, key)
      every.increment(key)
      expect(viaSlots.ages).toBe(every.ages)
    }
    expect(every.ages).toBeGreaterThan(3)
    // The hot keys ended saturated, so the skip was taken.
    expect([...slots.values()].filter((s) => s.mark < 0).length).toBeGreaterThanOrEqual(5)
    for (const key of keys) {
      expect(frequencyOf(viaSlots, slots.get(key) as Slot, key)).toBe(every.frequency(key))
      expect(viaSlots.frequency(key)).toBe(every.frequency(key))
    }
  })

  it('a saturated key is counted again after an aging', () => {
    const sk = new FrequencySketch(16)
    const slot = new Slot({}, keyHash('hot'))
    for (let i = 0; i < 16; i++) recordHit(sk, slot, 'hot')
    expect(slot.mark).toBeLessThan(0)
    expect(frequencyOf(sk, slot, 'hot')).toBe(15)
    const ages = sk.ages
    for (let i = 0; sk.ages === ages && i < 10_000; i++) sk.increment(`other:${i}`)
    expect(sk.ages).toBe(ages + 1)
    const halved = frequencyOf(sk, slot, 'hot')
    expect(halved).toBeLessThan(15)
    recordHit(sk, slot, 'hot')
    expect(frequencyOf(sk, slot, 'hot')).toBe(halved + 1)
  })
})
