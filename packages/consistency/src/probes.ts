/**
 * Probes a replica runs beside its workload, each on keys of its own: L1 hit latency,
 * whether a write shows locally before L2 holds it, and how often hot keys are refreshed
 * in the background. Every loop is bounded by count and by the workload's end.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Cache } from '@strata/core'
import type { Redis } from 'ioredis'
import type { RefreshProbeResult, WriteProbeResult } from './protocol.js'

export interface ProbeEnv {
  cache: Cache
  prefix: string
  replica: number
  /** L1 hits on `key` (as the caller names it) so far: a probe tells its hits from its misses by it. */
  l1HitsOn(key: string): number
  /** True while the workload runs. */
  running(): boolean
}

/** A key only this replica reads, every 5 ms: the 99th percentile of the reads that were L1 hits (ms). */
export async function l1HitProbe(env: ProbeEnv): Promise<number> {
  const key = `probe-${env.replica}`
  await env.cache.set(key, { v: 0 })
  const latencies: number[] = []
  for (let i = 0; i < 1_000_000 && env.running(); i++) {
    const before = env.l1HitsOn(key)
    const t = performance.now()
    await env.cache.get(key).catch(() => undefined)
    const ms = performance.now() - t
    // A gap clears L1 and sends the read to L2: not an L1 hit, not counted.
    if (env.l1HitsOn(key) > before && latencies.length < 200_000) latencies.push(ms)
    await sleep(5)
  }
  latencies.sort((a, b) => a - b)
  return latencies[Math.floor(latencies.length * 0.99)] ?? 0
}

/**
 * A key only this replica writes, a new value every ~10 ms; while each write is in
 * flight the key is read every millisecond. A read answered from L1 with the new value
 * is checked against L2 at once (a plain GET on `raw`, which `CLIENT PAUSE WRITE` lets
 * through): L2 must already hold it. Writes are sequential, so L2 cannot have moved on.
 */
export async function writeProbe(env: ProbeEnv, raw: Redis): Promise<WriteProbeResult> {
  const key = `wprobe-${env.replica}`
  const l2Key = `{${env.prefix}::${key}}`
  const r: WriteProbeResult = {
    writes: 0,
    failedWrites: 0,
    readsWhilePending: 0,
    newValueInL1: 0,
    newValueInL1BeforeL2: 0,
  }
  for (let n = 1; n <= 100_000 && env.running(); n++) {
    const marker = `|wp${env.replica}-${n}|`
    let settled = false
    const pending = () => !settled
    r.writes++
    const done = env.cache.set(key, { w: marker }).then(
      () => (settled = true),
      () => {
        settled = true
        r.failedWrites++
      },
    )
    for (let i = 0; i < 10_000 && pending(); i++) {
      const before = env.l1HitsOn(key)
      const got = await env.cache.get<{ w: string }>(key).catch(() => undefined)
      if (!pending()) break
      r.readsWhilePending++
      if (env.l1HitsOn(key) > before && got?.w === marker) {
        r.newValueInL1++
        const inL2 = await raw.getBuffer(l2Key).catch(() => null)
        if (!inL2?.includes(marker)) r.newValueInL1BeforeL2++
      }
      await sleep(1)
    }
    await done
    await sleep(10)
  }
  return r
}

type Hot = { v: number; id: string }

/**
 * `keys` hot keys read through `getOrSet` every ~20 ms. A loader call for a read that
 * L1 had already answered is a background refresh; it is counted against the entry it
 * refreshes (`ctx.staleValue`, each load's value carries an id): refresh-ahead must
 * start one refresh per entry, however many reads pass its refresh point meanwhile.
 */
export async function refreshProbe(env: ProbeEnv, keys: number): Promise<RefreshProbeResult> {
  const perEntry = new Map<string, number>()
  const r: RefreshProbeResult = { background: 0, maxPerEntry: 0 }
  let loads = 0
  for (let round = 0; round < 100_000 && env.running(); round++) {
    for (let h = 0; h < keys; h++) {
      const key = `hot-${h}`
      let answeredFromL1 = false
      const before = env.l1HitsOn(key)
      const read = env.cache.getOrSet<Hot>(key, (ctx) => {
        if (answeredFromL1) {
          r.background++
          const id = `${key}|${ctx.staleValue?.id ?? '?'}`
          const n = (perEntry.get(id) ?? 0) + 1
          perEntry.set(id, n)
          r.maxPerEntry = Math.max(r.maxPerEntry, n)
        }
        return { v: 0, id: `${env.replica}-${++loads}` }
      })
      // L1 answers synchronously; a background refresh's loader runs after its L2 read.
      answeredFromL1 = env.l1HitsOn(key) > before
      await read.catch(() => undefined)
    }
    await sleep(20)
  }
  return r
}
