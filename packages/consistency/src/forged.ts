/**
 * `forged-bus`: what a client with PUBLISH rights on the bus channel (but not the bus
 * secret) can send, and a flood of validly signed invalidations. Every message goes to a
 * redis-server the harness started, on loopback; every loop is bounded by count.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import {
  BusAuth,
  channelName,
  decodeMessage,
  encodeMessage,
  type BusAuthOptions,
} from '@strata/bus-redis-pubsub'
import { Redis } from 'ioredis'

/** The replicas' bus secret in this scenario (the harness holds it to sign the flood). */
export const BUS_AUTH: BusAuthOptions = {
  keys: { k1: 'chaos-forged-bus-secret-0123456789abcdef' },
  activeKeyId: 'k1',
}

/** Keys every replica holds in L1 and nobody writes: any eviction of them was forced. */
export const CANARIES = Array.from({ length: 20 }, (_, i) => `canary${i}`)

export interface ForgedSent {
  garbage: number
  unsigned: number
  forged: number
  unknownKey: number
  replayed: number
  /** Validly signed invalidations of keys nobody holds, and how long sending them took. */
  flood: number
  floodMs: number
  /** Canary L1 hits over all replicas once every replica had dropped the forged burst (before the flood). */
  canaryL1Hits: number
}

/** Captures the replicas' own signed messages for `ms` (at most `max`), heartbeats left out. */
async function capture(url: string, prefix: string, ms: number, max: number): Promise<Buffer[]> {
  const auth = new BusAuth(BUS_AUTH)
  const sub = new Redis(url)
  const got: Buffer[] = []
  try {
    await sub.subscribe(channelName(prefix))
    sub.on('messageBuffer', (_c: Buffer, frame: Buffer) => {
      const m = auth.open(frame)
      if (got.length < max && typeof m !== 'string' && decodeMessage(m).op !== 'heartbeat')
        got.push(frame)
    })
    await sleep(ms)
  } finally {
    sub.disconnect()
  }
  return got
}

/**
 * Sends, in order: random bytes, well-formed unsigned messages, frames signed with a
 * wrong secret and with an unknown key id (all naming the canaries, every workload key,
 * and a clear of the whole prefix), captured real messages replayed; `afterBurst` then
 * checks what it did (resolving the canaries' L1 hits); then `flood` signed
 * invalidations of other keys at up to `ratePerSec`.
 */
export async function forgeBusTraffic(
  url: string,
  prefix: string,
  workloadKeys: readonly string[],
  flood: number,
  ratePerSec: number,
  afterBurst: (sent: ForgedSent) => Promise<number>,
): Promise<ForgedSent> {
  const replays = await capture(url, prefix, 300, 50)
  const pub = new Redis(url)
  const channel = channelName(prefix)
  const keys = [...CANARIES, ...workloadKeys].map((k) => `${prefix}::${k}`)
  const lie = (seq: number) =>
    encodeMessage({ op: 'delete', source: 'chaos-forger', seq, ts: Date.now(), keys })
  const clear = (seq: number) =>
    encodeMessage({ op: 'clear', source: 'chaos-forger', seq, ts: Date.now(), prefixes: [prefix] })
  const wrongSecret = new BusAuth({
    keys: { k1: randomBytes(32).toString('hex') },
    activeKeyId: 'k1',
  })
  const unknownKey = new BusAuth({
    keys: { k9: randomBytes(32).toString('hex') },
    activeKeyId: 'k9',
  })
  const sent: ForgedSent = {
    garbage: 0,
    unsigned: 0,
    forged: 0,
    unknownKey: 0,
    replayed: 0,
    flood: 0,
    floodMs: 0,
    canaryL1Hits: 0,
  }
  try {
    const p = pub.pipeline()
    for (let i = 0; i < 100; i++, sent.garbage++)
      p.publish(channel, randomBytes(1 + Math.floor(Math.random() * 512)))
    for (let i = 1; i <= 100; i++, sent.unsigned++) p.publish(channel, i % 10 ? lie(i) : clear(i))
    for (let i = 1; i <= 100; i++, sent.forged++)
      p.publish(channel, wrongSecret.sign(i % 10 ? lie(i) : clear(i)))
    for (let i = 1; i <= 100; i++, sent.unknownKey++)
      p.publish(channel, unknownKey.sign(i % 10 ? lie(i) : clear(i)))
    for (const frame of replays) {
      p.publish(channel, frame)
      sent.replayed++
    }
    await p.exec()
    sent.canaryL1Hits = await afterBurst(sent)
    // The flood: valid, signed, from a new source, in order (no gap). Frames are signed
    // ahead, 100 000 at a time (outside the timing), then sent in 10 ms slices with up
    // to 10 slices in flight: the publisher's CPU goes to sending.
    const auth = new BusAuth(BUS_AUTH)
    const perSlice = Math.max(1, Math.round(ratePerSec / 100))
    const floodKeys = [`${prefix}::flood-nobody-holds`]
    for (let chunk = 0; sent.flood < flood && chunk < 1_000; chunk++) {
      const n = Math.min(100_000, flood - sent.flood)
      const frames = Array.from({ length: n }, (_, i) =>
        auth.sign(
          encodeMessage({
            op: 'delete',
            source: 'chaos-flood',
            seq: sent.flood + i + 1,
            ts: Date.now(),
            keys: floodKeys,
          }),
        ),
      )
      const started = Date.now()
      const inFlight: Promise<unknown>[] = []
      for (let off = 0, slice = 0; off < n; off += perSlice, slice++) {
        const q = pub.pipeline()
        for (const frame of frames.slice(off, off + perSlice)) q.publish(channel, frame)
        inFlight.push(q.exec())
        if (inFlight.length >= 10) await inFlight.shift()
        const ahead = started + (slice + 1) * 10 - Date.now()
        if (ahead > 0) await sleep(ahead)
      }
      await Promise.all(inFlight)
      sent.flood += n
      sent.floodMs += Date.now() - started
    }
  } finally {
    pub.disconnect()
  }
  return sent
}

