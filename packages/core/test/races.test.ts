/**
 * One deterministic test per class of stale-data defect the two pipelines close. Each
 * drives the public API; races are forced with `setTestHooks`, gated drivers (a "slow
 * proxy" in front of the memory L2 or bus) and the fake clock. Every one of these failed
 * on the code before the pipelines (checked once by running it against that build).
 */
import {
  CacheError,
  createCache,
  errors,
  memoryL2,
  MemoryBusHub,
  type BusContext,
  type BusDriver,
  type BusMessage,
  type Cache,
  type MemoryL2,
} from '@strata/core'
import { createFakeClock, setTestHooks, type FakeClock } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { afterEach, describe, expect, it } from 'vitest'
import { deferred, settle } from './matrix.js'

const opened: Cache[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()))
})

interface Fleet {
  clock: FakeClock
  l2: MemoryL2
  hub: MemoryBusHub
  replica(options?: Parameters<typeof createCache>[0] extends infer O ? Partial<O> : never): Cache
}

/** Replicas sharing one memory L2 and one memory bus (each its own L1). */
function fleet(): Fleet {
  const clock = createFakeClock()
  const l2 = memoryL2({ clock })
  const hub = new MemoryBusHub()
  return {
    clock,
    l2,
    hub,
    replica(options = {}) {
      const c = createCache({
        prefix: 'race',
        ttl: '1h',
        clock,
        l1: memoryL1({ clock }),
        l2,
        bus: hub.bus(),
        ...options,
      })
      c.on('error', () => undefined)
      opened.push(c)
      return c
    },
  }
}

/** A fresh replica with no L1 copy: what L2 would hand any replica now. */
async function l2View(f: Fleet, key: string): Promise<unknown> {
  const probe = createCache({ prefix: 'race', clock: f.clock, l2: f.l2 })
  opened.push(probe)
  return probe.get(key)
}

describe('1. batch fills', () => {
  it('a delete during a getOrSetMany load is never undone in L2', async () => {
    const f = fleet()
    // B's invalidation has not reached A yet (another process, pub/sub in flight): only L2 can refuse.
    const [a, b] = [f.replica(), f.replica({ bus: undefined })]
    const gate = deferred<void>()
    const read = a.getOrSetMany(['k1', 'k2'], async (keys) => {
      const rows = new Map(keys.map((k) => [k, `old-${k}`]))
      await gate.promise // the source was read; the write lands meanwhile
      return rows
    })
    await settle()
    await b.deleteMany(['k1', 'k2'])
    gate.resolve()
    expect(await read).toEqual(['old-k1', 'old-k2']) // the caller gets what it read
    expect(await l2View(f, 'k1')).toBeUndefined()
    expect(await l2View(f, 'k2')).toBeUndefined()
    expect(await a.get('k1')).toBeUndefined() // a refused fill is not kept in L1 either
    expect(a.stats().discardedFills).toBe(2)
  })
})

describe('1b. fills that replace bytes L2 cannot serve', () => {
  for (const [what, prepare] of [
    ['an entry past its TTL (within grace)', (f: Fleet) => f.clock.advance(1_001)],
    ['a tag-invalidated entry', async (_f: Fleet, w: Cache) => w.invalidateTags(['t'])],
  ] as const) {
    it(`the reload of ${what} is lease-guarded: a write during the load wins`, async () => {
      const f = fleet()
      const [r, w] = [
        f.replica({ ttl: 1_000, grace: '1h' }),
        f.replica({ ttl: 1_000, grace: '1h', bus: undefined }),
      ]
      let loads = 0
      await w.set('k', 'v1', { tags: ['t'] })
      await prepare(f, w)
      const gate = deferred<void>()
      const read = r.getOrSet(
        'k',
        async () => {
          loads++
          await gate.promise // read the source (v1) before the write
          return 'v1-reloaded'
        },
        { tags: ['t'] },
      )
      await settle()
      await w.set('k', 'v2', { tags: ['t'] })
      gate.resolve()
      await read
      expect(loads).toBe(1)
      expect(await l2View(f, 'k')).toBe('v2')
    })
  }
})

