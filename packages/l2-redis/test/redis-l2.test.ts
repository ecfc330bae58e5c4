import { createCache, errors, type Cache } from '@strata/core'
import { cacheBehaviourSuite, l2DriverSuite, setTestHooks } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'
import { commandstats, deferred, startRedis, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MSGPACK_V1, redisL2, RedisL2 } from '../src/index.js'

let redis: RedisHandle
let raw: Redis
const run = `t${process.pid}`

beforeAll(async () => {
  redis = await startRedis()
  raw = new Redis(redis.url)
})
afterAll(async () => {
  raw.disconnect()
  await redis.stop()
})

l2DriverSuite('redisL2', {
  create: () => redisL2({ redis: redis.url }),
  prefix: `${run}-conf`,
  wait: (ms) => new Promise((r) => setTimeout(r, ms)),
})

let behaviourSeq = 0
for (const withL1 of [false, true]) {
  cacheBehaviourSuite(`real Redis, ${withL1 ? 'L1+L2' : 'L2 only'}`, {
    create: () =>
      createCache({
        prefix: `${run}-beh${behaviourSeq++}`,
        l2: redisL2({ redis: redis.url, commandTimeout: 1_000 }),
        ...(withL1 ? { l1: memoryL1() } : {}),
      }),
  })
}

