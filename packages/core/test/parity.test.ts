import { createCache, memoryL2 } from '@strata/core'
import { createFakeClock } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { describe, expect, it } from 'vitest'

describe('small conveniences (what BentoCache users reach for)', () => {
  it('has / missing / getOr / pull', async () => {
    const cache = createCache({ l1: memoryL1(), l2: memoryL2() })
    expect(await cache.has('a')).toBe(false)
    expect(await cache.missing('a')).toBe(true)
    expect(await cache.getOr('a', 'fallback')).toBe('fallback')
    expect(await cache.has('a')).toBe(false) // getOr stores nothing
    await cache.set('a', 1)
    expect(await cache.has('a')).toBe(true)
    expect(await cache.getOr('a', 'fallback')).toBe(1)
    expect(await cache.pull('a')).toBe(1)
    expect(await cache.has('a')).toBe(false)
    await cache.getOrSet('nf', () => null)
    expect(await cache.has('nf')).toBe(true) // a cached "not found" is present
    await cache.close()
  })

  it('setForever / getOrSetForever outlive the default TTL by years', async () => {
    const clock = createFakeClock()
    const cache = createCache({ clock, l2: memoryL2({ clock }), ttl: 1_000 })
    await cache.set('short', 1)
    await cache.setForever('f', 'x')
    expect(await cache.getOrSetForever('g', () => 'y')).toBe('y')
    clock.advance(10 * 365 * 86_400_000)
    expect(await cache.get('short')).toBeUndefined()
    expect(await cache.get('f')).toBe('x')
    expect(await cache.getOrSet('g', () => 'reloaded')).toBe('y')
    await cache.close()
  })
})

describe('the fill event', () => {
  it('fires once per stored load (with whether L2 took it), not on hits or writes', async () => {
    const cache = createCache({ l1: memoryL1(), l2: memoryL2() })
    const fills: { key: string; l2: boolean }[] = []
    cache.on('fill', (e) => fills.push(e))
    await cache.getOrSet('a', () => 1)
    await cache.getOrSet('a', () => 2)
    await cache.set('b', 1)
    await cache.getOrSetMany(['c', 'd'], () => new Map([['c', 3]]))
    expect(fills).toEqual([
      { key: 'strata::a', l2: true },
      { key: 'strata::c', l2: true },
      { key: 'strata::d', l2: true },
    ])
    await cache.close()
  })
})
