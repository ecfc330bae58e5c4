import { createHmac, timingSafeEqual } from 'node:crypto'
import { invalidOption, toMs, type Duration } from '@strata/core'

/** `redisPubSubBus({ auth })`: every message signed with a shared secret. */
export interface BusAuthOptions {
  /** Secrets by key id (ids: 1–32 of `A-Z a-z 0-9 _ . -`; secrets: at least 32 bytes). */
  keys: Record<string, string | Uint8Array>
  /** The key this replica signs with; every key in `keys` is accepted when verifying. */
  activeKeyId: string
  /**
   * A message older than this (by its sender's clock) is dropped as a replay even from a
   * peer this replica has not heard yet; keep replicas' clocks in sync (NTP). @default '60s'
   */
  maxAge?: Duration
}

/** Why a message was dropped before it was read. */
export type Rejection = 'unsigned' | 'unknownKey' | 'forged'

/** First byte of a signed frame (an unsigned message starts with the wire version, 1). */
const SIGNED = 0xa1
const MAC_BYTES = 32
const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/
const MIN_SECRET_BYTES = 32

/**
 * Signed frames: `0xA1 | id length | key id | HMAC-SHA256(secret, key id ‖ message) |
 * message`. The MAC covers the whole message (op, source, seq, ts, keys, tags, prefixes,
 * trace) and the key id; the bus checks seq and ts for replays after `open`.
 */
export class BusAuth {
  readonly #keys = new Map<string, Buffer>()
  readonly #active: { id: Buffer; secret: Buffer }
  readonly maxAge: number

  constructor(o: BusAuthOptions) {
    const pkg = 'bus-redis-pubsub'
    if (
      typeof o !== 'object' ||
      (o as BusAuthOptions | null) === null ||
      typeof o.keys !== 'object' ||
      (o.keys as BusAuthOptions['keys'] | null) === null
    )
      throw invalidOption(pkg, 'auth', 'must be { keys, activeKeyId }')
    for (const [id, secret] of Object.entries(o.keys)) {
      if (!KEY_ID.test(id))
        throw invalidOption(pkg, 'auth.keys', `bad key id ${JSON.stringify(id)}`)
      const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret)
      if (bytes.length < MIN_SECRET_BYTES)
        throw invalidOption(pkg, 'auth.keys', `the secret of ${id} must be at least 32 bytes`)
      this.#keys.set(id, bytes)
    }
    const active = this.#keys.get(o.activeKeyId)
    if (!active) throw invalidOption(pkg, 'auth.activeKeyId', 'must name one of auth.keys')
    this.#active = { id: Buffer.from(o.activeKeyId, 'latin1'), secret: active }
    this.maxAge = toMs(o.maxAge, 'auth.maxAge', pkg) ?? 60_000
    if (this.maxAge <= 0) throw invalidOption(pkg, 'auth.maxAge', 'must be positive')
  }

  sign(message: Buffer): Buffer {
    const { id, secret } = this.#active
    const mac = createHmac('sha256', secret).update(id).update(message).digest()
    return Buffer.concat([Buffer.from([SIGNED, id.length]), id, mac, message])
  }

  /** The message inside a frame whose MAC verifies, or why the frame is refused. */
  open(frame: Buffer): Buffer | Rejection {
    if (frame.length < 2 || frame[0] !== SIGNED) return 'unsigned'
    const n = frame[1] as number
    const start = 2 + n + MAC_BYTES
    if (n === 0 || frame.length <= start) return 'forged'
    const id = frame.subarray(2, 2 + n)
    const secret = this.#keys.get(id.toString('latin1'))
    if (!secret) return 'unknownKey'
    const message = frame.subarray(start)
    const mac = createHmac('sha256', secret).update(id).update(message).digest()
    return timingSafeEqual(mac, frame.subarray(2 + n, start)) ? message : 'forged'
  }
}
