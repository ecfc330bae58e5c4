import type { Clock, TimerHandle } from './contracts.js'

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>)
  },
}

export interface FakeClock extends Clock {
  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void
  /** Moves time forward and lets promise callbacks run between timers. */
  advanceAsync(ms: number): Promise<void>
  readonly pendingTimers: number
}

interface FakeTimer extends TimerHandle {
  at: number
  seq: number
  fn: () => void
}

/** A deterministic clock for tests: time only moves when the test says so. */
export function createFakeClock(start = 1_700_000_000_000): FakeClock {
  let now = start
  let seq = 0
  const timers = new Set<FakeTimer>()
  const next = (until: number): FakeTimer | undefined => {
    let best: FakeTimer | undefined
    for (const t of timers) {
      if (t.at <= until && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)))
        best = t
    }
    return best
  }
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const t: FakeTimer = { at: now + Math.max(0, ms), seq: seq++, fn }
      timers.add(t)
      return t
    },
    clearTimeout(handle) {
      timers.delete(handle as FakeTimer)
    },
    advance(ms) {
      const until = now + ms
      for (let t = next(until); t; t = next(until)) {
        timers.delete(t)
        now = Math.max(now, t.at)
        t.fn()
      }
      now = until
    },
    async advanceAsync(ms) {
      const until = now + ms
      await flushMicrotasks()
      for (let t = next(until); t; t = next(until)) {
        timers.delete(t)
        now = Math.max(now, t.at)
        t.fn()
        await flushMicrotasks()
      }
      now = until
      await flushMicrotasks()
    },
    get pendingTimers() {
      return timers.size
    },
  }
}

/** Lets queued promise callbacks run (a few macrotask turns, no wall-clock wait). */
export async function flushMicrotasks(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}
