/** Measurement rounds that run against any adapter, in this process or in a worker. */
import { Redis } from 'ioredis'
import { contender, type CacheAdapter, type Mode } from './adapters/index.js'
import { decode, encode } from './adapters/raw.js'
import { concurrentThroughput, percentile, sampleObject, throughput, zipf } from './harness.js'

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
  | { kind: 'hit-ratio'; s: number; keys: number; requests: number; scan?: number }

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
      // Sequential latency is paired call by call with a raw ioredis GET + msgpackr decode on
      // its own connection in the same process: on a 2-core machine, running one contender
      // for thousands of calls and then the other measures CPU placement, not the library.
      const raw = new Redis(spec.redisUrl)
      const rawKeys = keys.map((k) => `rawl2:${k}`)
      for (const k of rawKeys)
        await raw.set(
          k,
          encode({ value, createdAt: 0, freshUntil: 0, staleUntil: 0, tags: [], version: 1 }),
        )
      const lat: number[] = []
      const rawLat: number[] = []
      for (let i = 0; i < r.sequential; i++) {
        let t = performance.now()
        decode((await raw.getBuffer(rawKeys[i % 256] as string)) as Buffer)
        rawLat.push(performance.now() - t)
        t = performance.now()
        await a.get(keys[i % keys.length] as string)
        lat.push(performance.now() - t)
      }
      raw.disconnect()
      const tput = await concurrentThroughput(
        (i) => a.get(keys[i % keys.length] as string),
        r.inFlight,
        r.ms,
      )
      const load = () => Promise.resolve(value)
      const tputGetOrSet = await concurrentThroughput(
        (i) => a.getOrSet(keys[i % keys.length] as string, load),
        r.inFlight,
        r.ms,
      )
      return {
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        rawP50: percentile(rawLat, 50),
        rawP99: percentile(rawLat, 99),
        tput,
        tputGetOrSet,
      }
    }
    case 'hit-ratio': {
      const next = zipf(r.keys, r.s, 7)
      let loads = 0
      const load = () => {
        loads++
        return Promise.resolve(value)
      }
      // With `scan`, that share of requests are one-off keys (a scan), the rest Zipf.
      let scanned = 0
      let state = 11
      const random = () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32
      for (let i = 0; i < r.requests; i++) {
        const key = r.scan && random() < r.scan ? `scan${scanned++}` : `z${String(next())}`
        await a.getOrSet(key, load)
      }
      return 1 - loads / r.requests
    }
  }
}
