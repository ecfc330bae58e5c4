import { errors } from '@strata/core'
import { deferred } from '@strata/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Deadlines } from '../src/deadlines.js'

/** A command whose answer the test controls. */
const command = deferred

describe('command deadlines', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const wrap = (e: unknown) => new Error(`wrapped: ${(e as Error).message}`)

  it('answers, maps and reports each command once; a late answer after the deadline changes nothing', async () => {
    const d = new Deadlines(1_000)
    const settled = vi.fn()
    const a = command<number>()
    const ok = d.race(
      () => a.promise,
      'GET',
      settled,
      wrap,
      (v) => v * 2,
    )
    a.resolve(21)
    await expect(ok).resolves.toBe(42)
    expect(settled.mock.calls).toEqual([[true]])

    const b = command<number>()
    const failed = d.race(() => b.promise, 'GET', settled, wrap)
    b.reject(new Error('boom'))
    await expect(failed).rejects.toThrow('wrapped: boom')
    expect(settled).toHaveBeenCalledTimes(2)
    expect(settled.mock.calls[1]?.[0]).toBe(false)

    const c = command<number>()
    const late = d.race(() => c.promise, 'SET', settled, wrap)
    const outcome = late.catch((e: unknown) => e)
    await vi.advanceTimersByTimeAsync(1_250)
    const err = (await outcome) as { code?: string; message: string }
    expect(err.code).toBe(errors.E_L2_TIMEOUT)
    expect(err.message).toMatch(/SET did not answer within 1000 ms/)
    c.resolve(1)
    await vi.advanceTimersByTimeAsync(10)
    expect(settled).toHaveBeenCalledTimes(3)
  })

  it('fires between 1x and 1.25x the timeout, only for the commands past it, in any answer order', async () => {
    const d = new Deadlines(1_000)
    const settled = vi.fn()
    const cmds = Array.from({ length: 6 }, () => command<string>())
    const results: (string | undefined)[] = []
    const races = cmds.map((c, i) => {
      const r = d
        .race(() => c.promise, `C${i}`, settled, wrap)
        .then(
          (v) => (results[i] = v),
          () => (results[i] = 'timeout'),
        )
      return r
    })
    // Answers out of order, from the middle of the list and both ends.
    cmds[2]?.resolve('two')
    cmds[5]?.resolve('five')
    cmds[0]?.resolve('zero')
    await vi.advanceTimersByTimeAsync(999)
    expect(results.filter((r) => r === 'timeout')).toEqual([])
    // Newer commands, issued half-way: they must outlive the older ones.
    const later = command<string>()
    const laterRace = d.race(() => later.promise, 'LATER', settled, wrap).catch(() => 'timeout')
    await vi.advanceTimersByTimeAsync(251)
    await Promise.all(races)
    expect(results).toEqual(['zero', 'timeout', 'two', 'timeout', 'timeout', 'five'])
    later.resolve('in time')
    await expect(laterRace).resolves.toBe('in time')
    expect(settled).toHaveBeenCalledTimes(7)
  })

  it('tells a command waiting to be sent that its caller was already told it timed out', async () => {
    const d = new Deadlines(100)
    let expired: (() => boolean) | undefined
    const c = command<string>()
    const r = d
      .race(
        (e) => {
          expired = e
          return c.promise
        },
        'GET',
        () => undefined,
        wrap,
      )
      .catch(() => 'timeout')
    expect(expired?.()).toBe(false)
    await vi.advanceTimersByTimeAsync(125)
    await expect(r).resolves.toBe('timeout')
    expect(expired?.()).toBe(true)
  })

  it('keeps no timer while nothing is pending', async () => {
    const d = new Deadlines(1_000)
    expect(vi.getTimerCount()).toBe(0)
    const c = command<number>()
    const r = d.race(
      () => c.promise,
      'GET',
      () => undefined,
      wrap,
    )
    expect(vi.getTimerCount()).toBe(1)
    c.resolve(1)
    await r
    await vi.advanceTimersByTimeAsync(250)
    expect(vi.getTimerCount()).toBe(0)
  })
})
