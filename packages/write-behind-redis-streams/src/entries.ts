import type { PendingWrite, WriteOp } from '@strata/core'
import calculateSlot from 'cluster-key-slot'

/** One partition's keys (one hash tag: one slot on a cluster). */
export interface Partition {
  readonly index: number
  readonly stream: string
  readonly versions: string
  readonly pending: string
  readonly dead: string
}

export function partitions(prefix: string, repository: string, count: number): Partition[] {
  return Array.from({ length: count }, (_, index) => {
    const tag = `{${prefix}:wb:${repository}:${index}}`
    return {
      index,
      stream: `${tag}:s`,
      versions: `${tag}:v`,
      pending: `${tag}:p`,
      dead: `${tag}:d`,
    }
  })
}

/** The partition of an id: stable across replicas and restarts (CRC16, as Redis slots). */
export function partitionOf(id: string, count: number): number {
  return count === 1 ? 0 : calculateSlot(id) % count
}

/** One write read from a stream. */
export interface QueuedEntry {
  /** The stream entry id. */
  entry: string
  id: string
  version: number
  op: WriteOp
  bytes: Buffer
}

const OPS: Record<string, WriteOp> = { s: 'set', d: 'delete' }
export const OP_CODE: Record<WriteOp, string> = { set: 's', delete: 'd' }

/**
 * The entries of a one-stream XREADGROUP reply: RESP2 gives `[[stream, entries]]`, RESP3
 * (ioredis 6) a map, which arrives as `[stream, entries]` or a `Map`.
 */
export function streamEntries(reply: unknown): unknown {
  if (reply instanceof Map) return [...(reply as Map<unknown, unknown>).values()][0]
  if (!Array.isArray(reply) || reply.length === 0) return undefined
  return Array.isArray(reply[0]) ? (reply[0] as unknown[])[1] : reply[1]
}

/** Parses `[entryId, [field, value, …]]` pairs; malformed entries come back as `undefined` fields. */
export function parseEntries(raw: unknown): { entries: QueuedEntry[]; malformed: string[] } {
  const entries: QueuedEntry[] = []
  const malformed: string[] = []
  if (!Array.isArray(raw)) return { entries, malformed }
  for (const item of raw as unknown[]) {
    if (!Array.isArray(item)) continue
    const entry = String(item[0])
    const fields = item[1] as Buffer[] | null
    if (!Array.isArray(fields)) continue
    const f = new Map<string, Buffer>()
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), fields[i + 1] as Buffer)
    const id = f.get('i')
    const version = Number(f.get('v')?.toString())
    const op = OPS[f.get('o')?.toString() ?? '']
    const bytes = f.get('d')
    if (
      id === undefined ||
      !Number.isSafeInteger(version) ||
      op === undefined ||
      bytes === undefined
    ) {
      malformed.push(entry)
      continue
    }
    entries.push({ entry, id: id.toString(), version, op, bytes })
  }
  return { entries, malformed }
}

/** Parses a pending-hash value `<o><version>:<bytes>`. */
export function parsePending(
  raw: Buffer | null | undefined,
  decode: (bytes: Uint8Array) => unknown,
): PendingWrite | undefined {
  if (!raw || raw.length < 3) return undefined
  const op = OPS[String.fromCharCode(raw[0] as number)]
  const colon = raw.indexOf(0x3a, 1)
  if (op === undefined || colon < 2) return undefined
  const version = Number(raw.subarray(1, colon).toString())
  if (!Number.isSafeInteger(version)) return undefined
  return { op, version, value: op === 'set' ? decode(raw.subarray(colon + 1)) : null }
}

/** The version a pending-hash value names, without decoding its value. */
export function pendingVersion(raw: Buffer | null | undefined): number | undefined {
  if (!raw || raw.length < 3) return undefined
  const colon = raw.indexOf(0x3a, 1)
  if (colon < 2) return undefined
  const v = Number(raw.subarray(1, colon).toString())
  return Number.isSafeInteger(v) ? v : undefined
}

/** Milliseconds since a stream entry id's time part. */
export function ageOf(entryId: string, now: number): number {
  const ms = Number(entryId.slice(0, entryId.indexOf('-')))
  return Number.isFinite(ms) ? Math.max(0, now - ms) : 0
}
