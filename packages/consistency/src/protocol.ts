/** Every replica's timeouts: the cache's hard timeout, L2's command timeout, the bus's publish timeout. */
export const TIMEOUTS = { hard: 1_500, command: 300, publish: 1_000 } as const
/**
 * How long a call may take (plus 100 ms of scheduling on a shared machine): a read, the
 * hard timeout; a write, two L2 steps (a tagged set reads its tags' versions, then
 * writes) and, once L2 took it, the first attempt to tell the peers.
 */
export const CALL_BOUNDS = {
  read: TIMEOUTS.hard,
  write: 2 * TIMEOUTS.command + TIMEOUTS.publish,
} as const

/** What the orchestrator asks of a replica process (see replica.ts). */
export interface WorkloadSpec {
  replica: number
  replicas: number
  /** Root keys k0…; tagged keys t0… live in namespace `ns` with tag `g<i % tagGroups>`. */
  rootKeys: number
  taggedKeys: number
  tagGroups: number
  /** Operations this replica runs at most, and for how long at most. */
  ops: number
  maxMs: number
  /** Share of operations that are writes (on keys this replica owns). */
  writeShare: number
  /** Concurrent workers in the replica. */
  concurrency: number
  /** Time between reading the source and returning, in every loader. */
  loaderDelayMs: number
  seed: number
  /** Keep every read and write for the staleness analysis (off in the soak: memory must stay flat). @default true */
  record?: boolean
  /** Run the write probe (see probes.ts): `writes-paused`. */
  writeProbe?: boolean
  /** Hot keys read by the refresh probe (see probes.ts): `refresh-ahead-outage`. @default 0 */
  hotKeys?: number
}

export interface WorkloadResult {
  reads: [string, number, number, string][]
  writes: [string, number, number, string][]
  failedWrites: number
  readErrors: number
  ops: number
  /** 99th percentile of this replica's read latency (ms). */
  readP99Ms: number
  /** 99th percentile of the L1 probe's reads that were L1 hits (ms). */
  l1HitP99Ms: number
  /** The longest cache read and write (ms). */
  readMaxMs: number
  writeMaxMs: number
  writeProbe: WriteProbeResult | undefined
  refreshProbe: RefreshProbeResult | undefined
}

/** Reads of a key whose write was in flight: how many found the new value in L1, and how many of those before L2 held it. */
export interface WriteProbeResult {
  writes: number
  failedWrites: number
  readsWhilePending: number
  newValueInL1: number
  newValueInL1BeforeL2: number
}

/** Background refreshes of hot keys: how many, and the most of one entry (one per entry's window). */
export interface RefreshProbeResult {
  background: number
  maxPerEntry: number
}