describe('redisL2 under core', () => {
  const caches: Cache[] = []
  const make = (prefix: string, withL1: boolean) => {
    const c = createCache({
      prefix,
      l2: redisL2({ redis: redis.url }),
      ...(withL1 ? { l1: memoryL1() } : {}),
    })
    caches.push(c)
    return c
  }
  afterAll(async () => {
    await Promise.all(caches.map((c) => c.close()))
  })

  for (const withL1 of [false, true]) {
    it(`${withL1 ? 'L1+L2' : 'L2 only'}: getOrSet, tags, namespaces and batches against real Redis`, async () => {
      const c = make(`${run}-core${withL1 ? 'a' : 'b'}`, withL1)
      let calls = 0
      expect(await c.getOrSet('u1', () => ++calls, { tags: ['users'] })).toBe(1)
      expect(await c.getOrSet('u1', () => ++calls, { tags: ['users'] })).toBe(1)
      await c.invalidateTags(['users'])
      expect(await c.getOrSet('u1', () => ++calls, { tags: ['users'] })).toBe(2)
      const ns = c.namespace('ns')
      await ns.set('a', { d: new Date(5) })
      await c.set('a', 'root')
      await ns.clear()
      expect(await ns.get('a')).toBeUndefined()
      expect(await c.get('a')).toBe('root')
      const keys = Array.from({ length: 100 }, (_, i) => `b${i}`)
      await c.setMany(keys.slice(0, 40).map((key) => ({ key, value: key })))
      const loaderCalls: string[][] = []
      const values = await c.getOrSetMany(keys, (missing) => {
        loaderCalls.push(missing)
        return new Map(missing.map((k) => [k, k.toUpperCase()]))
      })
      expect(loaderCalls).toEqual([keys.slice(40)])
      expect(values[0]).toBe('b0')
      expect(values[99]).toBe('B99')
      // Nothing above may have failed silently (errors are events, not exceptions).
      expect(c.stats().errors).toBe(0)
      expect(c.stats().l2.errors).toBe(0)
    })
  }

  it('Redis holds msgpack entries under {key}, with PX = end of grace', async () => {
    const c = make(`${run}-layout`, false)
    await createCache({
      prefix: `${run}-layout`,
      l2: redisL2({ redis: redis.url }),
      ttl: 1000,
      grace: 60_000,
    }).set('k', 'v')
    const bytes = await raw.getBuffer(`{${run}-layout::k}`)
    expect(bytes?.[0]).toBe(MSGPACK_V1)
    const pttl = await raw.pttl(`{${run}-layout::k}`)
    expect(pttl).toBeGreaterThan(50_000)
    expect(await c.get('k')).toBe('v')
  })

  it('hostile bytes written into Redis are misses: no crash, no exotic objects, key deleted', async () => {
    const c = make(`${run}-hostile`, true)
    const seen: string[] = []
    c.on('error', (e) => seen.push(e.error.code))
    const key = (k: string) => `{${run}-hostile::${k}}`
    await raw.set(key('random'), Buffer.from([0x13, 0x37, 0xff, 0x00]))
    await raw.set(key('bin32'), Buffer.from([MSGPACK_V1, 0xc6, 0x7f, 0xff, 0xff, 0xff, 1]))
    await raw.set(
      key('regexp'),
      Buffer.concat([
        Buffer.from([MSGPACK_V1]),
        (await import('msgpackr')).pack({
          value: /x/,
          createdAt: 1,
          freshUntil: 9e15,
          staleUntil: 9e15,
          tags: [],
          version: 1,
        }),
      ]),
    )
    for (const k of ['random', 'bin32', 'regexp']) {
      expect(await c.get(k)).toBeUndefined()
      expect(await c.getOrSet(k, () => 'safe')).toBe('safe')
    }
    expect(seen.filter((s) => s === errors.E_CORRUPT_ENTRY)).toHaveLength(3)
    expect(c.stats().l2.corrupt).toBe(3)
  })

  it('race: reader misses, writer deletes, reader fills the old value → old value not in Redis (1 000 seeded iterations)', async () => {
    const reader = make(`${run}-race`, false)
    const writer = make(`${run}-race`, false)
    let resurrected = 0
    for (let i = 0; i < 1_000; i++) {
      const gate = deferred<void>()
      const reached = deferred<void>()
      setTestHooks(reader, {
        beforeL2Fill: async () => {
          reached.resolve()
          await gate.promise
        },
      })
      const read = reader.getOrSet(`k${i}`, () => `old-${i}`)
      await reached.promise
      if (i % 2 === 0) await writer.delete(`k${i}`)
      else await writer.set(`k${i}`, `new-${i}`)
      gate.resolve()
      await read
      if ((await writer.get(`k${i}`)) === `old-${i}`) resurrected++
    }
    setTestHooks(reader, undefined)
    expect(resurrected).toBe(0)
  })

  it('closes connections it created, leaves a client passed in open', async () => {
    const own = redisL2({ redis: redis.url })
    const mine = new Redis(redis.url)
    const passed = redisL2({ redis: mine })
    const a = createCache({ prefix: `${run}-conn-a`, l2: own })
    const b = createCache({ prefix: `${run}-conn-b`, l2: passed })
    await a.set('k', 1)
    await b.set('k', 2)
    await a.close()
    await b.close()
    expect(own.client.status).toBe('end')
    expect(await mine.ping()).toBe('PONG')
    mine.disconnect()
  })

  it('clear(prefix) never touches keys outside the prefix', async () => {
    await raw.set('unrelated', '1')
    await raw.set(`{${run}-clearx::k}`, '1')
    const c = make(`${run}-clear`, false)
    await c.set('a', 1)
    await c.clear()
    expect(await raw.get('unrelated')).toBe('1')
    expect(await raw.get(`{${run}-clearx::k}`)).toBe('1')
    expect(await c.get('a')).toBeUndefined()
  })
})

describe('tag versions under eviction', () => {
  it('an evicted tag version never brings back an entry an invalidation removed', async () => {
    // A server of its own with allkeys-lru: the version key is evicted by Redis itself.
    const small = await startRedis({
      source: 'binary',
      args: ['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru'],
    })
    const admin = new Redis(small.url)
    const caches: Cache[] = []
    const reader = () => {
      const c = createCache({ prefix: `${run}-evict`, l2: redisL2({ redis: small.url }) })
      caches.push(c)
      return c
    }
    const a = reader()
    try {
      await a.set('old', 'v1', { tags: ['t'] })
      const [entryKey] = await admin.keys(`{${run}-evict::old}`)
      const [versionKey] = await admin.keys('__strata:tag:*t')
      expect(entryKey).toBeDefined()
      expect(versionKey).toBeDefined()
      const bytes = (await admin.getBuffer(entryKey as string)) as Buffer
      const pttl = await admin.pttl(entryKey as string)
      await a.invalidateTags(['t'])
      expect(await a.get('old')).toBeUndefined()
      // Filler until Redis has evicted the version key (bounded: at most 200 × 64 KB).
      const filler = Buffer.alloc(64 * 1024, 0x78)
      for (let i = 0; i < 200 && (await admin.exists(versionKey as string)) === 1; i++)
        await admin.set(`filler:${i}`, filler)
      expect(await admin.exists(versionKey as string)).toBe(0)
      expect(Number(/evicted_keys:(\d+)/.exec(await admin.info('stats'))?.[1])).toBeGreaterThan(0)
      // The entry itself survives (put back, filler dropped, if LRU took it too): only
      // the version is gone.
      for (let i = 0; i < 200; i++) await admin.del(`filler:${i}`)
      await admin.set(entryKey as string, bytes, 'PX', pttl)
      expect(await a.get('old')).toBeUndefined()
      // A replica that never saw the invalidation.
      expect(await reader().get('old')).toBeUndefined()
      // An entry written after the eviction is served as usual.
      await a.set('new', 'v2', { tags: ['t'] })
      expect(await reader().get('new')).toBe('v2')
    } finally {
      await Promise.all(caches.map((c) => c.close()))
      admin.disconnect()
      await small.stop()
    }
  })
})

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) out[k] = v - (before.get(k) ?? 0)
  return out
}

