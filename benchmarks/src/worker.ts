/**
 * A benchmark child process: hosts contenders that must be isolated (they load
 * @redis/client, which slows msgpackr for the whole process on Node 20), propagation
 * peers, memory measurements (with --expose-gc), and distributed-stampede replicas.
 */
import { createCache } from '@strata/core'
import { redisL2 } from '@strata/l2-redis'
import { Redis } from 'ioredis'
import { contender, type CacheAdapter, type Mode } from './adapters/index.js'
import { sampleObject } from './harness.js'
import { adapterFor, closeAll, runRound, type RoundSpec } from './rounds.js'

let peer: CacheAdapter | undefined
/** Keeps measured objects alive past the measurement. */
export let retained: unknown

const now = () => performance.timeOrigin + performance.now()

type Message =
  | ({ cmd: 'round' } & RoundSpec)
  | { cmd: 'peer'; contender: string; mode: Mode; redisUrl: string; prefix: string }
  | { cmd: 'warm'; key: string }
  | { cmd: 'warmMany'; keys: string[] }
  | { cmd: 'watch'; key: string; expected: number; maxMs: number }
  | { cmd: 'memory'; contender: string; entries: number; redisUrl: string }
  | {
      cmd: 'stampede'
      redisUrl: string
      prefix: string
      key: string
      callers: number
      loaderMs: number
    }
  | { cmd: 'close' }

const handlers: { [K in Message['cmd']]: (m: Extract<Message, { cmd: K }>) => Promise<unknown> } = {
  round: (m) => runRound(m),
  async peer(m) {
    peer = await adapterFor(m.contender, m.mode, m.redisUrl, m.prefix)
    await peer.ready?.()
    return true
  },
  async warm(m) {
    return (await peer?.get(m.key)) ?? null
  },
  async warmMany(m) {
    for (const k of m.keys) await peer?.get(k)
    return m.keys.length
  },
  /** Polls get() until it returns the expected value; answers the wall-clock time it did. */
  async watch(m) {
    const p = peer as CacheAdapter
    const deadline = Date.now() + m.maxMs
    for (let i = 0; i < 10_000_000 && Date.now() < deadline; i++) {
      const v = (await p.get(m.key)) as { n?: number } | undefined
      if (v?.n === m.expected) return now()
      await new Promise((r) => setImmediate(r))
    }
    return null
  },
  /** Heap bytes per entry: the cache, its key and a fresh ~300-byte value, all allocated inside the measurement. */
  async memory(m) {
    const gc = (globalThis as { gc?: () => void }).gc
    if (!gc) throw new Error('memory needs --expose-gc')
    const settle = () => {
      for (let i = 0; i < 4; i++) gc()
    }
    settle()
    const used = () => {
      const u = process.memoryUsage()
      return u.heapUsed + u.arrayBuffers
    }
    const before = used()
    let set: (k: string, v: unknown) => unknown
    let adapter: CacheAdapter | undefined
    let keep: unknown
    if (m.contender === 'lru-cache') {
      const { LRUCache } = await import('lru-cache')
      const lru = new LRUCache<string, object>({ max: m.entries, ttl: 3_600_000 })
      keep = lru
      set = (k, v) => lru.set(k, v as object)
    } else {
      const factory = await contender(m.contender).load()
      adapter = await factory({
        mode: 'l1',
        redisUrl: m.redisUrl,
        prefix: 'mem',
        maxEntries: m.entries,
      })
      set = (k, v) => adapter?.set(k, v)
    }
    for (let i = 0; i < m.entries; i++)
      await set(`key:${String(i).padStart(7, '0')}`, sampleObject(i))
    settle()
    const after = used()
    retained = keep // the cache must stay reachable until after the second measurement
    await adapter?.close()
    return (after - before) / m.entries
  },
  /** One replica of the distributed stampede: `callers` concurrent getOrSet of one cold key. */
  async stampede(m) {
    const counter = new Redis(m.redisUrl)
    const cache = createCache({
      prefix: m.prefix,
      l2: redisL2({ redis: m.redisUrl, commandTimeout: 5_000 }),
      distributedLock: true,
      lockTtl: 5_000,
      telemetry: false,
    })
    const loader = async () => {
      await counter.incr(`${m.prefix}:loads`)
      await new Promise((r) => setTimeout(r, m.loaderMs))
      return 'v'
    }
    const start = now()
    await Promise.all(Array.from({ length: m.callers }, () => cache.getOrSet(m.key, loader)))
    const end = now()
    await cache.close()
    counter.disconnect()
    return { start, end }
  },
  async close() {
    await closeAll()
    setImmediate(() => process.exit(0))
    return true
  },
}

process.on('message', (raw) => {
  const m = raw as Message & { id: number }
  const handler = handlers[m.cmd] as (x: typeof m) => Promise<unknown>
  handler(m).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: unknown) => process.send?.({ id: m.id, error: String((err as Error).stack ?? err) }),
  )
})
