import { createCache, errors, memoryL2, MemoryBusHub, type CacheEvents } from '@strata/core'
import { createFakeClock } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { afterEach, describe, expect, it } from 'vitest'
import { deferred, MATRIX, settle, setup, type Setup } from './matrix.js'

/**
 * What BentoCache users rely on (docs/coming-from-bentocache.md), on every tier set:
 * expire, forceFresh, ctx.skip(), skipL2Write / skipBusNotify, get with allowStale and
 * defaultValue, a loader that outlives its hard timeout, the hit event's stale flag.
 */
describe.each(MATRIX)('migration parity [%s]', (tiers) => {
  let s: Setup
  afterEach(async () => s.close())
  const failing = () => Promise.reject(new Error('source down'))

  it('expire: stale at once, kept for grace (allowStale, fail-safe), reloaded by the next getOrSet', async () => {
    s = setup(tiers, { ttl: 1_000, grace: 60_000 })
    await s.cache.set('e', 'v1')
    await s.cache.expire('e')
    expect(await s.cache.get('e')).toBeUndefined()
    expect(await s.cache.get('e', { allowStale: true })).toBe('v1')
    expect(await s.cache.getOrSet('e', failing)).toBe('v1') // fail-safe serves the kept copy
    s.clock.advance(5_001) // past the backoff
    expect(await s.cache.getOrSet('e', () => 'v2')).toBe('v2')
    expect(await s.cache.get('e')).toBe('v2')
  })

  it('expire: an entry without grace is gone; expiring a missing key is a no-op', async () => {
    s = setup(tiers, { ttl: 1_000 })
    await s.cache.set('n', 'v1')
    await s.cache.expire('n')
    await s.cache.expire('never-set')
    expect(await s.cache.get('n', { allowStale: true })).toBeUndefined()
    await expect(s.cache.getOrSet('n', failing)).rejects.toMatchObject({
      code: errors.E_LOADER_ERROR,
    })
  })

  it('forceFresh: calls the loader despite a fresh value and stores what it returns', async () => {
    s = setup(tiers, { ttl: 10_000, grace: 60_000 })
    let calls = 0
    const load = () => `v${++calls}`
    expect(await s.cache.getOrSet('f', load)).toBe('v1')
    expect(await s.cache.getOrSet('f', load)).toBe('v1')
    expect(await s.cache.getOrSet('f', load, { forceFresh: true })).toBe('v2')
    expect(await s.cache.get('f')).toBe('v2')
    expect(
      await s.cache.getOrSetMany(['f'], () => new Map([['f', 'm']]), { forceFresh: true }),
    ).toEqual(['m'])
    // A failing forced load falls back to the cached value, served as stale.
    expect(await s.cache.getOrSet('f', failing, { forceFresh: true })).toBe('m')
    expect(s.cache.stats().staleServed).toBe(1)
  })

  it('ctx.skip(): the callers get the value, nothing is cached, the next read loads again', async () => {
    s = setup(tiers)
    expect(
      await s.cache.getOrSet('k', (ctx) => {
        ctx.skip()
        return 'partial'
      }),
    ).toBe('partial')
    expect(await s.cache.get('k')).toBeUndefined()
    expect(await s.cache.getOrSet<string | undefined>('k', (ctx) => ctx.skip())).toBeUndefined()
    expect(await s.cache.getOrSet('k', () => 'full')).toBe('full')
    expect(await s.cache.get('k')).toBe('full')
  })

  it('get: defaultValue on a miss, and allowStale within grace only', async () => {
    s = setup(tiers, { ttl: 1_000, grace: 2_000 })
    expect(await s.cache.get('g', { defaultValue: 'd' })).toBe('d')
    await s.cache.set('g', 'v')
    s.clock.advance(1_500)
    expect(await s.cache.get('g')).toBeUndefined()
    expect(await s.cache.get('g', { allowStale: true, defaultValue: 'd' })).toBe('v')
    s.clock.advance(1_600) // past ttl + grace
    expect(await s.cache.get('g', { allowStale: true, defaultValue: 'd' })).toBe('d')
  })

  it('a loader that outlives its hard timeout stores its value (its caller got the error)', async () => {
    s = setup(tiers, { timeouts: { hard: 100 } })
    const slow = deferred<string>()
    const fills: CacheEvents['fill'][] = []
    s.cache.on('fill', (e) => fills.push(e))
    const pending = s.cache.getOrSet('h', () => slow.promise)
    const check = expect(pending).rejects.toMatchObject({ code: errors.E_LOADER_TIMEOUT })
    await settle()
    await s.clock.advanceAsync(101)
    await check
    slow.resolve('late')
    await settle()
    expect(fills).toHaveLength(1)
    expect(await s.cache.get('h')).toBe('late')
    expect(await s.cache.getOrSet('h', () => 'unused')).toBe('late')
  })

  it('a late value ends the backoff of a key served stale at its hard timeout', async () => {
    s = setup(tiers, { ttl: 1_000, grace: 60_000, timeouts: { hard: 100 } })
    await s.cache.set('b', 'old')
    s.clock.advance(1_001)
    const slow = deferred<string>()
    const pending = s.cache.getOrSet('b', () => slow.promise)
    await settle()
    await s.clock.advanceAsync(101)
    expect(await pending).toBe('old')
    slow.resolve('new')
    await settle()
    expect(await s.cache.getOrSet('b', () => 'unused')).toBe('new')
  })

  it('the hit event says stale: true exactly when a stale value is handed out', async () => {
    s = setup(tiers, { ttl: 1_000, grace: 60_000 })
    const hits: boolean[] = []
    s.cache.on('hit', (e) => hits.push(e.stale))
    await s.cache.getOrSet('s', () => 'v')
    await s.cache.get('s')
    s.clock.advance(1_001)
    expect(await s.cache.getOrSet('s', failing)).toBe('v')
    expect(await s.cache.get('s', { allowStale: true })).toBe('v')
    expect(hits).toEqual([false, true, true])
  })
})

