/** Measurement rounds that run against any adapter, in this process or in a worker. */
import { contender, type CacheAdapter, type Mode } from './adapters/index.js'
import {
  concurrentThroughput,
  latencies,
  percentile,
  sampleObject,
  throughput,
  zipf,
} from './harness.js'

const instances = new Map<string, CacheAdapter>()

export async function adapterFor(
  id: string,
  mode: Mode,
  redisUrl: string,
  prefix: string,
  maxEntries?: number,
): Promise<CacheAdapter> {
  const key = `${id}/${mode}/${prefix}/${String(maxEntries)}`
  let a = instances.get(key)
  if (!a) {
    const factory = await contender(id).load()
    a = await factory({ mode, redisUrl, prefix, ...(maxEntries ? { maxEntries } : {}) })
    instances.set(key, a)
  }
  return a
}

export async function closeAll(): Promise<void> {
  await Promise.allSettled([...instances.values()].map((a) => a.close()))
  instances.clear()
}

export type Round =
  | { kind: 'l1-hit'; op: 'get' | 'getOrSet'; ms: number }
  | { kind: 'l2-hit'; sequential: number; inFlight: number; ms: number }
  | { kind: 'hit-ratio'; s: number; keys: number; requests: number }

export interface RoundSpec {
  contender: string
  mode: Mode
  redisUrl: string
  prefix: string
  maxEntries?: number
  round: Round
}

const value = sampleObject(1)

export async function runRound(spec: RoundSpec): Promise<unknown> {
  const a = await adapterFor(spec.contender, spec.mode, spec.redisUrl, spec.prefix, spec.maxEntries)
  const r = spec.round
  switch (r.kind) {
    case 'l1-hit': {
      const load = () => Promise.resolve(value)
      await a.getOrSet('hot', load)
      if (r.op === 'get') {
        if ((await a.get('hot')) === undefined) throw new Error(`${a.name}: hot key not cached`)
        return throughput(() => a.get('hot'), r.ms)
      }
      return throughput(() => a.getOrSet('hot', load), r.ms)
    }
    case 'l2-hit': {
      const keys = Array.from({ length: 256 }, (_, i) => `l2k${i}`)
      for (const k of keys) await a.set(k, value)
      const lat = await latencies((i) => a.get(keys[i % keys.length] as string), r.sequential)
      const tput = await concurrentThroughput(
        (i) => a.get(keys[i % keys.length] as string),
        r.inFlight,
        r.ms,
      )
      return { p50: percentile(lat, 50), p99: percentile(lat, 99), tput }
    }
    case 'hit-ratio': {
      const next = zipf(r.keys, r.s, 7)
      let loads = 0
      const load = () => {
        loads++
        return Promise.resolve(value)
      }
      for (let i = 0; i < r.requests; i++) await a.getOrSet(`z${String(next())}`, load)
      return 1 - loads / r.requests
    }
  }
}
