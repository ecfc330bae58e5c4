import { CacheError, createCache, errors, memoryL2 } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { afterEach, describe, expect, it } from 'vitest'
import { MATRIX, settle, setup, type Setup } from './matrix.js'

describe.each(MATRIX)('write path, tags and namespaces [%s]', (tiers) => {
  let s: Setup
  afterEach(async () => {
    await s.close()
  })

  it('set overwrites, delete and deleteMany remove', async () => {
    s = setup(tiers)
    await s.cache.set('a', { n: 1 })
    await s.cache.set('a', { n: 2 })
    await s.cache.setMany([
      { key: 'b', value: 'B' },
      { key: 'c', value: 'C', options: { ttl: 5 } },
    ])
    expect(await s.cache.getMany(['a', 'b', 'c'])).toEqual([{ n: 2 }, 'B', 'C'])
    await s.cache.delete('a')
    expect(await s.cache.get('a')).toBeUndefined()
    await s.cache.deleteMany(['b', 'c', 'never'])
    expect(await s.cache.getMany(['b', 'c'])).toEqual([undefined, undefined])
  })

  it('invalidateTags makes every tagged entry a miss, leaves others', async () => {
    s = setup(tiers)
    let calls = 0
    const load = (v: string) => () => {
      calls++
      return v
    }
    await s.cache.getOrSet('u1', load('one'), { tags: ['users'] })
    await s.cache.getOrSet('u2', load('two'), { tags: ['users', 'admins'] })
    await s.cache.set('p1', 'product', { tags: ['products'] })
    await s.cache.invalidateTags(['users'])
    expect(await s.cache.get('u1')).toBeUndefined()
    expect(await s.cache.get('u2')).toBeUndefined()
    expect(await s.cache.get('p1')).toBe('product')
    expect(await s.cache.getOrSet('u1', load('one again'), { tags: ['users'] })).toBe('one again')
    expect(calls).toBe(3)
    // Entries written after the invalidation are served again.
    expect(await s.cache.get('u1')).toBe('one again')
  })

  it('namespaces scope keys; namespace.clear() removes only that namespace (and its children)', async () => {
    s = setup(tiers)
    const users = s.cache.namespace('users')
    const admins = users.namespace('admins')
    const posts = s.cache.namespace('posts')
    await s.cache.set('1', 'root')
    await users.set('1', 'user')
    await admins.set('1', 'admin')
    await posts.set('1', 'post')
    expect([
      await s.cache.get('1'),
      await users.get('1'),
      await admins.get('1'),
      await posts.get('1'),
    ]).toEqual(['root', 'user', 'admin', 'post'])
    await users.clear()
    expect([
      await s.cache.get('1'),
      await users.get('1'),
      await admins.get('1'),
      await posts.get('1'),
    ]).toEqual(['root', undefined, undefined, 'post'])
    await s.cache.clear()
    expect(await posts.get('1')).toBeUndefined()
    expect(await s.cache.get('1')).toBeUndefined()
  })

  it('a key that looks like a namespace path cannot collide with a namespace', async () => {
    s = setup(tiers)
    await s.cache.set('users:1', 'root-key')
    await s.cache.namespace('users').set('1', 'ns-key')
    expect(await s.cache.get('users:1')).toBe('root-key')
    await s.cache.namespace('users').clear()
    expect(await s.cache.get('users:1')).toBe('root-key')
  })

  it('stats count hits per tier, loads, coalesced and stale', async () => {
    s = setup(tiers)
    await s.cache.getOrSet('k', () => 1)
    await s.cache.getOrSet('k', () => 1)
    await s.cache.get('nope')
    const st = s.cache.stats()
    expect(st.loads).toBe(1)
    if (tiers === 'l2') {
      expect(st.l2.hits).toBe(1)
      expect(st.l1.entries).toBe(0)
    } else {
      expect(st.l1.hits).toBe(1)
      expect(st.l1.entries).toBe(1)
      expect(st.l1.misses).toBe(2)
    }
    expect(st.bus.state).toBe(tiers === 'l1+l2+bus' ? 'connected' : 'none')
  })

  it('events fire for hit, miss, set and delete', async () => {
    s = setup(tiers)
    const seen: string[] = []
    s.cache.on('hit', (e) => seen.push(`hit:${e.tier}`))
    s.cache.on('miss', () => seen.push('miss'))
    s.cache.on('set', () => seen.push('set'))
    const off = s.cache.on('delete', () => seen.push('delete'))
    await s.cache.get('a')
    await s.cache.set('a', 1)
    await s.cache.get('a')
    await s.cache.delete('a')
    off()
    await s.cache.delete('a')
    expect(seen).toEqual(['miss', 'set', tiers === 'l2' ? 'hit:l2' : 'hit:l1', 'delete'])
  })
})

