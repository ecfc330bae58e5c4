import { l1DriverSuite } from '@strata/core/testing'
import { describe, expect, it } from 'vitest'
import { estimateSize, memoryL1 } from '../src/index.js'

l1DriverSuite('memoryL1', { create: ({ maxEntries, clock }) => memoryL1({ maxEntries, clock }) })

const entry = (value: unknown) => ({
  value,
  createdAt: 0,
  freshUntil: 1,
  staleUntil: 2,
  tags: [],
  version: 1,
  gen: 0,
  refreshAt: Infinity,
})

describe('memoryL1 specifics', () => {
  it('bounds estimated bytes and rejects single entries over maxEntryBytes', () => {
    const l1 = memoryL1({ maxBytes: 10_000, maxEntryBytes: 2_000 })
    l1.set('big', entry('x'.repeat(5_000)), 1000)
    expect(l1.get('big')).toBeUndefined()
    for (let i = 0; i < 50; i++) l1.set(`k${i}`, entry('y'.repeat(400)), 1000)
    expect(l1.bytes).toBeLessThanOrEqual(10_000)
    expect(l1.size).toBeGreaterThan(5)
    expect(l1.size).toBeLessThan(50)
  })

  it('reports `cleared` for clear() and `deleted` for delete()', () => {
    const l1 = memoryL1()
    const reasons: string[] = []
    l1.onEvict((_, r) => reasons.push(r))
    l1.set('a', entry(1), 1000)
    l1.set('b', entry(2), 1000)
    l1.set('b', entry(3), 1000)
    l1.delete('a')
    l1.clear()
    expect(reasons).toEqual(['replaced', 'deleted', 'cleared'])
  })

  it('uses a custom sizeOf when given', () => {
    const l1 = memoryL1({ maxBytes: 100, maxEntryBytes: 100, sizeOf: () => 30 })
    for (let i = 0; i < 10; i++) l1.set(`k${i}`, entry(i), 1000)
    expect(l1.size).toBe(3)
    expect(l1.bytes).toBe(90)
  })
})

describe('estimateSize', () => {
  it('grows with the value and stays cheap for huge arrays', () => {
    const small = estimateSize({ id: 1, name: 'a' })
    const bigger = estimateSize({ id: 1, name: 'a'.repeat(1000) })
    expect(bigger - small).toBeGreaterThanOrEqual(1998)
    expect(estimateSize(new Uint8Array(10_000))).toBeGreaterThan(10_000)
    const huge = Array.from({ length: 100_000 }, (_, i) => ({ i }))
    const est = estimateSize(huge)
    expect(est).toBeGreaterThan(100_000 * 8)
    expect(estimateSize(new Map([['a', 'b'.repeat(100)]]))).toBeGreaterThan(200)
  })
})

describe('deleting the last entry', () => {
  it('keeps the entry count, eviction events and prefix clears right with the keeper entry', () => {
    const l1 = memoryL1({ maxEntries: 10 })
    const evicted: string[] = []
    l1.onEvict((key, reason) => evicted.push(`${key}:${reason}`))
    l1.set('only', 'v', 1000)
    expect(l1.size).toBe(1)
    expect(l1.delete('only')).toBe(true)
    expect(l1.size).toBe(0)
    expect(l1.get('only')).toBeUndefined()
    expect(evicted).toEqual(['only:deleted'])
    // The keeper holds one slot of lru-cache's own bound; the driver's bound stays usable.
    for (let i = 0; i < 9; i++) l1.set(`k${i}`, i, 1000)
    expect(l1.size).toBe(9)
    l1.clear('k')
    expect(l1.size).toBe(0)
    l1.set('a', 1, 1000)
    l1.clear()
    expect(l1.size).toBe(0)
  })
})

describe("admission: 'tinylfu'", () => {
  it('keeps a frequently read key through a scan of one-off keys that plain LRU lets evict it', () => {
    const run = (admission: 'lru' | 'tinylfu') => {
      const l1 = memoryL1({ maxEntries: 100, admission })
      for (let r = 0; r < 20; r++) {
        for (let h = 0; h < 50; h++) {
          if (l1.get(`hot${h}`) === undefined) l1.set(`hot${h}`, h, 60_000)
        }
      }
      // A scan: 500 keys read once each (every one a miss that fills).
      for (let i = 0; i < 500; i++)
        if (l1.get(`scan${i}`) === undefined) l1.set(`scan${i}`, i, 60_000)
      let kept = 0
      for (let h = 0; h < 50; h++) if (l1.get(`hot${h}`) !== undefined) kept++
      return { kept, size: l1.size }
    }
    const lru = run('lru')
    const tiny = run('tinylfu')
    expect(lru.kept).toBe(0)
    expect(tiny.kept).toBeGreaterThanOrEqual(45)
    expect(tiny.size).toBeLessThanOrEqual(100)
  })

  it('hands back exactly what was stored (null included) and sizes the stored value, not its slot', () => {
    const seen: unknown[] = []
    const l1 = memoryL1({
      maxEntries: 100,
      maxBytes: 10_000,
      admission: 'tinylfu',
      sizeOf: (v) => (seen.push(v), 10),
    })
    const obj = { a: 1 }
    l1.set('n', null, 60_000)
    l1.set('o', obj, 60_000)
    expect(l1.get('n')).toBeNull()
    expect(l1.peek('n')).toBeNull()
    expect(l1.get('o')).toBe(obj)
    expect(l1.peek('o')).toBe(obj)
    // What was stored (or the keeper that stops lru-cache resetting itself), never a slot.
    expect(seen).toContain(obj)
    const storedOrKeeper = (v: unknown) =>
      v === null || v === obj || (typeof v === 'object' && Object.keys(v).length === 0)
    expect(seen.every(storedOrKeeper)).toBe(true)
  })

  it('serves what is in the window or the main area; delete, clear and size cover both', () => {
    // 200 entries: a window of 2 and a main area of 198, which new keys fill first.
    const l1 = memoryL1({ maxEntries: 200, admission: 'tinylfu' })
    for (let i = 0; i < 200; i++) l1.set(`k${i}`, i, 60_000)
    expect(l1.size).toBe(200)
    expect(l1.get('k199')).toBe(199) // in the window
    expect(l1.get('k0')).toBe(0) // in the main area
    l1.set('k200', 200, 60_000) // the window's oldest (k198) competes with main's LRU entry
    expect(l1.size).toBeLessThanOrEqual(200)
    l1.delete('k199')
    expect(l1.get('k199')).toBeUndefined()
    l1.clear('k1')
    expect(l1.get('k10')).toBeUndefined()
    expect(l1.get('k2')).toBe(2)
    l1.clear()
    expect(l1.size).toBe(0)
    expect(() => memoryL1({ admission: 'lfu' as 'lru' })).toThrow(/admission/)
  })
})
