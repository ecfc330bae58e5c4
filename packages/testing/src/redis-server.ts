import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { killOnExit } from './kill-on-exit.js'
import { findFreePort, ping, waitFor } from './net.js'

/** Where the harness records the servers it started, so a later run can sweep leftovers. */
const PID_DIR = join(tmpdir(), 'strata-redis-harness')

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

/**
 * Kills redis-servers recorded by harness runs whose owner process has died (for example
 * a test run stopped with SIGKILL, where no exit hook runs). Servers of live runs and any
 * Redis the harness did not start are left alone: a record names both pids and the port.
 */
export function sweepStaleServers(): number {
  let swept = 0
  let files: string[]
  try {
    files = readdirSync(PID_DIR)
  } catch {
    return 0
  }
  for (const file of files) {
    const path = join(PID_DIR, file)
    try {
      const rec = JSON.parse(readFileSync(path, 'utf8')) as {
        owner: number
        pid: number
        port: number
      }
      if (isAlive(rec.owner)) continue
      if (isAlive(rec.pid) && commandLineOf(rec.pid).includes(`:${rec.port}`)) {
        process.kill(rec.pid, 'SIGCONT')
        process.kill(rec.pid, 'SIGKILL')
        swept++
      }
      rmSync(path, { force: true })
    } catch {
      rmSync(path, { force: true })
    }
  }
  return swept
}

export interface SpawnedRedis {
  readonly child: ChildProcess
  readonly exited: Promise<void>
}

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`. */
  args?: string[]
  /** Working directory for the server (cluster nodes need their own). */
  dir?: string
  /** A config file, passed first (Sentinel needs one it can rewrite). */
  config?: string
}

/** Starts `redis-server` on a loopback port; resolves once it answers PING. */
export async function spawnRedisServer(
  binary: string,
  port: number,
  options: RedisServerOptions = {},
): Promise<SpawnedRedis> {
  mkdirSync(PID_DIR, { recursive: true })
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'strata-redis-'))
  const args = [
    ...(options.config ? [options.config] : []),
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    '--enable-debug-command',
    'local',
    '--dir',
    dir,
    '--loglevel',
    'warning',
    ...(options.args ?? []),
  ]
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  killOnExit(child)
  void exited.then(() => {
    rmSync(join(PID_DIR, `${child.pid}.json`), { force: true })
  })
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject))
  if (child.pid === undefined) await spawnError
  const pid = child.pid as number
  writeFileSync(join(PID_DIR, `${pid}.json`), JSON.stringify({ owner: process.pid, pid, port }))
  watchOwner(pid, port)
  try {
    await Promise.race([
      waitFor(() => ping('127.0.0.1', port), 10_000, `redis-server on port ${port}`),
      spawnError,
      exited.then(() => {
        throw new Error(`[testing] redis-server exited during startup: ${stderr.trim()}`)
      }),
    ])
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return { child, exited }
}

/**
 * A detached shell that kills the server once this process is gone, whatever the cause
 * (SIGKILL of a vitest worker included). It costs one `sh` and one `sleep` per second.
 */
function watchOwner(serverPid: number, port: number): void {
  // Check the pid still names our server before signalling: pids are reused.
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; if tr '\\0' ' ' < /proc/${serverPid}/cmdline 2>/dev/null | grep -q ':${port}'; then kill -CONT ${serverPid}; kill -KILL ${serverPid}; fi`
  const watcher = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' })
  watcher.unref()
}

export async function freePort(): Promise<number> {
  return findFreePort()
}