describe('2. tag versions are read before the source', () => {
  it('an invalidateTags during a getOrSetMany load wins', async () => {
    const f = fleet()
    const [a, b] = [f.replica(), f.replica({ bus: undefined })]
    await b.invalidateTags(['t'])
    const gate = deferred<void>()
    const read = a.getOrSetMany(
      ['k'],
      async () => {
        const rows = new Map([['k', 'old']])
        await gate.promise
        return rows
      },
      { tags: ['t'] },
    )
    await settle()
    await b.invalidateTags(['t'])
    gate.resolve()
    await read
    expect(await l2View(f, 'k')).toBeUndefined()
  })

  it('ctx.setTags reads versions at the call: an invalidation after it wins', async () => {
    const f = fleet()
    const [a, b] = [f.replica(), f.replica()]
    const gate = deferred<void>()
    const read = a.getOrSet('k', async (ctx) => {
      ctx.setTags(['t'])
      await gate.promise // reading the source
      return 'old'
    })
    await settle()
    await b.invalidateTags(['t'])
    gate.resolve()
    await read
    expect(await l2View(f, 'k')).toBeUndefined()
  })
})

/** A bus driver whose start fails until `up` is set, then behaves like a memory bus. */
function flakyBus(hub: MemoryBusHub): BusDriver & { up: boolean; starts: number } {
  const inner = hub.bus()
  const bus = {
    name: 'flaky',
    up: false,
    starts: 0,
    get state() {
      return inner.state
    },
    start(ctx: BusContext) {
      bus.starts++
      if (!bus.up) return Promise.reject(new Error('NOPERM no channel rights'))
      return inner.start(ctx)
    },
    publish: (m: BusMessage) => inner.publish(m),
    close: () => inner.close(),
  }
  return bus
}

describe('3. a bus that did not start', () => {
  it('ready() rejects, L1 lifetimes are clamped while connecting, and the bus keeps retrying', async () => {
    const f = fleet()
    const bus = flakyBus(f.hub)
    const a = f.replica({ bus, degradedL1Ttl: 1_000 })
    await expect(a.ready()).rejects.toMatchObject({ code: errors.E_BUS_UNAVAILABLE })
    expect(a.stats().bus.state).toBe('connecting')
    await a.getOrSet('k', () => 'v')
    f.clock.advance(1_001)
    expect(await a.get('k')).toBe('v') // from L2: L1 held it at most degradedL1Ttl
    expect(a.stats().l2.hits).toBe(1)
    bus.up = true
    await f.clock.advanceAsync(30_000)
    expect(bus.starts).toBeGreaterThan(1)
    expect(a.stats().bus.state).toBe('connected')
    // Connected: invalidations arrive, full lifetimes again.
    const b = f.replica()
    await b.set('k', 'v2')
    await settle()
    expect(await a.get('k')).toBe('v2')
  })
})

describe('4. local set racing a peer', () => {
  it("a peer's write heard while our L2 reply is in flight wins over our L1 write", async () => {
    const f = fleet()
    const [a, b] = [f.replica(), f.replica()]
    const realSet = f.l2.set.bind(f.l2)
    const reply = deferred<void>()
    let gated = true
    // A slow proxy: the write lands in L2 at once, its reply to A is held back.
    f.l2.set = async (...args) => {
      await realSet(...args)
      if (gated) {
        gated = false
        await reply.promise
      }
    }
    const write = a.set('k', 'from-a')
    await settle()
    await b.set('k', 'from-b') // lands after A's in L2, and its invalidation reaches A
    await settle()
    reply.resolve()
    await write
    expect(await l2View(f, 'k')).toBe('from-b')
    expect(await a.get('k')).toBe('from-b')
  })
})

