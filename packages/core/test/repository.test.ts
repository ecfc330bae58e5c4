import { CacheError, createCache, errors, memoryL2 } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { afterEach, describe, expect, it } from 'vitest'

const caches: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close()
})

function cache() {
  const c = createCache({ prefix: 'repo', l1: memoryL1(), l2: memoryL2() })
  caches.push(c)
  return c
}

describe('cache.repository (read-through, write-through)', () => {
  it('get loads through load() once, caches "not found" as null; getMany calls loadMany once for the misses', async () => {
    const c = cache()
    const db = new Map([['1', { name: 'a' }]])
    const loads: string[] = []
    const batches: string[][] = []
    const repo = c.repository<{ name: string }>('products', {
      load: (id) => {
        loads.push(id)
        return db.get(id) ?? null
      },
      loadMany: (ids) => {
        batches.push(ids)
        return new Map(ids.filter((id) => db.has(id)).map((id) => [id, db.get(id) ?? null]))
      },
      ttl: '1m',
    })
    expect(await repo.get('1')).toEqual({ name: 'a' })
    expect(await repo.get('1')).toEqual({ name: 'a' })
    expect(await repo.get('missing')).toBeNull()
    expect(await repo.get('missing')).toBeNull()
    expect(loads).toEqual(['1', 'missing'])
    db.set('2', { name: 'b' })
    expect(await repo.getMany(['1', '2', '3'])).toEqual([{ name: 'a' }, { name: 'b' }, null])
    expect(batches).toEqual([['2', '3']])
    // The repository is a namespace: the same keys through the cache view.
    expect(await c.namespace('products').get('2')).toEqual({ name: 'b' })
  })

  it('write-through: save runs first with a version; the cache changes only after it succeeded', async () => {
    const c = cache()
    const saved: { id: string; value: unknown; version: number }[] = []
    const repo = c.repository<string>('p', {
      load: () => 'from-source',
      save: (id, value, { version }) => {
        saved.push({ id, value, version })
      },
      remove: () => undefined,
    })
    expect(await repo.get('x')).toBe('from-source')
    await repo.set('x', 'v1')
    await repo.set('x', 'v2')
    expect(await repo.get('x')).toBe('v2')
    expect(saved.map((s) => s.value)).toEqual(['v1', 'v2'])
    expect(saved[1]!.version).toBeGreaterThan(saved[0]!.version)
    await repo.delete('x')
    expect(await repo.get('x')).toBe('from-source')
  })

  it('a failing save leaves the cache untouched: E_SOURCE_WRITE with the cause', async () => {
    const c = cache()
    const repo = c.repository<string>('p', {
      load: () => 'old',
      save: () => {
        throw new Error('db down')
      },
      remove: () => Promise.reject(new Error('db down')),
    })
    expect(await repo.get('x')).toBe('old')
    const err = await repo.set('x', 'new').catch((e: unknown) => e)
    expect(CacheError.is(err, errors.E_SOURCE_WRITE)).toBe(true)
    expect((err as Error).cause).toEqual(new Error('db down'))
    expect(await repo.get('x')).toBe('old')
    const del = await repo.delete('x').catch((e: unknown) => e)
    expect(CacheError.is(del, errors.E_SOURCE_WRITE)).toBe(true)
    expect(await repo.get('x')).toBe('old')
  })

  it('a value the cache cannot hold is refused before save is called', async () => {
    const c = cache()
    let saves = 0
    const repo = c.repository<unknown>('p', {
      load: () => 'old',
      save: () => {
        saves++
      },
    })
    const err = await repo.set('x', { fn: () => 1 }).catch((e: unknown) => e)
    expect(CacheError.is(err)).toBe(true)
    expect(saves).toBe(0)
    expect(await repo.get('x')).toBe('old')
  })

  it('refuses bad options and unsupported writes with typed errors', async () => {
    const c = cache()
    expect(() => c.repository('p', {} as never)).toThrow(
      expect.objectContaining({ code: errors.E_INVALID_OPTION }),
    )
    expect(() => c.repository('p', { load: () => 1, save: 'no' } as never)).toThrow(
      expect.objectContaining({ code: errors.E_INVALID_OPTION }),
    )
    expect(() => c.repository('p', { load: () => 1, write: 'behind' } as never)).toThrow(
      expect.objectContaining({ code: errors.E_INVALID_OPTION }),
    )
    const readOnly = c.repository<number>('r', { load: () => 1 })
    await expect(readOnly.set('a', 2)).rejects.toMatchObject({ code: errors.E_UNSUPPORTED })
    await expect(readOnly.delete('a')).rejects.toMatchObject({ code: errors.E_UNSUPPORTED })
    expect(readOnly.stats()).toMatchObject({ pending: 0, persisted: 0 })
    await readOnly.flush()
  })
})
