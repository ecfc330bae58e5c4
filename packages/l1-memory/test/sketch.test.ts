import { describe, expect, it } from 'vitest'
import { FrequencySketch } from '../src/sketch.js'

describe('FrequencySketch', () => {
  it('counts accesses of a key up to 15, and an unseen key reads 0', () => {
    const sk = new FrequencySketch(10_000)
    expect(sk.frequency('a')).toBe(0)
    for (let i = 1; i <= 20; i++) {
      sk.increment('a')
      expect(sk.frequency('a')).toBe(Math.min(i, 15))
    }
    // A big table and one key: other keys share at most some of its four counters.
    for (let i = 0; i < 100; i++) expect(sk.frequency(`other${i}`)).toBeLessThan(15)
  })

  it('estimates never fall below the true count among many keys (count-min), and separate hot from cold', () => {
    const sk = new FrequencySketch(1_000)
    for (let k = 0; k < 2_000; k++) for (let n = 0; n < k % 4; n++) sk.increment(`key:${k}`)
    for (let k = 0; k < 2_000; k++) expect(sk.frequency(`key:${k}`)).toBeGreaterThanOrEqual(k % 4)
    let cold = 0
    for (let k = 0; k < 2_000; k += 4) cold += sk.frequency(`key:${k}`)
    let warm = 0
    for (let k = 3; k < 2_000; k += 4) warm += sk.frequency(`key:${k}`)
    expect(warm / 500).toBeGreaterThan(cold / 500 + 2)
  })

  it('ages: after 20× the bound of further accesses an old favourite no longer looks hot', () => {
    const sk = new FrequencySketch(100)
    for (let i = 0; i < 15; i++) sk.increment('old')
    expect(sk.frequency('old')).toBe(15)
    // 3 × 2 000 accesses of other keys: three halvings (15 → 1, plus what others add).
    for (let i = 0; i < 6_000; i++) sk.increment(`k${i}`)
    expect(sk.frequency('old')).toBeLessThan(8)
    for (let i = 0; i < 15; i++) sk.increment('new')
    expect(sk.frequency('new')).toBe(15)
  })

  it('keys of any length and with non-ASCII code units are counted apart', () => {
    const sk = new FrequencySketch(10_000)
    const keys = ['', 'x', 'ab', 'abc', 'é', '键:1', 'tenant-42::users:profile:123456']
    keys.forEach((k, i) => {
      for (let n = 0; n <= i; n++) sk.increment(k)
    })
    keys.forEach((k, i) => expect(sk.frequency(k)).toBeGreaterThanOrEqual(i + 1))
  })
})