describe('Redis work per operation', () => {
  it('an L2 hit is one pure read (no lease, no write); a miss takes its lease in the same round trip', async () => {
    // A server of its own: commandstats must see this cache's commands only.
    const own = await startRedis()
    const raw = new Redis(own.url)
    const c = createCache({ prefix: `${run}-work`, l2: redisL2({ redis: own.url }) })
    await c.ready() // the start-up permission probe has run
    await c.set('k', 'v')
    await c.getOrSet('k', () => 'loaded') // scripts cached
    const before = await commandstats(raw)
    for (let i = 0; i < 200; i++) await c.getOrSet('k', () => 'loaded')
    const hits = delta(before, await commandstats(raw))
    expect(hits['set'] ?? 0).toBe(0)
    expect(hits['sadd'] ?? 0).toBe(0)
    expect(hits['pexpire'] ?? 0).toBe(0)
    expect(await raw.exists(`{${run}-work::k}:lease`)).toBe(0)
    await c.getOrSet('cold-0', () => 'loaded') // the fill script cached
    const beforeMiss = await commandstats(raw)
    await c.getOrSet('cold', () => 'loaded')
    const miss = delta(beforeMiss, await commandstats(raw))
    delete miss['info'] // the INFO that read the counters before
    // read script (GET value, SET placeholder) + fill script (SET XX GET): five commands
    expect(miss).toEqual({ evalsha: 2, get: 1, set: 2 })
    expect(await raw.keys('*:lease')).toEqual([])
    await c.close()
    raw.disconnect()
    await own.stop()
  })
})

