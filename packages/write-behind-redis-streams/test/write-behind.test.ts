import { CacheError, errors, type Cache, type PersistItem } from '@strata/core'
import { startRedis, waitFor, type RedisHandle } from '@strata/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { partitions, redisStreamsWriteBehind } from '../src/index.js'
import { replica, Source } from './helpers.js'

let server: RedisHandle
let admin: Redis
const open: { close(): unknown }[] = []
let n = 0

beforeAll(async () => {
  server = await startRedis()
  admin = new Redis(server.url)
})
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close()
})
afterAll(async () => {
  admin.disconnect()
  await server.stop()
})

/** A fresh prefix per test (no state shared between tests). */
function setup() {
  const prefix = `wb${++n}`
  const source = new Source(server.url, `src${n}`)
  const queueRedis = new Redis(server.url)
  open.push({ close: () => queueRedis.disconnect() }, source)
  const cache = (): Cache => {
    const c = replica(server.url, prefix)
    open.push(c)
    return c
  }
  return { prefix, source, queueRedis, cache }
}

describe('write-behind on Redis Streams', () => {
  it('set resolves once queued: every replica sees the value, the worker persists it with its version', async () => {
    const { prefix, source, queueRedis, cache } = setup()
    const a = cache()
    const b = cache()
    await Promise.all([a.ready(), b.ready()])
    let loads = 0
    const spec = (worker: boolean) => ({
      load: async (id: string) => {
        loads++
        return (await source.get(id)) as { name: string } | null
      },
      save: async (id: string, value: { name: string }, { version }: { version: number }) => {
        await source.save(id, value, version)
      },
      write: redisStreamsWriteBehind({ redis: queueRedis, worker, flushInterval: 20 }),
    })
    const pa = a.repository('products', spec(true))
    const pb = b.repository('products', spec(false))
    expect(await pb.get('p1')).toBeNull() // b caches "not found"
    await pa.set('p1', { name: 'new' })
    const [part] = partitions(prefix, 'products', 1)
    // b hears of the write on the bus and loads the new value from L2.
    await waitFor(async () => (await pb.get('p1'))?.name === 'new', 5_000, 'b sees the write')
    await pa.flush()
    expect(await source.get('p1')).toEqual({ name: 'new' })
    expect((await source.versions())['p1']).toBe('1')
    expect(await admin.xlen(part!.stream)).toBe(0)
    expect(await admin.hlen(part!.pending)).toBe(0)
    expect(pa.stats()).toMatchObject({ enqueued: 1, persisted: 1, deadLettered: 0 })
    expect(loads).toBe(1)
  })

  it('coalesces writes to one id in a batch: the newest version wins, older ones are never saved after it', async () => {
    const { source, queueRedis, cache } = setup()
    const c = cache()
    const saved: number[] = []
    const saveMany = async (items: PersistItem<number>[]) => {
      for (const i of items) {
        saved.push(i.version)
        await source.save(i.id, i.value, i.version)
      }
    }
    const repo = c.repository<number>('counters', {
      load: () => null,
      saveMany,
      write: redisStreamsWriteBehind({ redis: queueRedis, worker: false }),
    })
    for (let i = 1; i <= 50; i++) await repo.set('k', i)
    // A worker starts only now: all 50 are waiting in the stream.
    const workerCache = cache()
    const worker = workerCache.repository<number>('counters', {
      load: () => null,
      saveMany,
      write: redisStreamsWriteBehind({
        redis: new Redis(server.url),
        batchSize: 100,
        flushInterval: 10,
      }),
    })
    await worker.flush()
    expect(saved).toEqual([50])
    expect(await source.get('k')).toBe(50)
    expect(worker.stats()).toMatchObject({ persisted: 1, superseded: 49 })
  })

  it('read-your-writes: a replica whose entry is gone loads the pending write, not the source', async () => {
    const { prefix, source, queueRedis, cache } = setup()
    await source.save('p1', { v: 'old' }, 1)
    const a = cache()
    const b = cache()
    const sourceLoads: string[] = []
    const spec = {
      load: async (id: string) => {
        sourceLoads.push(id)
        return (await source.get(id)) as { v: string } | null
      },
      save: () => {
        throw new Error('source down')
      },
      write: redisStreamsWriteBehind({ redis: queueRedis, worker: false }),
    }
    const pa = a.repository('p', spec)
    const pb = b.repository('p', spec)
    await pa.set('p1', { v: 'new' })
    // Every cached copy disappears (expiry, eviction, an L2 flush) before the worker persists.
    await admin.del(`{${prefix}:p:p1}`)
    await b.namespace('p').delete('p1')
    expect(await pb.get('p1')).toEqual({ v: 'new' })
    expect(await pb.getMany(['p1'])).toEqual([{ v: 'new' }])
    expect(sourceLoads).toEqual([])
  })

  it('a poison entry is dead-lettered after maxRetries deliveries; the rest keeps flowing', async () => {
    const { prefix, source, queueRedis, cache } = setup()
    const c = cache()
    const dead: unknown[] = []
    c.on('write:dead-lettered', (e) => dead.push(e))
    const calls = new Map<string, number>()
    const repo = c.repository<string>('items', {
      load: () => null,
      save: async (id, value, { version }) => {
        calls.set(id, (calls.get(id) ?? 0) + 1)
        if (value === 'poison') throw new Error('constraint violated')
        await source.save(id, value, version)
      },
      saveMany: async (items) => {
        for (const i of items) calls.set(i.id, (calls.get(i.id) ?? 0) + 1)
        throw new Error('batch rejected')
      },
      write: redisStreamsWriteBehind({
        redis: queueRedis,
        maxRetries: 3,
        retryBase: 5,
        retryMax: 20,
        claimIdle: 1_000,
        flushInterval: 5,
      }),
    })
    await repo.set('bad', 'poison')
    for (let i = 0; i < 20; i++) await repo.set(`ok${i}`, `v${i}`)
    await repo.flush()
    for (let i = 0; i < 20; i++) expect(await source.get(`ok${i}`)).toBe(`v${i}`)
    expect(calls.get('bad')).toBe(3)
    expect(dead).toEqual([
      { repository: 'items', id: 'bad', version: 1, error: 'constraint violated' },
    ])
    const [part] = partitions(prefix, 'items', 1)
    const letters = await admin.xrange(part!.dead, '-', '+')
    expect(letters).toHaveLength(1)
    const fields = letters[0]![1]
    expect(fields[fields.indexOf('error') + 1]).toBe('constraint violated')
    expect(repo.stats()).toMatchObject({ deadLettered: 1, persisted: 20 })
  })

  it('a full queue refuses set with E_WRITE_QUEUE_FULL and changes nothing', async () => {
    const { source, queueRedis, cache } = setup()
    const c = cache()
    await source.save('x', 'old', 1)
    const repo = c.repository<string>('q', {
      load: async (id) => (await source.get(id)) as string | null,
      save: () => undefined,
      write: redisStreamsWriteBehind({ redis: queueRedis, worker: false, maxPending: 3 }),
    })
    expect(await repo.get('x')).toBe('old')
    for (let i = 0; i < 3; i++) await repo.set(`k${i}`, 'v')
    const err = await repo.set('x', 'new').catch((e: unknown) => e)
    expect(CacheError.is(err, errors.E_WRITE_QUEUE_FULL)).toBe(true)
    expect(await repo.get('x')).toBe('old')
  })

  it("whenFull: 'write-through' persists synchronously with a version from the queue", async () => {
    const { source, queueRedis, cache } = setup()
    const c = cache()
    const repo = c.repository<string>('q', {
      load: async (id) => (await source.get(id)) as string | null,
      save: async (id, value, { version }) => {
        await source.save(id, value, version)
      },
      write: redisStreamsWriteBehind({
        redis: queueRedis,
        worker: false,
        maxPending: 1,
        whenFull: 'write-through',
      }),
    })
    await repo.set('a', 'queued')
    await repo.set('b', 'direct')
    expect(await source.get('b')).toBe('direct')
    expect(await source.get('a')).toBeNull()
    await repo.set('a', 'direct too')
    expect(await source.get('a')).toBe('direct too')
    expect((await source.versions())['a']).toBe('2')
  })

  it('close() drains the batch in flight and leaves the rest to the group: nothing acknowledged is lost', async () => {
    const { source, queueRedis, cache } = setup()
    const c = cache()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let started = 0
    const save = async (id: string, value: number, { version }: { version: number }) => {
      started++
      await gate
      await source.save(id, value, version)
    }
    const repo = c.repository<number>('d', {
      load: () => null,
      save,
      write: redisStreamsWriteBehind({
        redis: queueRedis,
        batchSize: 5,
        flushInterval: 5,
        claimIdle: 500,
        retryMax: 100,
      }),
    })
    for (let i = 0; i < 20; i++) await repo.set(`k${i}`, i)
    await waitFor(async () => started > 0, 5_000, 'first batch')
    const closing = c.close()
    release()
    await closing
    const err = await repo.set('late', 1).catch((e: unknown) => e)
    expect(CacheError.is(err, errors.E_CLOSED)).toBe(true)
    // Another replica's worker takes over what was left (and reclaims nothing twice that mattered).
    const other = cache()
    const repo2 = other.repository<number>('d', {
      load: () => null,
      save: async (id, value, { version }) => {
        await source.save(id, value, version)
      },
      write: redisStreamsWriteBehind({
        redis: new Redis(server.url),
        flushInterval: 5,
        claimIdle: 500,
        retryMax: 100,
      }),
    })
    await repo2.flush({ timeoutMs: 10_000 })
    const versions = await source.versions()
    for (let i = 0; i < 20; i++) expect(await source.get(`k${i}`)).toBe(i)
    expect(Object.keys(versions)).toHaveLength(20)
  })
})

