/** A scenario's report as one line of figures, and its pass criteria. */
import { forgedFailures, forgedLine } from './forged.js'
import { CALL_BOUNDS } from './protocol.js'
import { hardTimeout, SCENARIOS, type Report } from './run.js'

/** One line of figures for a report. */
export function summary(r: Report): string {
  const f = r.figures
  const pct = (x: number) => `${(x * 100).toFixed(3)}%`
  return (
    `${r.scenario.padEnd(22)} ops ${r.ops} (${f.reads} reads, ${f.writes} acked writes, ${r.failedWrites} failed) in ${r.loadMs} ms · ` +
    `stale reads ${f.staleReads} (${pct(f.staleRate)}) · staleness p50 ${f.staleness.p50.toFixed(1)} / p99 ${f.staleness.p99.toFixed(1)} / max ${f.staleness.max.toFixed(1)} ms · ` +
    `writes consistent ≤50 ms ${pct(f.consistentWithin50ms)}, ≤1 s ${pct(f.consistentWithin1s)} · permanently stale ${r.permanentlyStale.length} · ` +
    `bus degraded ${r.degraded}× / resynced ${r.resynced}× · read errors ${r.readErrors} · corrupt entries ${r.corrupt} · evicted keys ${r.evictedKeys}${r.recoveryMs === undefined ? '' : ` · failover ${r.recoveryMs} ms`} · L1 hit p99 ${r.l1HitP99Ms.toFixed(2)} ms · read p99 ${r.readP99Ms.toFixed(1)} ms (by replica ${r.readP99ByReplica.map((x) => x.toFixed(0)).join('/')})${r.detectMs === undefined ? '' : ` · every bus degraded ${r.detectMs} ms after the fault`} · RSS growth ${r.rssGrowthMb.toFixed(1)} MB, live heap ${r.heapGrowthMb.toFixed(1)} MB, Redis memory growth ${r.redisMemoryGrowthMb.toFixed(1)} MB · longest read ${r.readMaxMs.toFixed(0)} ms, write ${r.writeMaxMs.toFixed(0)} ms${probeLine(r)}${forgedLine(r.forged)}`
  )
}

/** The scenario's own probe figures, for its summary line. */
function probeLine(r: Report): string {
  const w = r.writeProbe
  const rp = r.refreshProbe
  return (
    (w
      ? ` · write probe: ${w.writes} writes (${w.failedWrites} failed), ${w.readsWhilePending} reads while one was in flight, ${w.newValueInL1} found it in L1, ${w.newValueInL1BeforeL2} before L2 held it`
      : '') +
    (rp
      ? ` · ${rp.background} background refreshes of hot keys, at most ${rp.maxPerEntry} per entry`
      : '') +
    (r.subscribersDropped === undefined
      ? ''
      : ` · Redis dropped ${r.subscribersDropped} subscriber(s); bus degradations by replica ${r.degradedByReplica.map((d) => d.length).join('/')}`) +
    (r.hostileDecodeMaxMs === undefined
      ? ''
      : ` · longest hostile decode ${r.hostileDecodeMaxMs.toFixed(2)} ms`)
  )
}

/**
 * The pass criteria: no permanently stale key anywhere; healthy: staleness p99 ≤ 10 ms
 * and ≥ 99.99% of writes consistent within 50 ms; with faults: every write consistent
 * within 1 s. Returns what failed (empty = pass).
 */
export function verdict(r: Report): string[] {
  const f = r.figures
  const failed: string[] = []
  if (r.permanentlyStale.length > 0)
    failed.push(`${r.permanentlyStale.length} permanently stale keys`)
  if (r.scenario === 'none') {
    if (f.staleness.p99 > 10) failed.push(`staleness p99 ${f.staleness.p99.toFixed(1)} ms > 10 ms`)
    if (f.consistentWithin50ms < 0.9999)
      failed.push(
        `${(f.consistentWithin50ms * 100).toFixed(3)}% of writes consistent within 50 ms < 99.99%`,
      )
  } else if (
    r.scenario !== 'slow-subscriber' &&
    r.scenario !== 'soak' &&
    f.consistentWithin1s < 1
  ) {
    failed.push(
      `${(f.consistentWithin1s * 100).toFixed(3)}% of writes consistent within 1 s < 100%`,
    )
  }
  if (SCENARIOS[r.scenario].detected && r.degraded === 0)
    failed.push('the fault was never detected (no replica degraded)')
  if (r.scenario === 'writes-paused' && r.l1HitP99Ms >= 5)
    failed.push(`L1 hit p99 ${r.l1HitP99Ms.toFixed(2)} ms while writes were paused (≥ 5 ms)`)
  // A frozen server or a black-holed subscriber: detected within 2× the heartbeat timeout (600 ms).
  if (
    (r.scenario === 'redis-frozen' || r.scenario === 'subscriber-blackholed') &&
    (r.detectMs === undefined || r.detectMs > 1_200)
  )
    failed.push(`bus degraded ${r.detectMs ?? 'never'} ms after the fault (> 1 200 ms)`)
  // No call outlives its configured timeouts (plus scheduling).
  if (hardTimeout(r.scenario)) {
    if (r.readMaxMs > CALL_BOUNDS.read + 100)
      failed.push(`a read took ${r.readMaxMs.toFixed(0)} ms (> ${CALL_BOUNDS.read} + 100 ms)`)
    if (r.writeMaxMs > CALL_BOUNDS.write + 100)
      failed.push(`a write took ${r.writeMaxMs.toFixed(0)} ms (> ${CALL_BOUNDS.write} + 100 ms)`)
  }
  if (r.scenario === 'hostile-bytes' && (r.hostileDecodeMaxMs ?? Infinity) > 50)
    failed.push(`a hostile entry took ${r.hostileDecodeMaxMs ?? '—'} ms to decode (> 50 ms)`)
  if (r.scenario === 'slow-subscriber') {
    // The stalled replica is dropped by Redis; the ones that kept reading never notice.
    if (!r.subscribersDropped) failed.push('Redis never dropped the stalled subscriber')
    const others = r.degradedByReplica.slice(1).reduce((n, d) => n + d.length, 0)
    if (others > 0) failed.push(`${others} bus degradations on replicas that kept reading`)
  }
  failed.push(...probeFailures(r))
  if (r.readErrors > 0) failed.push(`${r.readErrors} reads failed (a fault reached a caller)`)
  if (r.unhandledRejections > 0) failed.push(`${r.unhandledRejections} unhandled rejections`)
  if (r.scenario === 'forged-bus')
    failed.push(...(r.forged ? forgedFailures(r.forged, r.replicas) : ['no forged traffic sent']))
  return failed
}

/** What the scenario's probes found wrong (behaviour, not timing: the CI test asserts these). */
export function probeFailures(r: Report): string[] {
  const failed: string[] = []
  if (r.scenario === 'writes-paused') {
    const w = r.writeProbe
    if (!w || w.readsWhilePending === 0) failed.push('the write probe never read during a write')
    else if (w.newValueInL1BeforeL2 > 0)
      failed.push(`${w.newValueInL1BeforeL2} reads found a write in L1 before L2 held it`)
  }
  if (r.scenario === 'refresh-ahead-outage') {
    const rp = r.refreshProbe
    if (!rp || rp.background === 0) failed.push('no background refresh of a hot key')
    else if (rp.maxPerEntry > 1)
      failed.push(`${rp.maxPerEntry} background refreshes of one entry (at most 1)`)
  }
  return failed
}