describe('batched leased reads', () => {
  it('concurrent getOrSet hits are one MGET and one EXISTS, no write; misses among them lease in the same round trip', async () => {
    const own = await startRedis()
    const raw = new Redis(own.url)
    const c = createCache({ prefix: `${run}-batch`, l2: redisL2({ redis: own.url }) })
    await c.ready()
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    for (const k of keys) await c.set(k, k)
    await Promise.all(keys.map((k) => c.getOrSet(k, () => 'loaded'))) // scripts cached
    const before = await commandstats(raw)
    expect(await Promise.all(keys.map((k) => c.getOrSet(k, () => 'loaded')))).toEqual(keys)
    const hits = delta(before, await commandstats(raw))
    expect(hits).toMatchObject({ mget: 1, evalsha: 1, exists: 1 })
    expect(hits['set'] ?? 0).toBe(0)
    expect(hits['get'] ?? 0).toBe(0)
    expect(await raw.keys('*:lease')).toEqual([])

    // Half hits, half cold: the cold ones are loaded once each, leased in the read's round
    // trip (the fill script finds its token) and stored.
    const cold = keys.map((k) => `cold-${k}`).slice(0, 5)
    const mixed = [...keys.slice(0, 5), ...cold]
    let loads = 0
    const beforeMixed = await commandstats(raw)
    const got = await Promise.all(mixed.map((k) => c.getOrSet(k, () => (loads++, `L${k}`))))
    expect(got).toEqual([...keys.slice(0, 5), ...cold.map((k) => `L${k}`)])
    expect(loads).toBe(5)
    const work = delta(beforeMixed, await commandstats(raw))
    expect(work['mget']).toBe(1)
    expect(work['evalsha']).toBe(2) // the lease script, then one fill script for the five
    expect(work['set']).toBe(10) // five placeholders, five values
    expect(await raw.keys('*:lease')).toEqual([])
    for (const k of cold) expect(await c.get(k)).toBe(`L${k}`)
    await c.close()
    raw.disconnect()
    await own.stop()
  })

  it('after SCRIPT FLUSH (a restart loses scripts) batched reads still lease and fill', async () => {
    const c = createCache({ prefix: `${run}-bflush`, l2: redisL2({ redis: redis.url }) })
    await c.ready()
    await Promise.all(['x', 'y'].map((k) => c.getOrSet(k, () => `v-${k}`))) // scripts cached
    await raw.script('FLUSH')
    const got = await Promise.all(['p', 'q', 'x'].map((k) => c.getOrSet(k, () => `v-${k}`)))
    expect(got).toEqual(['v-p', 'v-q', 'v-x'])
    expect(c.stats().l2.errors).toBe(0)
    // The fills went through the leases the flushed-then-reloaded script took.
    expect(await raw.exists(`{${run}-bflush::p}`, `{${run}-bflush::q}`)).toBe(2)
    await c.close()
  })

  it("a write during a batched load revokes that key's lease: the old value is never filled", async () => {
    const writer = createCache({ prefix: `${run}-brace`, l2: redisL2({ redis: redis.url }) })
    const reader = createCache({ prefix: `${run}-brace`, l2: redisL2({ redis: redis.url }) })
    const loading = deferred<void>()
    const release = deferred<void>()
    const load = async (k: string) => {
      if (k === 'a') {
        loading.resolve()
        await release.promise
      }
      return `old-${k}`
    }
    const both = Promise.all(['a', 'b'].map((k) => reader.getOrSet(k, () => load(k))))
    await loading.promise
    await writer.set('a', 'new-a')
    release.resolve()
    expect(await both).toEqual(['old-a', 'old-b'])
    expect(await writer.get('a')).toBe('new-a')
    expect(await writer.get('b')).toBe('old-b')
    expect(reader.stats().discardedFills).toBe(1)
    await writer.close()
    await reader.close()
  })
})