describe('consumer group housekeeping', () => {
  it('a stopped consumer that holds nothing leaves the group; a dead one holding a malformed entry loses it to a live worker', async () => {
    const { prefix, queueRedis, cache } = setup()
    const [part] = partitions(prefix, 'h', 1)
    await admin.xgroup('CREATE', part!.stream, 'strata', '0', 'MKSTREAM')
    await admin.xgroup('CREATECONSUMER', part!.stream, 'strata', 'ghost')
    // 'holder' took an entry and died before acknowledging it (claimIdle is long for it).
    await admin.xadd(part!.stream, '*', 'junk', '1')
    await admin.xreadgroup('GROUP', 'strata', 'holder', 'COUNT', 1, 'STREAMS', part!.stream, '>')
    const c = cache()
    c.repository<number>('h', {
      load: () => null,
      save: () => undefined,
      write: redisStreamsWriteBehind({
        redis: queueRedis,
        consumer: 'alive',
        claimIdle: 100,
        retryBase: 10,
        retryMax: 40,
        flushInterval: 10,
      }),
    })
    const names = async () =>
      ((await admin.xinfo('CONSUMERS', part!.stream, 'strata')) as unknown[][]).map((f) =>
        String(f[1]),
      )
    await waitFor(async () => !(await names()).includes('ghost'), 10_000, 'ghost removed')
    // The live worker reclaimed the holder's entry, found it malformed and dropped it.
    await waitFor(async () => (await admin.xlen(part!.stream)) === 0, 10_000, 'entry dropped')
  })
})

