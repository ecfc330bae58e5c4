import { setTimeout as sleep } from 'node:timers/promises'
import {
  startRedis,
  startSentinelGroup,
  startTcpProxy,
  type ChildHandle,
  type RedisHandle,
  type SentinelGroupHandle,
  type TcpProxyHandle,
} from '@strata/testing'
import { channelName, encodeMessage } from '@strata/bus-redis-pubsub'
import { jsonCodecReadingMsgpack, msgpackCodec, MSGPACK_V1 } from '@strata/l2-redis'
import { Redis } from 'ioredis'
import { droppedBy, expectedDrops, forgeBusTraffic, type ForgedSent } from './forged.js'

/** The workload's keyspace (replicas and faults agree on it). */
export const KEYS = { rootKeys: 200, taggedKeys: 100, tagGroups: 10 }

/**
 * The cache's Redis for one scenario, started here (faults go only to servers the
 * harness started): one redis-server, or for `sentinel-failover` a primary, a replica and
 * three sentinels. `env` tells replica processes how to connect.
 */
export interface CacheTarget {
  env: Record<string, string>
  /** The current primary, for admin commands. */
  url(): Promise<string>
  server: RedisHandle | undefined
  sentinel: SentinelGroupHandle | undefined
  /** `subscriber-blackholed`: the proxy the replicas' bus connects through. */
  proxy: TcpProxyHandle | undefined
  stop(): Promise<void>
}

export async function startTarget(scenario: string): Promise<CacheTarget> {
  if (scenario === 'sentinel-failover') {
    const group = await startSentinelGroup({ downAfterMs: 1_000 })
    return {
      env: { CACHE_SENTINELS: JSON.stringify({ name: group.name, sentinels: group.sentinels }) },
      url: async () => `redis://127.0.0.1:${await group.primaryPort()}`,
      server: undefined,
      sentinel: group,
      proxy: undefined,
      stop: () => group.stop(),
    }
  }
  const server = await startRedis({
    source: 'binary',
    ...(scenario === 'redis-evicts'
      ? { args: ['--maxmemory', '8mb', '--maxmemory-policy', 'allkeys-lru'] }
      : {}),
  })
  if (scenario === 'slow-subscriber')
    await withAdmin(server.url, (a) =>
      a.call('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 4mb 2mb 1'),
    )
  // The bus (both its connections) through a proxy that can black-hole the subscriber.
  const proxy = scenario === 'subscriber-blackholed' ? await startTcpProxy(server.port) : undefined
  return {
    env: { CACHE_REDIS_URL: server.url, ...(proxy ? { CACHE_BUS_URL: proxy.url } : {}) },
    url: () => Promise.resolve(server.url),
    server,
    sentinel: undefined,
    proxy,
    stop: async () => {
      await proxy?.close()
      await server.stop()
    },
  }
}

export async function withAdmin<T>(url: string, fn: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis(url)
  try {
    return await fn(admin)
  } finally {
    admin.disconnect()
  }
}

/** `slow-subscriber`'s flood: 400 messages of ~40 KB (16 MB), in paced bursts. */
const FLOOD = { keys: 80, keyBytes: 480, bursts: 20, perBurst: 20, pauseMs: 60 }

/** msgpack behind the entry format byte: the bytes reach msgpackr, not just the format check. */
const asEntry = (body: number[] | Buffer) =>
  Buffer.concat([Buffer.from([MSGPACK_V1]), Buffer.from(body)])

/** Bytes no codec wrote, for `hostile-bytes`. */
const HOSTILE = [
  () => Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256))),
  // A string, an array and a map claiming 4 GiB.
  () => asEntry([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]),
  () => asEntry([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
  () => asEntry([0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01]),
  // 100 000 levels of nested one-element arrays.
  () => asEntry(Buffer.alloc(100_000, 0x91)),
  // Extensions: an unknown type, a timestamp, msgpackr's record and bigint types.
  () => asEntry([0xd4, 0x05, 0x00]),
  () => asEntry([0xd6, 0xff, 0xff, 0xff, 0xff, 0xff]),
  () => asEntry([0xd4, 0x72, 0x40]),
  () => asEntry([0xd4, 0x42, 0x00]),
  // Random bytes behind a valid format byte.
  () => asEntry(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256))),
]

/** The longest decode of any hostile payload by either codec a replica runs (ms). */
function hostileDecodeMaxMs(): number {
  let worst = 0
  for (const codec of [msgpackCodec(), jsonCodecReadingMsgpack()])
    for (const make of HOSTILE) {
      const bytes = make()
      const t = performance.now()
      try {
        codec.decode(bytes)
      } catch {
        // Refused, as it must be (the replicas count it as a corrupt entry).
      }
      worst = Math.max(worst, performance.now() - t)
    }
  return worst
}

/** What a fault measured: the failover's recovery time, what was forged on the bus, decode time. */
export interface FaultOutcome {
  recoveryMs?: number
  forged?: ForgedSent
  decodeMaxMs?: number
  /** `slow-subscriber`: subscriber connections Redis closed during the flood. */
  subscribersDropped?: number
}

