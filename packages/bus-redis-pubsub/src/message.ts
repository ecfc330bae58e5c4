import { Packr } from 'msgpackr'
import type { BusMessage, BusOp } from '@strata/core'
import { readMsgpack } from './msgpack-reader.js'

/**
 * The wire format, defined once.
 *
 * A message is one version byte followed by a msgpack array:
 *
 * | index | field    | type                         |
 * | ----- | -------- | ---------------------------- |
 * | 0     | op       | uint (table below)           |
 * | 1     | source   | string (replica id)          |
 * | 2     | seq      | uint (per source, from 1)    |
 * | 3     | ts       | float64 ms since epoch       |
 * | 4     | keys     | string[] or nil              |
 * | 5     | tags     | string[] or nil              |
 * | 6     | prefixes | string[] or nil              |
 * | 7     | trace    | W3C traceparent or nil       |
 *
 * | op | name            | meaning for a receiver                                  |
 * | -- | --------------- | ------------------------------------------------------- |
 * | 1  | delete          | drop `keys` (one message carries many keys)             |
 * | 2  | set             | a new value was written for `keys`: drop the L1 copies  |
 * | 3  | tags            | entries carrying any of `tags` are invalid              |
 * | 4  | clear           | drop everything under `prefixes`                        |
 * | 5  | clear-namespace | drop everything under `prefixes` (one namespace)        |
 * | 15 | heartbeat       | internal: proves the channel round-trips (never surfaced) |
 *
 * The version is also part of the channel name (`strata:v1:<prefix>`), so replicas of a
 * different wire version never read each other during a rolling deploy.
 */
export const WIRE_VERSION = 1
export const HEARTBEAT = 15

const OPS: Record<BusOp, number> = { delete: 1, set: 2, tags: 3, clear: 4, 'clear-namespace': 5 }
const NAMES = new Map<number, BusOp>(
  Object.entries(OPS).map(([name, code]) => [code, name as BusOp]),
)

const packr = new Packr({ useRecords: false })

export function channelName(prefix: string): string {
  return `strata:v${WIRE_VERSION}:${prefix}`
}

export type WireMessage = BusMessage | { op: 'heartbeat'; source: string; seq: number; ts: number }

export function encodeMessage(m: WireMessage): Buffer {
  const op = m.op === 'heartbeat' ? HEARTBEAT : OPS[m.op]
  const body =
    m.op === 'heartbeat'
      ? [op, m.source, m.seq, m.ts, null, null, null, null]
      : [
          op,
          m.source,
          m.seq,
          m.ts,
          m.keys ?? null,
          m.tags ?? null,
          m.prefixes ?? null,
          m.trace ?? null,
        ]
  const packed = packr.pack(body)
  const out = Buffer.allocUnsafe(packed.length + 1)
  out[0] = WIRE_VERSION
  packed.copy(out, 1)
  return out
}

/** Longest replica id accepted (core uses UUIDs). */
const MAX_SOURCE = 128

function strings(v: unknown, field: string): string[] | undefined {
  if (v === null || v === undefined) return undefined
  const items: unknown[] | undefined = Array.isArray(v) ? (v as unknown[]) : undefined
  if (!items?.every((s) => typeof s === 'string' && s.length > 0))
    throw new Error(`[bus-redis-pubsub] bad ${field}`)
  return items as string[]
}

/** Decodes and validates; throws on anything that is not a message this version wrote. */
export function decodeMessage(bytes: Uint8Array): WireMessage {
  if (bytes.length < 2 || bytes.length > 16 * 1024 * 1024)
    throw new Error('[bus-redis-pubsub] bad message size')
  if (bytes[0] !== WIRE_VERSION)
    throw new Error(`[bus-redis-pubsub] unknown wire version ${String(bytes[0])}`)
  let body: unknown
  try {
    // Written by msgpackr (above); read by a small reader of the types a message holds.
    body = readMsgpack(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), 1, 2)
  } catch (err) {
    throw new Error(`[bus-redis-pubsub] bad message body: ${(err as Error).message}`)
  }
  if (!Array.isArray(body) || body.length !== 8)
    throw new Error('[bus-redis-pubsub] bad message body')
  const [op, source, seq, ts, keys, tags, prefixes, trace] = body as unknown[]
  // Every field is checked: a NaN or fractional seq would disable gap detection for that peer.
  if (
    typeof source !== 'string' ||
    source.length === 0 ||
    source.length > MAX_SOURCE ||
    !Number.isSafeInteger(seq) ||
    (seq as number) < 1 ||
    typeof ts !== 'number' ||
    !Number.isFinite(ts)
  ) {
    throw new Error('[bus-redis-pubsub] bad message header')
  }
  if (op === HEARTBEAT) return { op: 'heartbeat', source, seq: seq as number, ts }
  const name = typeof op === 'number' ? NAMES.get(op) : undefined
  if (!name) throw new Error(`[bus-redis-pubsub] unknown op ${String(op)}`)
  if (trace !== null && (typeof trace !== 'string' || trace.length > 64))
    throw new Error('[bus-redis-pubsub] bad trace')
  const m: BusMessage = { op: name, source, seq: seq as number, ts }
  const k = strings(keys, 'keys')
  const t = strings(tags, 'tags')
  const p = strings(prefixes, 'prefixes')
  if (k) m.keys = k
  if (t) m.tags = t
  if (p) m.prefixes = p
  if (typeof trace === 'string') m.trace = trace
  return m
}