describe('bad input', () => {
  const s = setup('l1+l2')
  it('rejects invalid keys with E_INVALID_KEY', async () => {
    for (const bad of ['', 'x'.repeat(1025), 42, undefined, null]) {
      await expect(s.cache.get(bad as string)).rejects.toMatchObject({ code: errors.E_INVALID_KEY })
      await expect(s.cache.set(bad as string, 1)).rejects.toMatchObject({
        code: errors.E_INVALID_KEY,
      })
    }
    await expect(s.cache.getMany(['ok', ''])).rejects.toMatchObject({ code: errors.E_INVALID_KEY })
  })

  it('rejects undefined values and oversized values', async () => {
    await expect(s.cache.set('u', undefined)).rejects.toMatchObject({
      code: errors.E_UNDEFINED_VALUE,
    })
    const small = createCache({ l2: memoryL2(), maxValueBytes: 100 })
    await expect(small.set('big', 'x'.repeat(1000))).rejects.toMatchObject({
      code: errors.E_VALUE_TOO_LARGE,
    })
    expect(await small.get('big')).toBeUndefined()
    await expect(small.set('fn', { f: () => 1 })).rejects.toMatchObject({
      code: errors.E_NOT_SERIALIZABLE,
    })
  })

  it('validates options at construction and names the option', () => {
    const expectOption = (fn: () => unknown, name: string) => {
      try {
        fn()
        expect.unreachable()
      } catch (err) {
        expect(err).toBeInstanceOf(CacheError)
        expect((err as CacheError).code).toBe(errors.E_INVALID_OPTION)
        expect((err as CacheError).message).toContain(name)
      }
    }
    expectOption(() => createCache({}), 'at least one tier')
    expectOption(() => createCache({ l1: memoryL1(), ttl: -1 }), 'ttl')
    expectOption(() => createCache({ l1: memoryL1(), ttl: '5 parsecs' as never }), 'ttl')
    expectOption(() => createCache({ l1: memoryL1(), jitter: 2 }), 'jitter')
    expectOption(() => createCache({ l1: memoryL1(), refreshAhead: 1 }), 'refreshAhead')
    expectOption(() => createCache({ l1: memoryL1(), prefix: 'a:b' }), 'prefix')
    expectOption(
      () => createCache({ l1: memoryL1(), timeouts: { soft: 500, hard: 100 } }),
      'timeouts.soft',
    )
    expectOption(() => createCache({ l1: memoryL1(), distributedLock: true }), 'distributedLock')
    expectOption(() => memoryL1({ maxEntries: 0 }), 'maxEntries')
    expectOption(() => memoryL1({ maxBytes: -5 }), 'maxBytes')
    expectOption(() => s.cache.namespace('a/b'), 'namespace')
  })

  it('rejects calls after close with E_CLOSED', async () => {
    const c = createCache({ l1: memoryL1() })
    await c.close()
    await expect(c.getOrSet('k', () => 1)).rejects.toMatchObject({ code: errors.E_CLOSED })
    await expect(c.set('k', 1)).rejects.toMatchObject({ code: errors.E_CLOSED })
  })

  it('corrupt bytes in L2 are a counted miss: event, key deleted, loader called', async () => {
    const c = setup('l1+l2')
    const seen: string[] = []
    c.cache.on('error', (e) => seen.push(e.error.code))
    c.l2?.rawSet('test::bad', new Uint8Array([0xff, 1, 2, 3]))
    c.l2?.rawSet('test::bad2', new Uint8Array([0x01, ...new TextEncoder().encode('{"value":1}')]))
    expect(await c.cache.get('bad')).toBeUndefined()
    expect(await c.cache.getOrSet('bad2', () => 'fresh')).toBe('fresh')
    expect(seen).toEqual([errors.E_CORRUPT_ENTRY, errors.E_CORRUPT_ENTRY])
    expect(c.cache.stats().l2.corrupt).toBe(2)
    expect(await c.l2?.get('test::bad')).toBeUndefined()
    await c.close()
  })
})

