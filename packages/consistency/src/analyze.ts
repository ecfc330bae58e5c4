/** A read as a replica logged it: key, the version it returned, when it started (ms, fractional), which API. */
export type ReadRecord = [key: string, version: number, start: number, op: string]
/** An acknowledged write: key, the source version it made current, when the cache call returned, which API. */
export type WriteRecord = [key: string, version: number, commit: number, op: string]

/** One stale read with the write it missed (for the report's worst cases). */
export interface StaleRead {
  key: string
  read: string
  missedWrite: string
  stalenessMs: number
}

export interface Figures {
  reads: number
  writes: number
  staleReads: number
  /** staleReads / reads */
  staleRate: number
  /** Over stale reads: read start − commit of the newest acknowledged write it missed (ms). */
  staleness: { p50: number; p99: number; max: number }
  /** Share of writes after whose commit no read started more than 50 ms / 1 s later missed them. */
  consistentWithin50ms: number
  consistentWithin1s: number
  /** The five stalest reads. */
  worst: StaleRead[]
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

/**
 * Compares every read with every acknowledged write of its key. A read is stale when a
 * write of a newer version was acknowledged before the read started; its staleness is
 * the time from that newest missed write's commit to the read's start. A write is
 * consistent within Δ when no read starting later than commit + Δ missed it.
 */
export function analyze(reads: readonly ReadRecord[], writes: readonly WriteRecord[]): Figures {
  type W = { version: number; commit: number; lag: number; op: string }
  const byKey = new Map<string, W[]>()
  for (const [key, version, commit, op] of writes) {
    let list = byKey.get(key)
    if (!list) byKey.set(key, (list = []))
    list.push({ version, commit, lag: 0, op })
  }
  for (const list of byKey.values()) list.sort((a, b) => a.version - b.version)
  const staleness: number[] = []
  const worst: StaleRead[] = []
  for (const [key, version, start, op] of reads) {
    const list = byKey.get(key)
    if (!list) continue
    let newest: W | undefined
    for (let i = list.length - 1; i >= 0; i--) {
      const w = list[i] as W
      if (w.version <= version) break
      if (w.commit >= start) continue
      newest ??= w
      w.lag = Math.max(w.lag, start - w.commit)
    }
    if (newest) {
      const ms = start - newest.commit
      staleness.push(ms)
      worst.push({
        key,
        read: `${op} → v${version}`,
        missedWrite: `${newest.op} v${newest.version}`,
        stalenessMs: ms,
      })
    }
  }
  worst.sort((a, b) => b.stalenessMs - a.stalenessMs)
  staleness.sort((a, b) => a - b)
  const lags = [...byKey.values()].flat().map((w) => w.lag)
  const share = (ms: number) =>
    lags.length === 0 ? 1 : lags.filter((l) => l <= ms).length / lags.length
  return {
    reads: reads.length,
    writes: writes.length,
    staleReads: staleness.length,
    staleRate: reads.length === 0 ? 0 : staleness.length / reads.length,
    staleness: {
      p50: percentile(staleness, 50),
      p99: percentile(staleness, 99),
      max: staleness.at(-1) ?? 0,
    },
    consistentWithin50ms: share(50),
    consistentWithin1s: share(1_000),
    worst: worst.slice(0, 5),
  }
}
