import { describe, expect, it } from 'vitest'
import { createFakeClock, type FakeClock } from '../clock.js'
import type { EvictionReason, L1Driver, L1Entry } from '../contracts.js'

export interface L1SuiteOptions {
  /** Builds a fresh driver bounded to `maxEntries`, on the given clock. */
  create(opts: { maxEntries: number; clock: FakeClock }): L1Driver
}

export function entry(value: unknown, now = 0): L1Entry {
  return {
    value,
    createdAt: now,
    freshUntil: now + 1000,
    staleUntil: now + 2000,
    tags: [],
    version: 1,
    gen: 0,
    refreshAt: Infinity,
  }
}

export function l1DriverSuite(name: string, options: L1SuiteOptions): void {
  describe(`L1 driver conformance: ${name}`, () => {
    const make = (maxEntries = 100) => {
      const clock = createFakeClock()
      return { clock, l1: options.create({ maxEntries, clock }) }
    }

    it('stores and returns the same live object (no serialization)', () => {
      const { l1 } = make()
      const e = entry({ a: 1 })
      l1.set('k', e, 1000)
      expect(l1.get('k')).toBe(e)
      expect(l1.get('missing')).toBeUndefined()
      expect(l1.size).toBe(1)
    })

    it('delete() removes one key and reports whether it existed', () => {
      const { l1 } = make()
      l1.set('a', entry(1), 1000)
      l1.set('b', entry(2), 1000)
      expect(l1.delete('a')).toBe(true)
      expect(l1.delete('a')).toBe(false)
      expect(l1.get('a')).toBeUndefined()
      expect((l1.get('b') as L1Entry | undefined)?.value).toBe(2)
    })

    it('clear(prefix) removes only keys with that prefix; clear() removes all', () => {
      const { l1 } = make()
      l1.set('p:ns:1', entry(1), 1000)
      l1.set('p:ns:2', entry(2), 1000)
      l1.set('p:other:1', entry(3), 1000)
      l1.clear('p:ns:')
      expect(l1.get('p:ns:1')).toBeUndefined()
      expect(l1.get('p:ns:2')).toBeUndefined()
      expect((l1.get('p:other:1') as L1Entry | undefined)?.value).toBe(3)
      l1.clear()
      expect(l1.size).toBe(0)
    })

    it('honours the physical TTL on its clock', () => {
      const { l1, clock } = make()
      l1.set('k', entry('v'), 100)
      clock.advance(99)
      expect((l1.get('k') as L1Entry | undefined)?.value).toBe('v')
      clock.advance(2)
      expect(l1.get('k')).toBeUndefined()
    })

    it('stays within maxEntries, evicting the least recently used and saying why', () => {
      const { l1 } = make(3)
      const reasons: [string, EvictionReason][] = []
      l1.onEvict?.((k, r) => reasons.push([k, r]))
      for (const k of ['a', 'b', 'c']) l1.set(k, entry(k), 1000)
      l1.get('a')
      l1.set('d', entry('d'), 1000)
      expect(l1.size).toBe(3)
      expect(l1.get('b')).toBeUndefined()
      expect((l1.get('a') as L1Entry | undefined)?.value).toBe('a')
      if (l1.onEvict) expect(reasons).toContainEqual(['b', 'evicted'])
    })

    it('peek (when offered) returns what get would, without counting as an access', () => {
      const { l1, clock } = make(3)
      if (!l1.peek) return
      for (const k of ['a', 'b', 'c']) l1.set(k, entry(k), 1000)
      expect((l1.peek('a') as L1Entry | undefined)?.value).toBe('a')
      expect(l1.peek('missing')).toBeUndefined()
      l1.set('d', entry('d'), 1000) // 'a' was only peeked: still the least recently used
      expect(l1.get('a')).toBeUndefined()
      clock.advance(1001)
      expect(l1.peek('d')).toBeUndefined()
    })

    it('stores bare values (null, primitives, objects) as they are, bounded by the TTL', () => {
      const { l1, clock } = make()
      const obj = { a: 1 }
      l1.set('null', null, 100)
      l1.set('num', 42, 100)
      l1.set('obj', obj, 100)
      expect(l1.get('null')).toBeNull()
      expect(l1.get('num')).toBe(42)
      expect(l1.get('obj')).toBe(obj)
      clock.advance(101)
      expect(l1.get('null')).toBeUndefined()
      expect(l1.get('obj')).toBeUndefined()
    })

    it('a non-positive TTL stores nothing', () => {
      const { l1 } = make()
      l1.set('k', entry('v'), 0)
      expect(l1.get('k')).toBeUndefined()
    })
  })
}