describe('L1 behaviour', () => {
  it('returns shared references by default and copies with clone: true', async () => {
    const shared = setup('l1')
    const obj = { n: 1 }
    await shared.cache.set('o', obj)
    expect(await shared.cache.get('o')).toBe(obj)
    const cloning = setup('l1', { clone: true })
    await cloning.cache.set('o', obj)
    const copy = await cloning.cache.get<{ n: number }>('o')
    expect(copy).toEqual(obj)
    expect(copy).not.toBe(obj)
    copy!.n = 99
    expect(await cloning.cache.get('o')).toEqual({ n: 1 })
  })

  it('l1Ttl caps how long L1 serves before asking L2 again', async () => {
    const s = setup('l1+l2', { ttl: 10_000, l1Ttl: 100 })
    await s.cache.set('k', 'v1')
    // Another writer changes L2 without a bus: L1 notices only after l1Ttl.
    const other = createCache({ l2: s.l2!, prefix: 'test', clock: s.clock })
    await other.set('k', 'v2')
    expect(await s.cache.get('k')).toBe('v1')
    s.clock.advance(101)
    expect(await s.cache.get('k')).toBe('v2')
    await s.close()
  })

  it('maxEntries bounds L1 and evictions are counted with a reason', async () => {
    const s = setup('l1')
    const small = createCache({ l1: memoryL1({ maxEntries: 10, clock: s.clock }), clock: s.clock })
    const evicted: string[] = []
    small.on('evict', (e) => evicted.push(e.reason))
    for (let i = 0; i < 25; i++) await small.set(`k${i}`, i)
    expect(small.stats().l1.entries).toBe(10)
    expect(small.stats().l1.evictions['evicted']).toBe(15)
    expect(evicted.filter((r) => r === 'evicted')).toHaveLength(15)
  })

  it('maxBytes bounds the estimated size', async () => {
    const small = createCache({ l1: memoryL1({ maxBytes: 20_000 }) })
    for (let i = 0; i < 100; i++) await small.set(`k${i}`, 'x'.repeat(1000))
    const st = small.stats()
    expect(st.l1.bytes).toBeLessThanOrEqual(20_000)
    expect(st.l1.entries).toBeLessThan(100)
    expect(st.l1.entries).toBeGreaterThan(0)
  })
})

describe('an L2 write that fails', () => {
  it('drops the local copy, still tells peers, and rejects E_L2_UNAVAILABLE', async () => {
    const s = setup('l1+l2+bus')
    await s.cache.set('k', 'old')
    expect(await s.peer!.get('k')).toBe('old')
    const l2 = s.l2!
    const realSet = l2.set.bind(l2)
    l2.set = () => Promise.reject(new Error('READONLY'))
    await expect(s.cache.set('k', 'new')).rejects.toMatchObject({ code: errors.E_L2_UNAVAILABLE })
    l2.set = realSet
    await settle()
    // Neither replica keeps serving its old L1 copy without asking L2.
    expect(s.peer!.stats().bus.received).toBe(2)
    expect(await s.cache.get('k')).toBe('old') // from L2, which the failed write did not change
    expect(s.cache.stats().l2.pendingRepairs).toBe(1)
    // Once L2 answers again, the old value is deleted there and peers drop what they read.
    await s.clock.advanceAsync(150)
    await settle()
    expect(s.cache.stats().l2.pendingRepairs).toBe(0)
    expect(await s.peer!.get('k')).toBeUndefined()
    expect(await s.cache.get('k')).toBeUndefined()
    await s.close()
  })

  it('repairs retry with backoff while L2 keeps failing; a later successful write cancels them', async () => {
    const s = setup('l1+l2')
    const l2 = s.l2!
    const realSet = l2.set.bind(l2)
    const realDelete = l2.delete.bind(l2)
    let deletes = 0
    l2.set = () => Promise.reject(new Error('down'))
    l2.delete = () => {
      deletes++
      return Promise.reject(new Error('down'))
    }
    s.cache.on('error', () => undefined)
    await expect(s.cache.set('a', 1)).rejects.toMatchObject({ code: errors.E_L2_UNAVAILABLE })
    await expect(s.cache.set('b', 1)).rejects.toMatchObject({ code: errors.E_L2_UNAVAILABLE })
    // Delays 100, 200, 400, 800 ms, each with ±50% jitter: by 1 050 ms at least 3 tries
    // (150 + 300 + 600) and at most 4 (50 + 100 + 200 + 400); without backoff it would be 10.
    await s.clock.advanceAsync(1_050)
    expect(deletes).toBeGreaterThanOrEqual(3)
    expect(deletes).toBeLessThanOrEqual(4)
    l2.set = realSet
    l2.delete = realDelete
    await s.cache.set('a', 2) // succeeds: 'a' no longer needs a repair
    expect(s.cache.stats().l2.pendingRepairs).toBe(1)
    await s.clock.advanceAsync(2_500)
    expect(s.cache.stats().l2.pendingRepairs).toBe(0)
    expect(await s.cache.get('a')).toBe(2)
    await s.close()
  })
})
