import type { ChildProcess } from 'node:child_process'

/** Children still running, killed if this process exits first (one 'exit' listener for all). */
const running = new Set<ChildProcess>()
let hookInstalled = false

/** Kills `child` if this process exits while it still runs (it leaves the set when it exits). */
export function killOnExit(child: ChildProcess): void {
  running.add(child)
  child.once('exit', () => running.delete(child))
  if (hookInstalled) return
  hookInstalled = true
  // 'exit' handlers must be synchronous: a signal is all that can still be sent. SIGCONT
  // first, so a process stopped by a test (a frozen Redis) takes the SIGKILL at once.
  process.on('exit', () => {
    for (const c of running) {
      try {
        c.kill('SIGCONT')
        c.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
  })
}