describe("a miss's placeholder (its lease, in the empty value key)", () => {
  const leasesOf = (l2: RedisL2) => l2.leases
  const fill = (l2: RedisL2, key: string, token: string | undefined, v: string, ttlMs: number) =>
    leasesOf(l2)
      .fillMany([{ key, token: token as string, value: Buffer.from(v), ttlMs }])
      .then((r) => r[0])

  it('reads as absent to every read, and as the same token to every misser, lone or batched', async () => {
    const l2 = redisL2({ redis: redis.url, leaseTtl: '20s' })
    const k = `${run}-ph::a`
    const [miss] = await l2.leases.getManyWithLease([k])
    expect(miss?.value).toBeUndefined()
    expect(miss?.token).toBeDefined()
    const pttl = await raw.pttl(RedisL2.valueKey(k))
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(20_000)
    expect(await l2.get(k)).toBeUndefined()
    expect(await l2.getMany([k, k])).toEqual([undefined, undefined])
    expect((await l2.leases.getManyWithLease([k]))[0]).toEqual({
      value: undefined,
      token: miss?.token,
    })
    const batch = await l2.leases.getManyWithLease([k, `${run}-ph::b`])
    expect(batch[0]).toEqual({ value: undefined, token: miss?.token })
    expect(batch[1]?.token).toBeDefined()
    expect(batch[1]?.token).not.toBe(miss?.token)
    expect(await l2.leases.leaseMany([k])).toEqual([miss?.token])
    await l2.close()
  })

  it('a value that merely begins with a zero byte is a value', async () => {
    const l2 = redisL2({ redis: redis.url })
    const k = `${run}-ph::zero`
    await l2.set(k, new Uint8Array([0, 115, 116]), 10_000)
    expect(Buffer.from((await l2.get(k)) as Uint8Array)).toEqual(Buffer.from([0, 115, 116]))
    const [hit] = await l2.leases.getManyWithLease([k])
    expect(hit?.token).toBeUndefined()
    await l2.close()
  })

  it('of the missers sharing it the first fill stores; a later one is refused and never seen', async () => {
    const a = redisL2({ redis: redis.url })
    const b = redisL2({ redis: redis.url })
    const k = `${run}-ph::shared`
    const [miss] = await a.leases.getManyWithLease([k])
    const [joined] = await b.leases.getManyWithLease([k])
    expect(joined?.token).toBe(miss?.token)
    expect(await fill(a, k, miss?.token, 'first', 60_000)).toBe(true)
    expect(await fill(b, k, joined?.token, 'second', 60_000)).toBe(false)
    expect(String(await a.get(k))).toBe('first')
    expect(await raw.pttl(RedisL2.valueKey(k))).toBeGreaterThan(0)
    await a.close()
    await b.close()
  })

  it('a write between miss and fill stays, under an expiry; a placeholder that expired refuses the fill', async () => {
    const l2 = redisL2({ redis: redis.url })
    const k = `${run}-ph::write`
    const [miss] = await l2.leases.getManyWithLease([k])
    await l2.set(k, Buffer.from('new'), 60_000)
    expect(await fill(l2, k, miss?.token, 'old', 30_000)).toBe(false)
    expect(String(await l2.get(k))).toBe('new')
    const ttl = await raw.pttl(RedisL2.valueKey(k))
    expect(ttl).toBeGreaterThan(0) // put back under the refused fill's ttl (documented)
    // Another misser's placeholder found by a stale fill is put back under the lease ttl.
    const e = `${run}-ph::other`
    const [first] = await l2.leases.getManyWithLease([e])
    await l2.delete([e])
    const [second] = await l2.leases.getManyWithLease([e])
    expect(second?.token).not.toBe(first?.token)
    expect(await fill(l2, e, first?.token, 'stale', 600_000)).toBe(false)
    expect((await l2.leases.getManyWithLease([e]))[0]?.token).toBe(second?.token)
    expect(await raw.pttl(RedisL2.valueKey(e))).toBeLessThanOrEqual(30_000)
    // The load outlived leaseTtl: its placeholder is gone, the fill writes nothing.
    const x = `${run}-ph::expired`
    const [late] = await l2.leases.getManyWithLease([x])
    await raw.pexpire(RedisL2.valueKey(x), 1)
    for (let i = 0; i < 200 && (await raw.exists(RedisL2.valueKey(x))) === 1; i++) {
      await new Promise((r) => setTimeout(r, 2))
    }
    expect(await fill(l2, x, late?.token, 'late', 30_000)).toBe(false)
    expect(await raw.exists(RedisL2.valueKey(x))).toBe(0)
    await l2.close()
  })

  it('another replica reading a key while it loads sees a miss, not a corrupt entry', async () => {
    const loader = createCache({ prefix: `${run}-phc`, l2: redisL2({ redis: redis.url }) })
    const reader = createCache({ prefix: `${run}-phc`, l2: redisL2({ redis: redis.url }) })
    const loading = deferred<void>()
    const release = deferred<void>()
    const load = loader.getOrSet('k', async () => {
      loading.resolve()
      await release.promise
      return 'v'
    })
    await loading.promise
    expect(await reader.get('k')).toBeUndefined()
    expect(await reader.getMany(['k', 'other'])).toEqual([undefined, undefined])
    release.resolve()
    expect(await load).toBe('v')
    expect(await reader.get('k')).toBe('v')
    expect(reader.stats().l2.corrupt).toBe(0)
    expect(reader.stats().l2.errors).toBe(0)
    await loader.close()
    await reader.close()
  })
})

