import { fork, type ChildProcess } from 'node:child_process'
import { killOnExit } from './kill-on-exit.js'

export interface ChildHandle {
  readonly process: ChildProcess
  /** Sends a message and resolves with the child's reply carrying the same `id`. */
  request<T = unknown>(message: Record<string, unknown>, timeoutMs?: number): Promise<T>
  /** Kills the child (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>
}

let nextId = 1

/**
 * Forks a Node script as a real child process (its own event loop and connections).
 * Protocol: the parent sends `{ id, ...message }`; the child answers `{ id, result }` or
 * `{ id, error }` through `process.send`.
 */
export function spawnChild(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
  execArgv: string[] = [],
): ChildHandle {
  const child = fork(script, args, {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  killOnExit(child)
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error('[testing] child exited'))
    pending.clear()
  })
  child.on('message', (raw) => {
    const msg = raw as { id?: number; result?: unknown; error?: string }
    if (typeof msg.id !== 'number') return
    const p = pending.get(msg.id)
    if (!p) return
    pending.delete(msg.id)
    if (msg.error !== undefined) p.reject(new Error(msg.error))
    else p.resolve(msg.result)
  })
  return {
    process: child,
    request<T>(message: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
      const id = nextId++
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`[testing] child did not answer ${JSON.stringify(message)}`))
        }, timeoutMs)
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer)
            resolve(v as T)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          },
        })
        child.send({ id, ...message })
      })
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

/**
 * The child side of `spawnChild`: answers each `{ id, cmd, … }` message with what the
 * handler named by `cmd` returns (`true` for nothing), or with its error.
 */
export function serveParent(
  handlers: Record<string, (msg: Record<string, unknown>) => unknown>,
): void {
  process.on('message', (raw) => {
    const msg = raw as { id: number; cmd: string } & Record<string, unknown>
    void (async () => {
      try {
        const handler = handlers[msg.cmd]
        if (!handler) throw new Error(`[testing] unknown command ${JSON.stringify(msg.cmd)}`)
        process.send?.({ id: msg.id, result: (await handler(msg)) ?? true })
      } catch (err) {
        process.send?.({ id: msg.id, error: String((err as Error | undefined)?.stack ?? err) })
      }
    })()
  })
}

/**
 * Starts an HTTP service script as a replica process (`REDIS_URL`, `PORT=0` in its
 * environment) and resolves with its base URL once it sends `{ port }`. The process is
 * added to `into` so the caller can kill it.
 */
export function forkService(
  script: string,
  redisUrl: string,
  into: ChildProcess[],
): Promise<string> {
  const child = fork(script, [], {
    env: { ...process.env, REDIS_URL: redisUrl, PORT: '0' },
    stdio: 'ignore',
  })
  into.push(child)
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(`http://127.0.0.1:${m.port}`))
    child.once('exit', (code) => reject(new Error(`[testing] service exited (${String(code)})`)))
  })
}
