import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { waitFor } from './net.js'
import { spawnRedisServer, type SpawnedRedis } from './redis-server.js'
import { findRedisServerBinary } from './start-redis.js'

const run = promisify(execFile)

export interface RedisClusterHandle {
  /** Seed nodes for `new Cluster(nodes)`. */
  readonly nodes: { host: string; port: number }[]
  stop(): Promise<void>
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port whose cluster-bus twin (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000)
    if (taken.has(port) || taken.has(port + 10_000)) continue
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port
  }
  throw new Error('[testing] no free port pair for a cluster node')
}

/**
 * Starts a local Redis Cluster of `primaries` redis-server processes (no replicas) and
 * waits until every node reports `cluster_state:ok`. Needs `redis-server` and `redis-cli`.
 */
export async function startRedisCluster(primaries = 3): Promise<RedisClusterHandle> {
  const binary = findRedisServerBinary()
  if (!binary) throw new Error('[testing] startRedisCluster needs redis-server on PATH')
  const taken = new Set<number>()
  const servers: SpawnedRedis[] = []
  const ports: number[] = []
  const stop = async () => {
    for (const s of servers) s.child.kill('SIGKILL')
    await Promise.all(servers.map((s) => s.exited))
  }
  try {
    for (let i = 0; i < primaries; i++) {
      const port = await clusterPort(taken)
      taken.add(port).add(port + 10_000)
      const dir = mkdtempSync(join(tmpdir(), 'strata-cluster-'))
      servers.push(
        await spawnRedisServer(binary, port, {
          dir,
          args: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'],
        }),
      )
      ports.push(port)
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    await waitFor(
      async () => {
        for (const port of ports) {
          const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'])
          if (!stdout.includes('cluster_state:ok')) return false
        }
        return true
      },
      20_000,
      'cluster_state:ok on every node',
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop }
}
