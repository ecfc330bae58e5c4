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
}
