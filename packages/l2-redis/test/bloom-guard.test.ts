import { startRedis, waitFor } from '@strata/testing'
import { describe, expect, it } from 'vitest'
import { bloomSizing, redisBloomGuard } from '../src/index.js'
import { realRedis } from './replicas.js'

const r = realRedis()
let seq = 0
const cache = (prefix: string, url?: string) => r.cache(prefix, url)

const existing = (n: number) => Array.from({ length: n }, (_, i) => `id-${i}`)

/**
 * A repository over a source `db` of 2 000 ids, guarded by a filter built from `ids()`.
 * Once `pause()`d, `ids()` stops before its id number `at` until `release()`: a rebuild
 * held part way. Each `ids()` call reads `db` as it is then.
 */
function gatedRepository(at: number) {
  const prefix = `bg${++seq}`
  const db = new Set(existing(2_000))
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let paused = false
  async function* ids() {
    let i = 0
    for (const id of [...db]) {
      if (i++ === at && paused) await gate
      yield id
    }
  }
  const c = cache(prefix)
  const repo = c.repository<string>('items', {
    load: (id) => (db.has(id) ? id : null),
    save: (id) => {
      db.add(id)
    },
    guard: redisBloomGuard({ expectedItems: 5_000, falsePositiveRate: 0.01, ids, settle: 0 }),
  })
  return { prefix, db, c, repo, pause: () => (paused = true), release }
}