describe('write-through', () => {
  it('a failing save changes no cache and rejects with E_SOURCE_WRITE carrying the cause', async () => {
    const { source, cache } = setup()
    await source.save('p1', 'old', 1)
    const a = cache()
    const b = cache()
    const spec = {
      load: async (id: string) => (await source.get(id)) as string | null,
      save: () => {
        throw new Error('db down')
      },
    }
    const pa = a.repository<string>('p', spec)
    const pb = b.repository<string>('p', spec)
    expect(await pa.get('p1')).toBe('old')
    expect(await pb.get('p1')).toBe('old')
    const err = await pa.set('p1', 'new').catch((e: unknown) => e)
    expect(CacheError.is(err, errors.E_SOURCE_WRITE)).toBe(true)
    expect((err as Error).cause).toEqual(new Error('db down'))
    expect(await pa.get('p1')).toBe('old')
    expect(await pb.get('p1')).toBe('old')
    expect(a.stats().bus.published).toBe(0)
  })

  it('save then cache: a failed L2 write after a successful save leaves no replica serving the old value', async () => {
    const { prefix, source, cache } = setup()
    await admin.call('ACL', 'SETUSER', 'wt', 'reset', 'on', '>pw', '~*', '&*', '+@all')
    const url = new URL(server.url)
    url.username = 'wt'
    url.password = 'pw'
    await source.save('p1', 'old', 1)
    const spec = {
      load: async (id: string) => (await source.get(id)) as string | null,
      save: async (id: string, value: string, { version }: { version: number }) => {
        await source.save(id, value, version)
      },
    }
    const writer = replica(url.toString(), prefix)
    open.push(writer)
    const reader = cache()
    const pw = writer.repository<string>('p', spec)
    const pr = reader.repository<string>('p', spec)
    expect(await pr.get('p1')).toBe('old')
    expect(await admin.exists(`{${prefix}:p:p1}`)).toBe(1)
    await admin.call('ACL', 'SETUSER', 'wt', '-set')
    const err = await pw.set('p1', 'new').catch((e: unknown) => e)
    expect(CacheError.is(err)).toBe(true)
    expect(await source.get('p1')).toBe('new')
    await admin.call('ACL', 'SETUSER', 'wt', '+set')
    // The reader's L1 copy was dropped by the bus; L2's old copy is repaired away (its
    // delete reaches the reader through the bus too, so wait for the read, not the key).
    await waitFor(async () => (await pr.get('p1')) === 'new', 5_000, 'L2 repaired')
    expect(await pr.get('p1')).toBe('new')
    expect(await pw.get('p1')).toBe('new')
  })
})