/** The workload's keys as the cache names them (root keys, then the `ns` namespace's). */
const workloadKeys = [
  ...Array.from({ length: KEYS.rootKeys }, (_, i) => `k${i}`),
  ...Array.from({ length: KEYS.taggedKeys }, (_, i) => `ns:t${i}`),
]

/** Injects one fault of `scenario`; resolves what it measured, if anything. */
export async function fault(
  scenario: string,
  target: CacheTarget,
  prefix: string,
  children: readonly ChildHandle[],
  floodMessages = 20_000,
): Promise<FaultOutcome> {
  const server = target.server as RedisHandle
  const url = await target.url()
  switch (scenario) {
    case 'sentinel-failover': {
      const group = target.sentinel as SentinelGroupHandle
      const old = await group.primaryPort()
      const killed = Date.now()
      await group.killPrimary()
      await group.failedOver(old, 30_000)
      return { recoveryMs: Date.now() - killed }
    }
    case 'forged-bus': {
      const forged = await forgeBusTraffic(
        url,
        prefix,
        workloadKeys,
        floodMessages,
        100_000,
        async (sent) => {
          // Every replica has dropped the whole burst (bounded wait), then the canaries.
          for (let i = 0; i < 100; i++) {
            const stats = await Promise.all(
              children.map((c) =>
                c.request<{ rejected: Record<string, number> }>({ cmd: 'stats' }),
              ),
            )
            const dropped = droppedBy(stats.map((st) => st.rejected))
            const total = Object.values(dropped).reduce((a, b) => a + b, 0)
            if (total >= expectedDrops(sent, children.length)) break
            await sleep(50)
          }
          const hits = await Promise.all(
            children.map((c) => c.request<number>({ cmd: 'canary', op: 'warm' })),
          )
          return hits.reduce((a, b) => a + b, 0)
        },
      )
      return { forged }
    }
    case 'slow-subscriber': {
      // Loopback socket buffers hold megabytes: only a flood overflows a stalled reader.
      // Paced (20 bursts over ~1.2 s) and made of long keys, so that replicas that read
      // keep up with it and only the stalled one overflows its output buffer.
      const subscribers = () =>
        withAdmin(url, (a) => a.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).then((list) =>
          [...String(list).matchAll(/id=(\d+)/g)].map((m) => m[1] as string),
        )
      const before = await subscribers()
      const blocked = (children[0] as ChildHandle).request({ cmd: 'block', ms: 2_000 }, 10_000)
      await sleep(200)
      await withAdmin(url, async (a) => {
        const keys = Array.from(
          { length: FLOOD.keys },
          (_, i) => `${prefix}::flood-${i}-${'x'.repeat(FLOOD.keyBytes)}`,
        )
        let seq = 0
        for (let burst = 0; burst < FLOOD.bursts; burst++) {
          const p = a.pipeline()
          for (let m = 0; m < FLOOD.perBurst; m++)
            p.publish(
              channelName(prefix),
              encodeMessage({
                op: 'delete',
                source: 'chaos-flood',
                seq: ++seq,
                ts: Date.now(),
                keys,
              }),
            )
          await p.exec()
          await sleep(FLOOD.pauseMs)
        }
      })
      await blocked
      const after = new Set(await subscribers())
      return { subscribersDropped: before.filter((id) => !after.has(id)).length }
    }
    case 'writes-paused':
      await withAdmin(url, (a) => a.call('CLIENT', 'PAUSE', '1500', 'WRITE'))
      await sleep(1_500)
      return {}
    case 'redis-evicts':
      await withAdmin(url, async (a) => {
        const filler = Buffer.alloc(64 * 1024, 0x78)
        const p = a.pipeline()
        for (let i = 0; i < 192; i++) p.set(`filler:${Math.random()}`, filler)
        await p.exec()
      })
      return {}
    case 'hostile-bytes':
      await withAdmin(url, async (a) => {
        const p = a.pipeline()
        const hostile = (i: number) => (HOSTILE[i % HOSTILE.length] as () => Buffer)()
        for (let i = 0; i < KEYS.rootKeys; i += 3)
          p.set(`{${prefix}::k${i}}`, hostile(i / 3), 'PX', 60_000)
        for (let i = 0; i < KEYS.taggedKeys; i += 3)
          p.set(`{${prefix}:ns:t${i}}`, hostile(i / 3), 'PX', 60_000)
        await p.exec()
      })
      return { decodeMaxMs: hostileDecodeMaxMs() }
    case 'pubsub-killed':
      await withAdmin(url, (a) => a.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
      return {}
    case 'refresh-ahead-outage':
      await server.kill()
      await sleep(10_000)
      await server.restart()
      return {}
    case 'redis-restarted-empty':
      await server.restart()
      return {}
    case 'subscriber-blackholed':
      await (target.proxy as TcpProxyHandle).blackhole('subscribers', 1_500)
      return {}
    case 'redis-frozen':
      await server.freeze()
      await sleep(1_500)
      await server.thaw()
      return {}
    default:
      return {}
  }
}
