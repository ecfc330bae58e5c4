import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { findFreePort, waitFor } from './net.js'
import { spawnRedisServer, type SpawnedRedis } from './redis-server.js'
import { findRedisServerBinary } from './start-redis.js'

export interface SentinelGroupHandle {
  /** The monitored primary's name (ioredis `name`). */
  readonly name: string
  /** Where the sentinels listen (ioredis `sentinels`). */
  readonly sentinels: { host: string; port: number }[]
  /** The current primary's port, as the first sentinel reports it. */
  primaryPort(): Promise<number>
  /** SIGKILLs the current primary (a crash); the sentinels promote the replica. */
  killPrimary(): Promise<void>
  /** Resolves once the sentinels report a primary other than `oldPort` (bounded). */
  failedOver(oldPort: number, timeoutMs: number): Promise<number>
  stop(): Promise<void>
}

/**
 * A primary, one replica and `sentinels` Sentinel processes (the same `redis-server`
 * binary with `--sentinel`), all on free loopback ports, all started and owned here.
 */
export async function startSentinelGroup(
  options: { sentinels?: number; downAfterMs?: number } = {},
): Promise<SentinelGroupHandle> {
  const binary = findRedisServerBinary()
  if (!binary) throw new Error('[testing] startSentinelGroup needs redis-server on PATH')
  const name = 'strata-primary'
  const servers = new Map<number, SpawnedRedis>()
  const start = async (port: number, opts: Parameters<typeof spawnRedisServer>[2]) => {
    servers.set(port, await spawnRedisServer(binary, port, opts))
  }
  const stop = async () => {
    const children: ChildProcess[] = [...servers.values()].map((s) => s.child)
    for (const c of children) c.kill('SIGKILL')
    await Promise.all([...servers.values()].map((s) => s.exited))
  }
  try {
    const primary = await findFreePort()
    await start(primary, {})
    const replica = await findFreePort()
    await start(replica, { args: ['--replicaof', '127.0.0.1', String(primary)] })
    const r = new Redis({ port: replica, host: '127.0.0.1', lazyConnect: true })
    try {
      await waitFor(
        async () => /master_link_status:up/.test(await r.info('replication')),
        10_000,
        'the replica in sync',
      )
    } finally {
      r.disconnect()
    }
    const sentinels: { host: string; port: number }[] = []
    for (let i = 0; i < (options.sentinels ?? 3); i++) {
      const port = await findFreePort()
      const dir = mkdtempSync(join(tmpdir(), 'strata-sentinel-'))
      const config = join(dir, 'sentinel.conf')
      writeFileSync(
        config,
        [
          `sentinel monitor ${name} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      )
      await start(port, { config, dir, args: ['--sentinel'] })
      sentinels.push({ host: '127.0.0.1', port })
    }
    const ask = async (): Promise<number> => {
      const s = new Redis({
        ...(sentinels[0] as { host: string; port: number }),
        lazyConnect: true,
      })
      try {
        const addr = (await s.call('SENTINEL', 'get-master-addr-by-name', name)) as string[]
        return Number(addr[1])
      } finally {
        s.disconnect()
      }
    }
    return {
      name,
      sentinels,
      primaryPort: ask,
      async killPrimary() {
        const port = await ask()
        servers.get(port)?.child.kill('SIGKILL')
      },
      async failedOver(oldPort, timeoutMs) {
        let now = oldPort
        await waitFor(
          async () => (now = await ask().catch(() => oldPort)) !== oldPort,
          timeoutMs,
          'the sentinels to promote the replica',
        )
        return now
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
