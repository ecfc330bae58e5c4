import type * as TcRedis from '@testcontainers/redis'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { findFreePort } from './net.js'
import { spawnRedisServer, sweepStaleServers, type SpawnedRedis } from './redis-server.js'

type RedisModule = typeof TcRedis

export type RedisSource = 'url' | 'binary' | 'container'

export interface RedisHandle {
  readonly url: string
  readonly host: string
  readonly port: number
  /** Where this Redis came from: `REDIS_URL`, a local `redis-server`, or a container. */
  readonly source: RedisSource
  /** Graceful stop (SIGTERM). Idempotent. */
  stop(): Promise<void>
  /** Hard kill (SIGKILL), like a crash. `restart()` brings it back. */
  kill(): Promise<void>
  /** Suspends the server (SIGSTOP): connections stay open, nothing answers. */
  freeze(): Promise<void>
  /** Resumes a frozen server (SIGCONT). */
  thaw(): Promise<void>
  /**
   * Kills the server (SIGKILL) and starts a new one on the same port: empty, or with
   * `keepData` reading what it persisted (start it with `--appendonly yes` to have any).
   */
  restart(options?: { keepData?: boolean }): Promise<void>
}

export interface StartRedisOptions {
  /** Force a source instead of the default order (`REDIS_URL` → binary → container). */
  source?: RedisSource
  /** Extra `redis-server` arguments (binary source only). */
  args?: string[]
}

const HOW_TO_GET_REDIS =
  '[testing] no Redis available. Set REDIS_URL=redis://host:port, or install redis-server ' +
  '(Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`), or run a ' +
  'container runtime (Docker/Podman) so testcontainers can start one.'

export function findRedisServerBinary(): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat(['/usr/bin', '/usr/sbin'])
  for (const dir of dirs) {
    if (!dir) continue
    const candidate = join(dir, 'redis-server')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // keep looking
    }
  }
  return undefined
}

let swept = false

/**
 * Starts (or connects to) a Redis for a test file or suite.
 *
 * Order: `REDIS_URL` → a `redis-server` on PATH on a free loopback port (no persistence,
 * `--enable-debug-command local`) → testcontainers when a container runtime answers →
 * an error that says how to get Redis. The harness never touches a Redis it did not
 * start, except the one `REDIS_URL` names (and then fault injection is refused).
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisHandle> {
  if (!swept) {
    swept = true
    sweepStaleServers()
  }
  const url = process.env['REDIS_URL']
  const source = options.source ?? (url ? 'url' : undefined)
  if (source === 'url') {
    if (!url) throw new Error('[testing] source "url" requested but REDIS_URL is not set')
    return fromUrl(url)
  }
  const binary = findRedisServerBinary()
  if (source === 'binary' || (source === undefined && binary)) {
    if (!binary) throw new Error(HOW_TO_GET_REDIS)
    return fromBinary(binary, options.args ?? [])
  }
  const container = await fromContainer()
  if (container) return container
  throw new Error(HOW_TO_GET_REDIS)
}

function notWithUrl(method: string): () => Promise<never> {
  return () =>
    Promise.reject(
      new Error(
        `[testing] ${method}() is not available with REDIS_URL: the harness only injects faults into servers it started`,
      ),
    )
}

function fromUrl(url: string): RedisHandle {
  const parsed = new URL(url)
  return {
    url,
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    source: 'url',
    stop: () => Promise.resolve(),
    kill: notWithUrl('kill'),
    freeze: notWithUrl('freeze'),
    thaw: notWithUrl('thaw'),
    restart: notWithUrl('restart'),
  }
}

async function fromBinary(binary: string, args: string[]): Promise<RedisHandle> {
  let server: SpawnedRedis | undefined
  let port = 0
  let lastError: unknown
  let dir = freshDir()
  // The free port can be taken between the probe and the bind; retry a few times.
  for (let attempt = 0; attempt < 5 && !server; attempt++) {
    port = await findFreePort()
    try {
      server = await spawnRedisServer(binary, port, { args, dir })
    } catch (err) {
      lastError = err
    }
  }
  if (!server) throw lastError
  let current: SpawnedRedis | undefined = server
  let frozen = false

  const signal = async (sig: NodeJS.Signals) => {
    const proc = current
    if (!proc) return
    if (frozen) proc.child.kill('SIGCONT')
    frozen = false
    proc.child.kill(sig)
    await proc.exited
    current = undefined
  }
  const running = (method: string): SpawnedRedis => {
    if (!current) throw new Error(`[testing] ${method}(): the server is not running`)
    return current
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    source: 'binary',
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    freeze: async () => {
      running('freeze').child.kill('SIGSTOP')
      frozen = true
    },
    thaw: async () => {
      running('thaw').child.kill('SIGCONT')
      frozen = false
    },
    restart: async (options?: { keepData?: boolean }) => {
      await signal('SIGKILL')
      if (!options?.keepData) {
        rmSync(dir, { recursive: true, force: true })
        dir = freshDir()
      }
      current = await spawnRedisServer(binary, port, { args, dir })
    },
  }
}

function freshDir(): string {
  return mkdtempSync(join(tmpdir(), 'strata-redis-'))
}

async function fromContainer(): Promise<RedisHandle | undefined> {
  let mod: RedisModule
  try {
    mod = await import('@testcontainers/redis')
    const { getContainerRuntimeClient } = await import('testcontainers')
    await getContainerRuntimeClient()
  } catch {
    return undefined
  }
  let container = await new mod.RedisContainer('redis:7.0').start()
  const unsupported = (method: string) => () =>
    Promise.reject(new Error(`[testing] ${method}() is not supported with testcontainers`))
  const handle = {
    get url() {
      return container.getConnectionUrl()
    },
    get host() {
      return container.getHost()
    },
    get port() {
      return container.getPort()
    },
    source: 'container' as const,
    stop: async () => {
      await container.stop()
    },
    kill: async () => {
      await container.stop({ timeout: 0 })
    },
    freeze: unsupported('freeze'),
    thaw: unsupported('thaw'),
    restart: async () => {
      await container.stop({ timeout: 0 })
      container = await new mod.RedisContainer('redis:7.0').start()
    },
  }
  return handle
}