/** `forged-bus`: what was sent, what the replicas dropped (summed), what it cost them. */
export interface ForgedReport {
  sent: ForgedSent
  rejected: Record<string, number>
  /** Canary keys (held in every replica's L1, never written) no longer L1 hits after the burst. */
  canariesEvicted: number
}

export function forgedLine(f: ForgedReport | undefined): string {
  if (!f) return ''
  const s = f.sent
  return (
    ` · forged: sent ${s.garbage} garbage / ${s.unsigned} unsigned / ${s.forged} wrong secret / ${s.unknownKey} unknown key / ${s.replayed} replayed, ` +
    `dropped ${JSON.stringify(f.rejected)}, canaries evicted ${f.canariesEvicted}, flood ${s.flood} signed in ${s.floodMs} ms`
  )
}

/**
 * What forged traffic must not do: evict anything, or go uncounted. Each replica gets
 * every forged message (random bytes count as unsigned, or as forged when they happen to
 * start like a signed frame); a replayed message is counted by every replica but its
 * original sender.
 */
export function forgedFailures(f: ForgedReport, replicas: number): string[] {
  const out: string[] = []
  const s = f.sent
  const r = f.rejected
  if (f.canariesEvicted > 0) out.push(`${f.canariesEvicted} canary L1 entries evicted`)
  const bad = (r['unsigned'] ?? 0) + (r['forged'] ?? 0) + (r['unknownKey'] ?? 0)
  const want = (s.garbage + s.unsigned + s.forged + s.unknownKey) * replicas
  if (bad < want) out.push(`${bad} of ${want} forged or unsigned deliveries dropped and counted`)
  if ((r['replayed'] ?? 0) < s.replayed * (replicas - 1))
    out.push(`${r['replayed'] ?? 0} of ≥ ${s.replayed * (replicas - 1)} replays dropped`)
  return out
}

/** The least the replicas must have dropped, together, for the burst `sent`. */
export function expectedDrops(sent: ForgedSent, replicas: number): number {
  return (
    (sent.garbage + sent.unsigned + sent.forged + sent.unknownKey) * replicas +
    sent.replayed * (replicas - 1)
  )
}

/** What the replicas dropped, summed over replicas, by reason (`bus.rejected` of each). */
export function droppedBy(perReplica: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of perReplica)
    for (const [why, n] of Object.entries(r)) out[why] = (out[why] ?? 0) + n
  return out
}