describe('redisBloomGuard', () => {
  it('sizes the filter from expectedItems and falsePositiveRate', () => {
    expect(bloomSizing(1_000_000, 0.01)).toEqual({ m: 9_585_059, k: 7 })
    expect(() => redisBloomGuard({ expectedItems: 0, falsePositiveRate: 0.01 })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
    expect(() => redisBloomGuard({ expectedItems: 10, falsePositiveRate: 1 })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
  })

  it('builds from ids(), rejects absent ids without calling the loader, and keeps its false-positive rate', async () => {
    const prefix = `bg${++seq}`
    const db = new Set(existing(10_000))
    const c = cache(prefix)
    let loads = 0
    const repo = c.repository<string>('items', {
      load: (id) => {
        loads++
        return db.has(id) ? `v-${id}` : null
      },
      guard: redisBloomGuard({
        expectedItems: 10_000,
        falsePositiveRate: 0.01,
        ids: () => db,
        settle: 0,
      }),
    })
    await waitFor(
      async () => (await r.admin.exists(`{${prefix}:bloom:items}`)) === 1,
      10_000,
      'first build',
    )
    expect(await repo.get('id-7')).toBe('v-id-7')
    loads = 0
    const absent = Array.from({ length: 5_000 }, (_, i) => `ghost-${i}`)
    for (let i = 0; i < absent.length; i += 100) {
      expect(await repo.getMany(absent.slice(i, i + 100))).toEqual(new Array(100).fill(null))
    }
    // getMany without loadMany loads one id at a time: each load call is a false positive.
    const rate = loads / absent.length
    const s = repo.stats().guard!
    expect(s.rejected + loads).toBe(absent.length)
    expect(rate).toBeLessThan(0.015)
    expect(s.estimatedFalsePositiveRate).toBeLessThan(0.015)
    expect(s.fillRatio).toBeGreaterThan(0.3)
    // Rejected ids are cached as "not found" like any null: asked again, nothing is checked.
    const checked = s.checked
    await repo.get('ghost-1')
    expect(repo.stats().guard!.checked).toBe(checked)
  })

  it('an id written on replica A after replica B rejected it is served by B', async () => {
    const prefix = `bg${++seq}`
    const db = new Map(existing(100).map((id) => [id, `v-${id}`]))
    const spec = () => ({
      load: (id: string) => db.get(id) ?? null,
      save: (id: string, value: string) => {
        db.set(id, value)
      },
      guard: redisBloomGuard({
        expectedItems: 1_000,
        falsePositiveRate: 0.001,
        ids: () => db.keys(),
        settle: 0,
      }),
    })
    const a = cache(prefix).repository<string>('items', spec())
    // B without L1 (this package's tests run without the bus: an L1 copy would stay).
    const cb = r.cache(prefix, undefined, { l1: undefined })
    const b = cb.repository<string>('items', spec())
    await waitFor(
      async () => (await r.admin.exists(`{${prefix}:bloom:items}`)) === 1,
      10_000,
      'build',
    )
    expect(await b.get('new-1')).toBeNull()
    expect(b.stats().guard!.rejected).toBe(1)
    await a.set('new-1', 'created')
    expect(await b.get('new-1')).toBe('created')
    // And once every cached copy is gone, B's guard passes it to the loader.
    await cb.namespace('items').delete('new-1')
    expect(await b.get('new-1')).toBe('created')
    expect(b.stats().guard!.rejected).toBe(1)
  })

  it('fails open: no filter, or Redis frozen → the loader answers, no error', async () => {
    const own = await startRedis({ source: 'binary' })
    try {
      const prefix = `bg${++seq}`
      const c = cache(prefix, own.url)
      let loads = 0
      const repo = c.repository<string>('items', {
        load: (id) => {
          loads++
          return `v-${id}`
        },
        guard: redisBloomGuard({ expectedItems: 1_000, falsePositiveRate: 0.01 }), // no ids(): never built
        timeouts: { hard: 2_000 },
      })
      expect(await repo.get('a')).toBe('v-a')
      expect(repo.stats().guard).toMatchObject({ failOpen: 1, rejected: 0 })
      await own.freeze()
      const errors: unknown[] = []
      c.on('error', (e) => errors.push(e))
      expect(await repo.get('b')).toBe('v-b')
      expect(loads).toBe(2)
      expect(repo.stats().guard!.failOpen).toBe(2)
      await own.thaw()
    } finally {
      await own.stop()
    }
  })

  it('rebuild under writes: ids added during the rebuild are in the new filter, deleted ids drop out', async () => {
    // The rebuild is half way when writes arrive.
    const { prefix, db, c, repo, pause, release } = gatedRepository(500)
    await waitFor(
      async () => (await r.admin.exists(`{${prefix}:bloom:items}`)) === 1,
      10_000,
      'build',
    )
    for (let i = 0; i < 1_000; i++) db.delete(`id-${i}`) // deleted from the source
    pause()
    const progress: number[] = []
    const rebuilding = repo.rebuildGuard({ onProgress: (n) => progress.push(n) })
    await waitFor(() => progress.length > 0, 10_000, 'rebuild under way')
    const added = Array.from({ length: 200 }, (_, i) => `added-${i}`)
    for (const id of added) await repo.set(id, id)
    // These ids were never in the source before: the rebuild's ids() yields them only if
    // it had not passed them; adds during the rebuild go to both filters.
    release()
    const report = await rebuilding
    expect(report.ids).toBeGreaterThanOrEqual(1_000)
    const guard = repo.stats().guard!
    const before = guard.rejected
    for (const id of added) {
      await c.namespace('items').delete(id) // drop cached copies: the next get must pass the guard
      expect(await repo.get(id)).toBe(id)
    }
    expect(repo.stats().guard!.rejected).toBe(before)
    // Deleted ids: nearly all rejected now (false positives allowed at the configured rate).
    for (let i = 0; i < 1_000; i++) {
      await c.namespace('items').delete(`id-${i}`)
      expect(await repo.get(`id-${i}`)).toBeNull()
    }
    // At most the configured rate (with margin) slipped through as false positives.
    expect(repo.stats().guard!.rejected - before).toBeGreaterThanOrEqual(985)
  })

  it('a rebuild asked for while one runs reads ids() again after it, with its own progress', async () => {
    // The first rebuild asked for stops after reading 1 000 ids.
    const { db, repo, pause, release } = gatedRepository(1_000)
    await waitFor(async () => repo.stats().guard!.rebuilds === 1, 10_000, 'first build')
    pause()
    const first: number[] = []
    const running = repo.rebuildGuard({ onProgress: (n) => first.push(n) })
    await waitFor(() => first.length >= 2, 10_000, 'first rebuild at its gate')
    // Deleted from the source after the running rebuild read them, then a rebuild is asked for.
    for (let i = 0; i < 500; i++) db.delete(`id-${i}`)
    const second: number[] = []
    const asked = repo.rebuildGuard({ onProgress: (n) => second.push(n) })
    release()
    const [a, b] = await Promise.all([running, asked])
    expect(a.ids).toBe(2_000)
    expect(b.ids).toBe(1_500)
    expect(second.at(-1)).toBe(1_500)
    const before = repo.stats().guard!.rejected
    for (let i = 0; i < 500; i++) expect(await repo.get(`id-${i}`)).toBeNull()
    expect(repo.stats().guard!.rejected - before).toBeGreaterThanOrEqual(490)
  })
})
