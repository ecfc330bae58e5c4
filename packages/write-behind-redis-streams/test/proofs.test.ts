import { CacheError, errors } from '@strata/core'
import {
  spawnChild,
  startRedis,
  waitFor,
  type ChildHandle,
  type RedisHandle,
} from '@strata/testing'
import { Redis } from 'ioredis'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { partitions, redisStreamsWriteBehind } from '../src/index.js'
import { replica, Source } from './helpers.js'

/**
 * The proofs docs/patterns.md cites: real replica processes, real redis-server processes
 * (the queue's and, separately, the source's), every loop bounded by count and time.
 * Figures are printed as `[proof] …` lines.
 */
const fixture = fileURLToPath(new URL('./fixtures/replica.mjs', import.meta.url))
let server: RedisHandle
let sourceServer: RedisHandle
const cleanup: (() => unknown)[] = []

beforeAll(async () => {
  ;[server, sourceServer] = await Promise.all([startRedis(), startRedis()])
})
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})
afterAll(async () => {
  await Promise.all([server.stop(), sourceServer.stop()])
})

function child(url = server.url): ChildHandle {
  const c = spawnChild(fixture, [], { REDIS_TEST_URL: url, SOURCE_TEST_URL: sourceServer.url })
  cleanup.push(() => c.kill())
  return c
}

function source(name: string): Source {
  const s = new Source(sourceServer.url, name)
  cleanup.push(() => s.close())
  return s
}

/** A writer replica in this process that only enqueues (no worker). */
function writer(url: string, prefix: string, repo: string, ttl?: number) {
  const cache = replica(url, prefix)
  const redis = new Redis(url, { maxRetriesPerRequest: 1 })
  redis.on('error', () => undefined) // the Redis-crash proofs kill the server under it
  cleanup.push(
    () => cache.close(),
    () => redis.disconnect(),
  )
  const repository = cache.repository<{ n: number }>(repo, {
    ttl,
    load: () => null,
    save: () => undefined,
    remove: () => undefined,
    write: redisStreamsWriteBehind({ redis, worker: false }),
  })
  return { cache, repository }
}

function proof(line: string): void {
  console.log(`[proof] ${line}`)
}