describe('5. a write that fails to encode', () => {
  it('drops the old value on every replica and in L2, then throws', async () => {
    const f = fleet()
    const [a, b] = [f.replica({ maxValueBytes: 1_000 }), f.replica()]
    await a.set('k', 'old')
    expect(await b.get('k')).toBe('old')
    await expect(a.set('k', 'x'.repeat(5_000))).rejects.toMatchObject({
      code: errors.E_VALUE_TOO_LARGE,
    })
    await settle()
    expect(await a.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    expect(await l2View(f, 'k')).toBeUndefined()
  })
})

describe('6. the writer refuses what readers refuse', () => {
  it('class instances and nesting past the limit are E_NOT_SERIALIZABLE', async () => {
    const f = fleet()
    const a = f.replica()
    class Point {
      x = 1
    }
    let deep: unknown = 1
    for (let i = 0; i < 70; i++) deep = [deep]
    for (const value of [new Point(), { p: new Point() }, deep]) {
      await expect(a.set('k', value)).rejects.toMatchObject({ code: errors.E_NOT_SERIALIZABLE })
    }
  })
})

describe('7. leases', () => {
  it('are taken on misses only: 1 000 L2 hits leave no lease behind', async () => {
    const f = fleet()
    const a = f.replica({ l1: undefined, bus: undefined })
    await a.set('k', 'v')
    for (let i = 0; i < 1_000; i++) await a.getOrSet('k', () => 'loaded')
    expect(f.l2.leaseCount).toBe(0)
    await a.getOrSet('miss', () => 'loaded')
    expect(f.l2.leaseCount).toBe(1)
  })
})

describe('8. the distributed lock', () => {
  it('a loader that outlives lockTtl: the holder renews, 8 replicas make 1 load', async () => {
    const f = fleet()
    const replicas = Array.from({ length: 8 }, () =>
      f.replica({ distributedLock: true, lockTtl: 1_000 }),
    )
    let loads = 0
    const slow = deferred<string>()
    const reads = replicas.map((r) =>
      r.getOrSet('k', () => {
        loads++
        return slow.promise
      }),
    )
    await f.clock.advanceAsync(1_500)
    slow.resolve('v')
    await f.clock.advanceAsync(200)
    expect(await Promise.all(reads)).toEqual(replicas.map(() => 'v'))
    expect(loads).toBe(1)
  })

  it('Redis slow: lock attempts time out on the client, one of them ran on the server; 8 replicas still make 1 load', async () => {
    const f = fleet()
    const inner = f.l2.locks
    let stalled = 8
    // The first attempt of every replica times out; the very first one took the lock
    // on the server anyway (a command written before the stall runs after it).
    const locks: typeof inner = {
      async tryAcquire(key, ttlMs, token) {
        if (stalled > 0) {
          stalled--
          await inner.tryAcquire(key, ttlMs, token)
          throw new CacheError(errors.E_L2_TIMEOUT, '[test] lock command timed out')
        }
        return inner.tryAcquire(key, ttlMs, token)
      },
      extend: (key, token, ttlMs) => inner.extend(key, token, ttlMs),
      release: (key, token) => inner.release(key, token),
    }
    const l2 = withLocks(f.l2, locks)
    const replicas = Array.from({ length: 8 }, () =>
      f.replica({ l2, distributedLock: true, lockTtl: 1_000 }),
    )
    let loads = 0
    const reads = replicas.map((r) =>
      r.getOrSet('k', () => {
        loads++
        return 'v'
      }),
    )
    for (let i = 0; i < 20; i++) await f.clock.advanceAsync(50)
    expect(await Promise.all(reads)).toEqual(replicas.map(() => 'v'))
    expect(loads).toBe(1)
  })

  it('Redis gone (lock commands refused, not timing out): each replica loads at once', async () => {
    const f = fleet()
    const refused = new CacheError(errors.E_L2_UNAVAILABLE, '[test] connection refused', {
      cause: new Error('ECONNREFUSED'),
    })
    const locks: typeof f.l2.locks = {
      tryAcquire: () => Promise.reject(refused),
      extend: () => Promise.reject(refused),
      release: () => Promise.reject(refused),
    }
    const l2 = withLocks(f.l2, locks)
    const replicas = Array.from({ length: 3 }, () =>
      f.replica({ l2, distributedLock: true, lockTtl: 10_000 }),
    )
    let loads = 0
    const reads = replicas.map((r) => r.getOrSet('k', () => (loads++, 'v')))
    // No clock advance: nobody waits on a lock that cannot be taken.
    expect(await Promise.all(reads)).toEqual(['v', 'v', 'v'])
    expect(loads).toBe(3)
  })
})

/** The fleet's memory L2 with its lock commands replaced (a slow or unreachable Redis). */
function withLocks(l2: MemoryL2, locks: MemoryL2['locks']): MemoryL2 {
  return new Proxy(l2, {
    get(target, prop) {
      if (prop === 'locks') return locks
      const v: unknown = Reflect.get(target, prop, target)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/** A bus driver under the test's control: every publish goes through `behaviour`. */
function scriptedBus(behaviour: (m: BusMessage) => Promise<void>): BusDriver & {
  sent: BusMessage[]
} {
  const bus = {
    name: 'scripted',
    sent: [] as BusMessage[],
    state: 'connecting' as BusDriver['state'],
    start(c: BusContext) {
      bus.state = 'connected'
      c.onState('connected', { reason: 'test' })
      return Promise.resolve()
    },
    async publish(m: BusMessage) {
      await behaviour(m)
      bus.sent.push(m)
    },
    close() {
      bus.state = 'closed'
      return Promise.resolve()
    },
  }
  return bus
}

describe('10. close()', () => {
  it('stops publish retries, lets writes in flight finish, and is idempotent', async () => {
    const clock = createFakeClock()
    let attempts = 0
    const bus = scriptedBus(() => {
      attempts++
      return Promise.reject(new Error('down'))
    })
    const l2 = memoryL2({ clock })
    const c = createCache({ prefix: 'close', clock, l1: memoryL1({ clock }), l2, bus })
    c.on('error', () => undefined)
    await c.set('k', 'v')
    await clock.advanceAsync(1_000)
    const before = attempts
    expect(before).toBeGreaterThan(1)
    // A write whose L2 reply is still in flight when close() is called completes.
    const realSet = l2.set.bind(l2)
    const reply = deferred<void>()
    l2.set = async (...args) => {
      await realSet(...args)
      await reply.promise
    }
    const write = c.set('k2', 'v2')
    await settle()
    const first = c.close()
    const second = c.close()
    expect(second).toBe(first)
    reply.resolve()
    await expect(write).resolves.toBeUndefined()
    await first
    const atClose = attempts
    await clock.advanceAsync(60_000)
    expect(attempts).toBe(atClose) // no retries after close
  })
})

describe('11. keys stay out of error messages', () => {
  it('a loader failure names the key on CacheError.key, not in its message', async () => {
    const f = fleet()
    const a = f.replica()
    const err = await a
      .getOrSet('user:alice@example.com', () => Promise.reject(new Error('db down')))
      .catch((e: unknown) => e as CacheError)
    expect(err).toBeInstanceOf(CacheError)
    expect(err.message).not.toContain('alice')
    const events: CacheError[] = []
    a.on('error', (e) => events.push(e.error))
    await a
      .getOrSet('user:bob@example.com', () => Promise.reject(new Error('db down')))
      .catch(() => undefined)
    expect(events[0]?.message).not.toContain('bob')
    expect(events[0]?.key).toBe('race::user:bob@example.com')
  })
})

describe('12. tag versions never go backwards', () => {
  it('an entry written under a version read before Redis lost its tags never matches again', async () => {
    const f = fleet()
    const [w, b] = [f.replica(), f.replica()]
    await b.invalidateTags(['t'])
    // W reads the tag version, then its L2 write is held while Redis "restarts empty".
    const realSet = f.l2.set.bind(f.l2)
    const gate = deferred<void>()
    f.l2.set = async (...args) => {
      await gate.promise
      return realSet(...args)
    }
    const write = w.set('k', 'old', { tags: ['t'] })
    await settle()
    f.l2.flushAll()
    gate.resolve()
    await write
    f.l2.set = realSet
    await b.invalidateTags(['t'])
    expect(await l2View(f, 'k')).toBeUndefined()
  })

  it('a failed write is repaired as soon as the bus resyncs, not after the backoff grown in the outage', async () => {
    const f = fleet()
    const [a, b] = [f.replica(), f.replica()]
    await a.set('k', 'old')
    const realSet = f.l2.set.bind(f.l2)
    const realDelete = f.l2.delete.bind(f.l2)
    f.l2.set = () => Promise.reject(new Error('down'))
    f.l2.delete = () => Promise.reject(new Error('down'))
    await expect(b.set('k', 'new')).rejects.toMatchObject({ code: errors.E_L2_UNAVAILABLE })
    await f.clock.advanceAsync(20_000) // every repair attempt fails: the backoff is at 5 s
    expect(b.stats().l2.pendingRepairs).toBe(1)
    expect(await l2View(f, 'k')).toBe('old') // what every replica reads until the repair lands
    f.l2.set = realSet
    f.l2.delete = realDelete
    f.hub.simulateGap() // Redis answers again: the bus resyncs
    await f.clock.advanceAsync(300)
    expect(b.stats().l2.pendingRepairs).toBe(0)
    expect(await l2View(f, 'k')).toBeUndefined()
  })

  it('invalidations queued while the bus was down go out as soon as it resyncs, not after the backoff', async () => {
    const f = fleet()
    const bus = f.hub.bus()
    const realPublish = bus.publish.bind(bus)
    const a = f.replica({ bus })
    const b = f.replica()
    await a.set('k', 'old')
    expect(await b.get('k')).toBe('old') // b holds it in L1
    bus.publish = () => Promise.reject(new Error('down'))
    await a.set('k', 'new') // L2 takes it; the invalidation waits in a's retry queue
    await f.clock.advanceAsync(20_000) // every retry fails: the backoff is at 5 s
    expect(a.stats().bus.pendingPublishes).toBe(1)
    expect(await b.get('k')).toBe('old')
    bus.publish = realPublish
    bus.gap() // a's bus resyncs (b's never went away)
    await f.clock.advanceAsync(300)
    await settle()
    expect(a.stats().bus.pendingPublishes).toBe(0)
    expect(await b.get('k')).toBe('new')
  })

  it('an invalidateTags that failed while L2 was down is redone once L2 answers', async () => {
    const f = fleet()
    const [a, b] = [f.replica(), f.replica()]
    await a.set('k', 'old', { tags: ['t'] })
    const tags = f.l2.tags
    const realBump = tags.bump.bind(tags)
    tags.bump = () => Promise.reject(new Error('down'))
    await expect(b.invalidateTags(['t'])).rejects.toMatchObject({ code: errors.E_L2_UNAVAILABLE })
    expect(b.stats().l2.pendingRepairs).toBe(1)
    tags.bump = realBump
    await f.clock.advanceAsync(1_000)
    expect(b.stats().l2.pendingRepairs).toBe(0)
    expect(await l2View(f, 'k')).toBeUndefined()
  })
})

describe('15. deadlines', () => {
  it("a caller joining a load waits at most its own hard timeout; close() aborts loaders' signals", async () => {
    const f = fleet()
    const a = f.replica()
    let signal: AbortSignal | undefined
    const first = a.getOrSet('k', (ctx) => {
      signal = ctx.signal
      return new Promise<string>((_, reject) => {
        ctx.signal.addEventListener('abort', () => reject(new Error('aborted')))
      })
    })
    first.catch(() => undefined)
    await settle()
    const joiner = a
      .getOrSet('k', () => 'unused', { timeouts: { hard: 100 } })
      .catch((e: unknown) => e)
    await f.clock.advanceAsync(101)
    expect(await joiner).toMatchObject({ code: errors.E_LOADER_TIMEOUT })
    await a.close()
    expect(signal?.aborted).toBe(true)
    await expect(first).rejects.toBeInstanceOf(CacheError)
  })
})

describe('16/17. the publisher', () => {
  it('never runs two retry loops: every invalidation reaches the bus exactly once', async () => {
    const clock = createFakeClock()
    let calls = 0
    const slow = deferred<void>()
    const bus = scriptedBus(async () => {
      calls++
      if (calls === 1) throw new Error('down')
      if (calls === 2) await slow.promise // the retry loop is awaiting this publish
    })
    const c = createCache({ prefix: 'pub', clock, l1: memoryL1({ clock }), bus })
    c.on('error', () => undefined)
    await c.ready()
    await c.delete('a')
    await clock.advanceAsync(200) // retry loop starts, waits on the slow publish
    await c.delete('b') // queued behind it; arms nothing new
    await clock.advanceAsync(200)
    await c.delete('c')
    await clock.advanceAsync(200)
    slow.resolve()
    await clock.advanceAsync(5_000)
    const keys = bus.sent.flatMap((m) => m.keys ?? [])
    expect(keys.sort()).toEqual(['pub::a', 'pub::b', 'pub::c'])
  })

  it('a write L2 refused rejects at once, not after the bus answers; its invalidation still goes out', async () => {
    const clock = createFakeClock()
    const gate = deferred<void>()
    const bus = scriptedBus(() => gate.promise) // a bus that does not answer yet
    const l2 = memoryL2({ clock })
    const c = createCache({ prefix: 'pub', clock, l1: memoryL1({ clock }), l2, bus })
    c.on('error', () => undefined)
    await c.ready()
    const down = () => Promise.reject(new Error('down'))
    l2.set = down
    l2.delete = down
    l2.clear = down
    l2.tags.bump = down
    const outcomes: string[] = []
    for (const write of [
      () => c.set('k', 'v'),
      () => c.delete('k'),
      () => c.invalidateTags(['t']),
      () => c.clear(),
    ])
      write().then(
        () => outcomes.push('resolved'),
        (e: unknown) => outcomes.push((e as CacheError).code),
      )
    await settle()
    expect(outcomes).toEqual(Array(4).fill(errors.E_L2_UNAVAILABLE))
    expect(bus.sent).toEqual([])
    gate.resolve()
    await settle()
    expect(bus.sent.map((m) => m.op).sort()).toEqual(['clear', 'delete', 'set', 'tags'])
  })

  it('splits a huge deleteMany into messages receivers accept', async () => {
    const clock = createFakeClock()
    const bus = scriptedBus(() => Promise.resolve())
    const c = createCache({ prefix: 'big', clock, l1: memoryL1({ clock }), bus })
    const keys = Array.from({ length: 17_000 }, (_, i) => `${'k'.repeat(1_000)}${i}`)
    await c.deleteMany(keys)
    expect(bus.sent.length).toBeGreaterThan(16)
    for (const m of bus.sent)
      expect((m.keys ?? []).reduce((n, k) => n + k.length, 0)).toBeLessThanOrEqual(1024 * 1024)
    expect(new Set(bus.sent.flatMap((m) => m.keys ?? [])).size).toBe(17_000)
    await c.close()
  })
})

describe('18. the lock wait', () => {
  it('serves stale at the soft timeout while a crashed holder still holds the lock', async () => {
    const f = fleet()
    const a = f.replica({ distributedLock: true, lockTtl: 4_000, ttl: 1_000, grace: '1h' })
    await a.getOrSet('k', () => 'old')
    f.clock.advance(1_001)
    await f.l2.locks.tryAcquire('race::k', 4_000) // a holder that crashed
    let result: unknown
    void a.getOrSet('k', () => 'new', { timeouts: { soft: 50 } }).then((v) => (result = v))
    await f.clock.advanceAsync(60)
    expect(result).toBe('old')
  })
})

describe('21. smaller guards', () => {
  it('after fail-safe served stale, get() does not return the past-TTL value as fresh', async () => {
    const f = fleet()
    const a = f.replica({ ttl: 1_000, grace: '1h', graceBackoff: 5_000 })
    await a.getOrSet('k', () => 'v1')
    f.clock.advance(1_001)
    expect(await a.getOrSet('k', () => Promise.reject(new Error('down')))).toBe('v1')
    const hits: boolean[] = []
    a.on('hit', (e) => hits.push(e.stale))
    expect(await a.get('k')).toBeUndefined()
    expect(hits).toEqual([])
  })

  it('a soft timeout that served stale, then a failed background load: one stale, counted once', async () => {
    const f = fleet()
    const a = f.replica({ ttl: 1_000, grace: '1h', timeouts: { soft: 50 } })
    await a.getOrSet('k', () => 'v1')
    f.clock.advance(1_001)
    const stale: string[] = []
    a.on('stale', (e) => stale.push(e.reason))
    const slow = deferred<string>()
    const read = a.getOrSet('k', () => slow.promise)
    await f.clock.advanceAsync(60)
    expect(await read).toBe('v1')
    slow.reject(new Error('down'))
    await settle()
    expect(stale).toEqual(['soft-timeout'])
    expect(a.stats().staleServed).toBe(1)
  })

  it('a Symbol key is E_INVALID_KEY everywhere', async () => {
    const f = fleet()
    const a = f.replica()
    const bad = Symbol('k') as unknown as string
    for (const call of [
      () => a.get(bad),
      () => a.set(bad, 1),
      () => a.delete(bad),
      () => a.getOrSet(bad, () => 1),
    ])
      await expect(call()).rejects.toMatchObject({ code: errors.E_INVALID_KEY })
  })

  it('a load whose L2 read failed (no lease) stores nothing in L2: a delete it could not hear stands', async () => {
    const f = fleet()
    const a = f.replica()
    const deaf = f.replica({ bus: undefined }) // a's invalidations cannot reach it, nor its a's
    const leases = f.l2.leases
    const realRead = leases.getManyWithLease.bind(leases)
    leases.getManyWithLease = () => Promise.reject(new Error('Redis restarting'))
    setTestHooks(a, {
      beforeL2Fill: async () => {
        leases.getManyWithLease = realRead // Redis is back when the load finishes
        await deaf.delete('k') // the source changed after the loader read it
      },
    })
    expect(await a.getOrSet('k', () => 'read before the delete')).toBe('read before the delete')
    setTestHooks(a, undefined)
    expect(await l2View(f, 'k')).toBeUndefined()
  })

  it('failed L2 fills are counted in stats().l2.errors; a revoked lease in discardedFills', async () => {
    const f = fleet()
    const a = f.replica()
    const leases = f.l2.leases
    const realFill = leases.fillMany.bind(leases)
    leases.fillMany = () => Promise.reject(new Error('down'))
    await a.getOrSet('k1', () => 'v')
    expect(a.stats().l2.errors).toBe(1)
    leases.fillMany = realFill
    const b = f.replica()
    setTestHooks(a, { beforeL2Fill: () => b.delete('k2') })
    await a.getOrSet('k2', () => 'v')
    setTestHooks(a, undefined)
    expect(a.stats().discardedFills).toBe(1)
    expect(await a.get('k2')).toBeUndefined()
  })
})

describe('a read that starts after an invalidation', () => {
  it('never joins a load that started before it', async () => {
    const f = fleet()
    const [a, b] = [f.replica(), f.replica()]
    const gate = deferred<void>()
    const first = a.getOrSet('k', async () => {
      await gate.promise
      return 'old'
    })
    await settle()
    await b.set('k', 'new')
    await settle()
    const later = a.getOrSet('k', () => 'loaded-after-write')
    gate.resolve()
    expect(await first).toBe('old')
    expect(await later).toBe('new')
  })
})
