import type { RepositoryStats } from '@strata/core'
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'

export interface Replica {
  readonly name: string
  readonly port: number
  readonly url: string
  readonly process: ChildProcess
  stop(): Promise<void>
}

export interface ReplicaEnv {
  redisUrl: string
  db: pg.PoolConfig
  schema: string
  traceFile?: string | undefined
  traceConsole?: boolean | undefined
  writeBehind?: boolean | undefined
  warmStart?: number | undefined
}

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url))

/** Starts one replica as its own process on a free port; resolves once it serves. */
export function startReplica(name: string, env: ReplicaEnv): Promise<Replica> {
  const child = fork(SERVER, [], {
    env: {
      ...process.env,
      REPLICA: name,
      PORT: '0',
      REDIS_URL: env.redisUrl,
      DB_CONFIG: JSON.stringify(env.db),
      DB_SCHEMA: env.schema,
      ...(env.traceFile ? { TRACE_FILE: env.traceFile } : {}),
      ...(env.traceConsole ? { TRACE_CONSOLE: '1' } : {}),
      ...(env.writeBehind ? { WRITE_BEHIND: '1' } : {}),
      ...(env.warmStart ? { WARM_START: String(env.warmStart) } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  return new Promise<Replica>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`replica ${name} did not start within 30 s`))
    }, 30_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`replica ${name} exited during startup (code ${String(code)})`))
    })
    child.on('message', (m: { ready?: boolean; port?: number }) => {
      if (!m.ready || m.port === undefined) return
      clearTimeout(timer)
      const port = m.port
      resolve({
        name,
        port,
        url: `http://127.0.0.1:${port}`,
        process: child,
        async stop() {
          process.removeListener('exit', kill)
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM')
            const forced = setTimeout(() => child.kill('SIGKILL'), 5_000)
            await exited
            clearTimeout(forced)
          }
        },
      })
    })
  })
}

export interface ReplicaStats {
  replica: string
  requests: number
  cache: {
    l1: { hits: number; misses: number; entries: number }
    l2: { hits: number; misses: number; errors: number }
    loads: number
    coalesced: number
    staleServed: number
    errors: number
    bus: {
      state: string
      published: number
      received: number
      degradedCount: number
      resyncedCount: number
    }
  }
  /** The products repository: write queue (with --write-behind) and guard. */
  repository?: RepositoryStats
  /** Reads that reached the database. */
  databaseReads?: number
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON shape
export async function getJson<T>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T }
}