describe('write-behind proofs (real processes)', () => {
  it('worker crash: 10 000 acknowledged writes, the worker SIGKILLed mid-batch and restarted → the source holds every last acknowledged write', async () => {
    const prefix = 'crash'
    const src = source('crash-src')
    const { repository } = writer(server.url, prefix, 'items')
    const init = {
      cmd: 'init',
      prefix,
      repo: 'items',
      sourceName: 'crash-src',
      batchDelayMs: 20,
      queue: { batchSize: 100, flushInterval: 10, claimIdle: 1_000, retryMax: 200 },
    }
    const first = child()
    let batches = 0
    first.process.on('message', (m: { event?: string }) => {
      if (m.event === 'batch') batches++
    })
    await first.request(init)
    const ids = Array.from({ length: 2_000 }, (_, i) => `item-${i}`)
    const last = new Map<string, number>()
    // 8 writers on disjoint ids, 5 rounds each: 10 000 writes, per-id order kept.
    const writing = Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let round = 1; round <= 5; round++) {
          for (let i = w; i < ids.length; i += 8) {
            const id = ids[i] as string
            await repository.set(id, { n: round })
            last.set(id, round)
          }
        }
      }),
    )
    await waitFor(() => batches >= 3, 30_000, 'the third batch to start')
    await first.kill() // mid-batch: the third batch is inside its 20 ms save
    await writing
    expect([...last.values()].reduce((a, b) => a + b, 0)).toBe(10_000)
    const second = child()
    await second.request(init)
    const t0 = Date.now()
    await second.request({ cmd: 'flush', timeoutMs: 60_000 }, 90_000)
    const versions = await src.versions()
    const values = await src.values()
    const wrong = ids.filter(
      (id) => versions[id] !== '5' || (values[id] as { n: number } | undefined)?.n !== 5,
    )
    const stats = await src.stats()
    proof(
      `worker crash: 10000 acked writes over 2000 ids, killed after ${batches} batches; drained in ${Date.now() - t0} ms; ` +
        `source calls ${stats.calls}, duplicate deliveries ${stats.duplicates}, stale deliveries ${stats.older}; wrong ids ${wrong.length}`,
    )
    expect(wrong).toEqual([])
  }, 120_000)

  for (const mode of ['always', 'everysec', 'none'] as const) {
    it(`Redis SIGKILL with a non-empty queue, restarted (${mode === 'none' ? 'no persistence' : `appendfsync ${mode}`})`, async () => {
      const args = mode === 'none' ? [] : ['--appendonly', 'yes', '--appendfsync', mode]
      const redis = await startRedis({ source: 'binary', args })
      cleanup.push(() => redis.stop())
      const prefix = `kill-${mode}`
      const src = source(`kill-${mode}-src`)
      const { repository } = writer(redis.url, prefix, 'items')
      const acked = new Map<string, number>()
      let stop = false
      let writes = 0
      const writing = Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let n = 1; n <= 2_000 && !stop; n++) {
            const id = `item-${w}-${n % 50}`
            try {
              await repository.set(id, { n })
              acked.set(id, n)
              writes++
            } catch {
              return // Redis is gone: this writer stops (its last write was not acknowledged)
            }
          }
        }),
      )
      await waitFor(() => writes >= 1_000, 30_000, '1000 acknowledged writes')
      await redis.kill()
      stop = true
      await writing
      await redis.restart({ keepData: mode !== 'none' })
      const drain = child(redis.url)
      await drain.request({
        cmd: 'init',
        prefix,
        repo: 'items',
        sourceName: `kill-${mode}-src`,
        queue: { flushInterval: 10 },
      })
      await drain.request({ cmd: 'flush', timeoutMs: 30_000 }, 60_000)
      const values = await src.values()
      const lost = [...acked].filter(
        ([id, n]) => ((values[id] as { n: number } | undefined)?.n ?? 0) < n,
      )
      proof(
        `Redis SIGKILL, ${mode === 'none' ? 'no persistence' : `appendfsync ${mode}`}: ${writes} acked writes (${acked.size} ids); ids whose last acked write was lost: ${lost.length}`,
      )
      if (mode === 'none') expect(lost.length).toBe(acked.size)
      else expect(lost).toEqual([])
    }, 120_000)
  }

  it('source outage (save throws for 10 s): the queue stays bounded, retries back off, no version regression, full drain after', async () => {
    const prefix = 'outage'
    const src = source('outage-src')
    const cache = replica(server.url, prefix)
    const queueRedis = new Redis(server.url)
    cleanup.push(
      () => cache.close(),
      () => queueRedis.disconnect(),
    )
    let down = true
    const repository = cache.repository<{ n: number }>('items', {
      load: () => null,
      save: async (id, value, { version }) => {
        if (down) throw new Error('source unavailable')
        await src.save(id, value, version)
      },
      write: redisStreamsWriteBehind({
        redis: queueRedis,
        maxPending: 2_000,
        maxRetries: 100,
        retryBase: 50,
        retryMax: 1_000,
        flushInterval: 10,
      }),
    })
    const [part] = partitions(prefix, 'items', 1)
    const acked = new Map<string, number>()
    let full = 0
    let maxDepth = 0
    const outageMs = 10_000
    const end = Date.now() + outageMs
    const sampling = (async () => {
      while (Date.now() < end) {
        maxDepth = Math.max(maxDepth, await queueRedis.xlen(part!.stream))
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    await Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let n = 1; n <= 20_000 && Date.now() < end; n++) {
          const id = `item-${w}-${n % 1_000}`
          try {
            await repository.set(id, { n })
            acked.set(id, n)
          } catch (err) {
            if (!CacheError.is(err, errors.E_WRITE_QUEUE_FULL)) throw err
            full++
            await new Promise((r) => setTimeout(r, 5))
          }
        }
      }),
    )
    await sampling
    const during = repository.stats()
    down = false
    const t0 = Date.now()
    await repository.flush({ timeoutMs: 60_000 })
    const drainMs = Date.now() - t0
    const values = await src.values()
    const behind = [...acked].filter(
      ([id, n]) => (values[id] as { n: number } | undefined)?.n !== n,
    )
    const s = await src.stats()
    proof(
      `source outage ${outageMs} ms: max queue depth ${maxDepth} (maxPending 2000), ${full} writes refused when full, ` +
        `${during.retried} retries during the outage (held ≤ 100), drained in ${drainMs} ms, stale deliveries ${s.older}, ids behind ${behind.length}`,
    )
    expect(maxDepth).toBeLessThanOrEqual(2_000)
    expect(full).toBeGreaterThan(0)
    // Without backoff a held batch retried every 10 ms round would make ~100 000 attempts.
    expect(during.retried).toBeLessThanOrEqual(100 * 25)
    expect(s.older).toBe(0)
    expect(behind).toEqual([])
  }, 120_000)

  it('read-your-writes under expiry: TTL shorter than any flush, other replicas never read an older value', async () => {
    const prefix = 'ryw'
    source('ryw-src')
    const { repository } = writer(server.url, prefix, 'items', 50)
    const ackRedis = new Redis(server.url)
    cleanup.push(() => ackRedis.disconnect())
    const ids = Array.from({ length: 500 }, (_, i) => `item-${i}`)
    const readers = [child(), child()]
    // No worker anywhere: nothing is persisted while the readers run; entries live 50 ms.
    await Promise.all(
      readers.map((r) =>
        r.request({
          cmd: 'init',
          prefix,
          repo: 'items',
          sourceName: 'ryw-src',
          l1: false,
          ttl: 50,
          queue: { worker: false },
        }),
      ),
    )
    const reading = readers.map((r) =>
      r.request<{ reads: number; loads: number; violations: unknown[] }>(
        { cmd: 'readLoop', prefix, ids, ms: 2_000, maxReads: 50_000 },
        30_000,
      ),
    )
    const end = Date.now() + 2_000
    for (let n = 1; n <= 100_000 && Date.now() < end; n++) {
      const id = ids[n % ids.length] as string
      await repository.set(id, { n })
      await ackRedis.set(`${prefix}:acked:${id}`, n)
    }
    const results = await Promise.all(reading)
    proof(
      `read-your-writes under expiry: ${results.map((r) => r.reads).join(' + ')} reads, ${results.map((r) => r.loads).join(' + ')} loads after expiry, violations ${results.map((r) => r.violations.length).join(' + ')}`,
    )
    for (const r of results) {
      expect(r.reads).toBeGreaterThan(100)
      expect(r.loads).toBeGreaterThan(10)
      expect(r.violations).toEqual([])
    }
  }, 60_000)
})