describe('the client Strata is given', () => {
  it('an ioredis keyPrefix is refused at construction (scripts and SCAN would not apply it)', () => {
    const prefixed = new Redis(redis.url, { keyPrefix: 'app:', lazyConnect: true })
    expect(() => redisL2({ redis: prefixed })).toThrow(/keyPrefix/)
    prefixed.disconnect()
  })

  it('60 caches created and closed over one shared client leave no listener behind', async () => {
    const shared = new Redis(redis.url)
    await new Promise<void>((r) => shared.once('ready', () => r()))
    const before = shared.listenerCount('ready')
    for (let i = 0; i < 60; i++) {
      const c = createCache({ prefix: `${run}-shared`, l2: redisL2({ redis: shared }) })
      await c.get('k')
      await c.close()
    }
    expect(shared.listenerCount('ready')).toBe(before)
    expect(shared.status).toBe('ready')
    shared.disconnect()
  })

  it('a write issued while Redis is still unreachable at boot times out and is never sent later', async () => {
    const late = await startRedis()
    await late.kill()
    const l2 = redisL2({ redis: late.url, commandTimeout: 100 })
    await expect(l2.set('boot-key', new Uint8Array([1, 2, 3]), 60_000)).rejects.toMatchObject({
      code: errors.E_L2_TIMEOUT,
    })
    await late.restart()
    const check = new Redis(late.url)
    // Once the driver's connection is up, whatever it had queued would have run by now.
    for (let i = 0; i < 200; i++) {
      const ok = await l2.get('probe').then(
        () => true,
        () => false,
      )
      if (ok) break
      await new Promise((r) => setTimeout(r, 25))
    }
    await l2.get('probe')
    expect(await check.exists('{boot-key}')).toBe(0)
    check.disconnect()
    await l2.close()
    await late.stop()
  })
})

describe('failure handling', () => {
  it('breaker opens on a dead Redis, L1 keeps serving, and it recovers on its own', async () => {
    const own = await startRedis()
    const l2 = new RedisL2({
      redis: own.url,
      commandTimeout: 100,
      breaker: { failures: 3, openFor: 200 },
    })
    const c = createCache({ prefix: 'brk', l1: memoryL1(), l2, ttl: 60_000 })
    await c.set('hot', 'value')
    await own.kill()
    const failures: string[] = []
    c.on('error', (e) => failures.push(e.error.code))
    for (let i = 0; i < 10; i++) {
      expect(await c.get('hot')).toBe('value') // L1
      expect(await c.get(`cold${i}`)).toBeUndefined() // L2 read fails → miss
    }
    expect(l2.breaker.state).not.toBe('closed')
    expect(failures).toContain(errors.E_L2_UNAVAILABLE)
    await expect(c.set('x', 1)).rejects.toMatchObject({ code: errors.E_L2_UNAVAILABLE })
    await own.restart()
    // Bounded: the breaker half-opens after 200 ms and ioredis reconnects with backoff.
    let recovered = false
    for (let i = 0; i < 100 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 100))
      recovered = await c.set('x', 2).then(
        () => true,
        () => false,
      )
    }
    expect(recovered).toBe(true)
    expect(l2.breaker.state).toBe('closed')
    await c.close()
    await own.stop()
  })

  it('Redis frozen (SIGSTOP) for 3 s under load: every call settles while it is frozen; L1 hits keep being served', async () => {
    const own = await startRedis()
    const c = createCache({
      prefix: 'frz',
      l1: memoryL1(),
      l2: redisL2({ redis: own.url, commandTimeout: 150, breaker: { failures: 5, openFor: 500 } }),
      timeouts: { hard: 300 },
    })
    c.on('error', () => undefined)
    await c.set('hot', 'v')
    await own.freeze()
    let frozen = true
    const thawAt = Date.now() + 3_000
    const settledWhileFrozen: boolean[] = []
    let l1Hits = 0
    // Bounded load: at most 20 000 calls, for 3 s, 16 at a time.
    let issued = 0
    const worker = async () => {
      while (Date.now() < thawAt && issued < 20_000) {
        const i = issued++
        const op =
          i % 4 === 0
            ? c.get('hot').then((v) => (v === 'v' ? l1Hits++ : 0))
            : i % 4 === 1
              ? c.get(`cold${i}`)
              : i % 4 === 2
                ? c.getOrSet(`load${i}`, () => i)
                : c.set(`w${i}`, i)
        await op.then(
          () => settledWhileFrozen.push(frozen),
          () => settledWhileFrozen.push(frozen),
        )
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    frozen = false
    await own.thaw()
    expect(settledWhileFrozen.length).toBe(issued)
    expect(issued).toBeGreaterThan(100)
    expect(settledWhileFrozen.every(Boolean)).toBe(true)
    expect(l1Hits).toBe(Math.ceil(issued / 4))
    expect(await c.get('hot')).toBe('v')
    await c.close()
    await own.stop()
  })
})