describe('skipL2Write / skipBusNotify (two replicas, shared L2, one bus)', () => {
  function pair() {
    const clock = createFakeClock()
    const l2 = memoryL2({ clock })
    const hub = new MemoryBusHub()
    const make = () => createCache({ clock, l1: memoryL1({ clock }), l2, bus: hub.bus() })
    return { l2, a: make(), b: make() }
  }

  it('skipL2Write on a load: L1 only, L2 keeps what it had', async () => {
    const { l2, a, b } = pair()
    expect(await a.getOrSet('k', () => 'local', { skipL2Write: true })).toBe('local')
    expect(await a.get('k')).toBe('local')
    expect(await l2.get('strata::k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    await Promise.all([a.close(), b.close()])
  })

  it('skipL2Write on a set: L1 here, the key deleted in L2, every replica told', async () => {
    const { l2, a, b } = pair()
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    // Not encodable by the JSON codec: fine, it never reaches L2.
    const local = { n: 10n }
    await a.set('k', local, { skipL2Write: true })
    await settle()
    expect(await a.get('k')).toBe(local)
    expect(await l2.get('strata::k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined() // b dropped v1 and L2 has nothing older
    await Promise.all([a.close(), b.close()])
  })

  it('skipBusNotify on a set: peers are not told (documented unsafe: b keeps v1 in L1)', async () => {
    const { a, b } = pair()
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    await a.set('k', 'v2', { skipBusNotify: true })
    await settle()
    expect(await a.get('k')).toBe('v2')
    expect(await b.get('k')).toBe('v1')
    await a.set('k', 'v3')
    await settle()
    expect(await b.get('k')).toBe('v3')
    await Promise.all([a.close(), b.close()])
  })

  it('expire reaches every replica: a peer drops its copy and reads the kept one as stale', async () => {
    const clock = createFakeClock()
    const l2 = memoryL2({ clock })
    const hub = new MemoryBusHub()
    const make = () =>
      createCache({ clock, l1: memoryL1({ clock }), l2, bus: hub.bus(), grace: 60_000 })
    const [a, b] = [make(), make()]
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    await a.expire('k')
    await settle()
    expect(await b.get('k')).toBeUndefined()
    expect(await b.get('k', { allowStale: true })).toBe('v1')
    expect(await b.getOrSet('k', () => 'v2')).toBe('v2')
    expect(await a.get('k')).toBe('v2')
    await Promise.all([a.close(), b.close()])
  })

  it('expire racing a load that began before it: the late fill cannot undo the expiry', async () => {
    const clock = createFakeClock()
    const l2 = memoryL2({ clock })
    const hub = new MemoryBusHub()
    const make = () =>
      createCache({ clock, l1: memoryL1({ clock }), l2, bus: hub.bus(), ttl: 1_000, grace: 60_000 })
    const [a, b] = [make(), make()]
    await a.set('k', 'v1')
    clock.advance(1_001) // stale within grace: a's next read loads (under a lease)
    const slow = deferred<string>()
    const loading = a.getOrSet('k', () => slow.promise)
    await settle()
    await b.expire('k') // the source changed after a's load read it
    slow.resolve('read before the expire')
    expect(await loading).toBe('read before the expire')
    await settle()
    expect(await a.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    expect(await b.get('k', { allowStale: true })).toBe('v1')
    await Promise.all([a.close(), b.close()])
  })
})
