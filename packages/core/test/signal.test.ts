import { CacheError, createCache, errors, memoryL2 } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { describe, expect, it } from 'vitest'

function deferred<T>() {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

describe('a caller signal in per-call options', () => {
  it('aborts this caller’s wait, not the shared load: others get the value, and it is cached', async () => {
    const cache = createCache({ l1: memoryL1(), l2: memoryL2() })
    const gate = deferred<string>()
    let calls = 0
    const loader = () => {
      calls++
      return gate.promise
    }
    const ac = new AbortController()
    const impatient = cache.getOrSet('k', loader, { signal: ac.signal })
    const patient = cache.getOrSet('k', loader)
    ac.abort()
    const err = await impatient.catch((e: unknown) => e)
    expect(CacheError.is(err, errors.E_ABORTED)).toBe(true)
    gate.resolve('v')
    expect(await patient).toBe('v')
    expect(calls).toBe(1)
    expect(await cache.get('k')).toBe('v')
    await cache.close()
  })

  it('an already aborted signal rejects at once; getOrSetMany honours it too', async () => {
    const cache = createCache({ l1: memoryL1() })
    await cache.set('hit', 1)
    const done = AbortSignal.abort()
    await expect(cache.getOrSet('hit', () => 2, { signal: done })).rejects.toMatchObject({
      code: 'E_ABORTED',
    })
    const gate = deferred<Map<string, number>>()
    const ac = new AbortController()
    const many = cache.getOrSetMany(['a', 'b'], () => gate.promise, { signal: ac.signal })
    ac.abort()
    await expect(many).rejects.toMatchObject({ code: 'E_ABORTED' })
    gate.resolve(new Map([['a', 1]]))
    await expect(cache.getOrSet('x', () => 1, { signal: {} as AbortSignal })).rejects.toMatchObject(
      {
        code: 'E_INVALID_OPTION',
      },
    )
    await cache.close()
  })
})
