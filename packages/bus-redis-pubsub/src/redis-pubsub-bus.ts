import calculateSlot from 'cluster-key-slot'
import type { Cluster } from 'ioredis'
import { Redis, type RedisOptions } from 'ioredis'
import {
  BusState,
  invalidOption,
  ioredisKind,
  withDeadline,
  toMs,
  type BusContext,
  type Duration,
  type BusDriver,
  type BusMessage,
  type IoredisClientLike,
} from '@strata/core'
import { BusAuth, type BusAuthOptions, type Rejection } from './auth.js'
import { channelName, decodeMessage, encodeMessage } from './message.js'
import { PeerSequences } from './peers.js'

type Client = Redis | Cluster

export interface HeartbeatOptions {
  /** How often a heartbeat is published on the channel (ms). @default 1_000 */
  interval?: Duration
  /** No heartbeat of our own received for this long → DEGRADED (ms). @default 2_000 */
  timeout?: Duration
}

export interface RedisPubSubBusOptions {
  /** URL, ioredis options, or a client (standalone `Redis` or `Cluster`: sharded pub/sub). */
  redis: string | RedisOptions | Redis | Cluster | IoredisClientLike
  /** Client to publish with (e.g. the L2's); by default the bus opens its own. */
  publisher?: Redis | Cluster | IoredisClientLike
  heartbeat?: HeartbeatOptions
  /** What core does to L1 on a gap; overrides nothing set explicitly in `createCache`. @default 'clear' */
  onGap?: 'clear' | 'clamp'
  /** A publish that has not answered after this long fails (and core retries it). @default 1_000 */
  publishTimeout?: Duration
  /**
   * How long `start()` waits for a client that is still connecting (a `Cluster` loading its
   * slot map, a server not up yet) before it fails; core then retries with backoff.
   * @default 10_000
   */
  startTimeout?: Duration
  /**
   * Sign every message with a shared secret (HMAC-SHA256 over the whole message, key
   * rotation by key id); unsigned, tampered and replayed messages are dropped and counted
   * (`bus.rejected`). Without it, a client that may PUBLISH on the channel can force
   * misses and L1 clears, never make a replica serve wrong data (docs/bus.md#authentication).
   */
  auth?: BusAuthOptions
}

const SUBSCRIBER_DEFAULTS: RedisOptions = {
  // Subscriptions are replayed on reconnect (autoResubscribe); commands are not queued.
  autoResubscribe: true,
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
  // Reconnect backoff with jitter: replicas that lost Redis together do not come back in step.
  retryStrategy: (attempt) => Math.round(Math.min(attempt * 100, 2_000) * (0.5 + Math.random())),
}

function positive(d: Duration | undefined, name: string, fallback: number): number {
  const v = toMs(d, name, 'bus-redis-pubsub')
  if (v === undefined) return fallback
  if (v <= 0)
    throw invalidOption(
      'bus-redis-pubsub',
      name,
      `must be a positive number of ms (got ${String(v)})`,
    )
  return v
}

/**
 * Invalidation bus on Redis pub/sub (sharded pub/sub on Cluster).
 *
 * Pub/sub is at-most-once: whatever is published while a subscriber is away is lost.
 * So this driver watches for every way of being away and reports it as DEGRADED (core
 * then clears or clamps L1): the subscriber connection closing or reconnecting; no
 * heartbeat of its own coming back through the channel within `timeout` (a frozen
 * server or a silently dead socket); a server restart (`run_id` changed); a gap in a
 * peer's sequence numbers; on Cluster, an unsolicited `sunsubscribe` (slot moved). It
 * returns to CONNECTED ("resynced") only after a heartbeat has round-tripped again.
 */
export class RedisPubSubBus implements BusDriver {
  readonly name = 'redis-pubsub'
  readonly onGap: 'clear' | 'clamp' | undefined
  #state: BusState = BusState.connecting
  readonly #options: RedisPubSubBusOptions
  readonly #interval: number
  readonly #timeout: number
  readonly #publishTimeout: number
  #sub: Redis | undefined
  #pub: Client | undefined
  #ownsPub = false
  #lastError: string | undefined
  #cluster: Cluster | undefined
  /** On Cluster: the primary that owns the channel's slot (where run_id is read). */
  #owner: { host: string; port: number } | undefined
  #ctx: BusContext | undefined
  #channel = ''
  #timer: ReturnType<typeof setInterval> | undefined
  #hbSeq = 0
  #lastHeard = 0
  #runId: string | undefined
  readonly #startTimeout: number
  readonly #peers = new PeerSequences()
  readonly #auth: BusAuth | undefined
  /** Highest own heartbeat sequence heard back (an authenticated bus drops older ones). */
  #hbHeard = 0
  readonly #rejected = { unsigned: 0, unknownKey: 0, forged: 0, replayed: 0 }
  #closing = false

  constructor(options: RedisPubSubBusOptions) {
    if (
      typeof options !== 'object' ||
      (options as Partial<RedisPubSubBusOptions>).redis === undefined
    ) {
      throw invalidOption(
        'bus-redis-pubsub',
        'redis',
        'is required: a URL, ioredis options, or an ioredis client',
      )
    }
    this.#options = options
    this.#interval = positive(options.heartbeat?.interval, 'heartbeat.interval', 1_000)
    this.#timeout = positive(options.heartbeat?.timeout, 'heartbeat.timeout', 2_000)
    if (this.#timeout < this.#interval) {
      throw invalidOption(
        'bus-redis-pubsub',
        'heartbeat.timeout',
        `must be at least heartbeat.interval (${this.#timeout} < ${this.#interval})`,
      )
    }
    this.#publishTimeout = positive(options.publishTimeout, 'publishTimeout', 1_000)
    this.#startTimeout = positive(options.startTimeout, 'startTimeout', 10_000)
    const onGap = options.onGap
    if (onGap !== undefined && (onGap as string) !== 'clear' && (onGap as string) !== 'clamp') {
      throw invalidOption(
        'bus-redis-pubsub',
        'onGap',
        `must be 'clear' or 'clamp' (got ${JSON.stringify(onGap)})`,
      )
    }
    this.onGap = onGap
    this.#auth = options.auth === undefined ? undefined : new BusAuth(options.auth)
  }

  /** Messages an authenticated bus dropped, by reason (all 0 without `auth`). */
  get rejected(): Readonly<Record<Rejection | 'replayed', number>> {
    return { ...this.#rejected }
  }

  get state(): BusState {
    return this.#state
  }

  #connections(): { sub: Redis; pub: Client } {
    const { redis } = this.#options
    const publisher = this.#options.publisher as Client | undefined
    let sub: Redis
    let pub: Client
    const kind = ioredisKind(redis)
    if (kind === 'cluster') {
      const cluster = redis as Cluster
      this.#cluster = cluster
      // Sharded pub/sub: the channel lives on the primary that owns its slot.
      const slot = calculateSlot(this.#channel)
      const owner = (this.#owner = this.#slotOwner(cluster, slot))
      sub = new Redis({
        ...SUBSCRIBER_DEFAULTS,
        ...cluster.options.redisOptions,
        host: owner.host,
        port: owner.port,
      })
      pub = publisher ?? cluster
    } else if (kind === 'redis') {
      const client = redis as Redis
      sub = client.duplicate(SUBSCRIBER_DEFAULTS)
      pub = publisher ?? client
    } else {
      sub =
        typeof redis === 'string'
          ? new Redis(redis, SUBSCRIBER_DEFAULTS)
          : new Redis({ ...SUBSCRIBER_DEFAULTS, ...(redis as RedisOptions) })
      if (publisher) pub = publisher
      else {
        pub = sub.duplicate({
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          autoResubscribe: false,
        })
        this.#ownsPub = true
      }
    }
    return { sub, pub }
  }

  #slotOwner(cluster: Cluster, slot: number): { host: string; port: number } {
    const owners = (cluster as unknown as { slots: string[][] }).slots[slot]
    const key = owners?.[0]
    if (!key)
      throw new Error(
        '[bus-redis-pubsub] cluster slot map is not loaded yet; wait for the cluster client to be ready',
      )
    const i = key.lastIndexOf(':')
    return { host: key.slice(0, i), port: Number(key.slice(i + 1)) }
  }

  #ownerNode(cluster: Cluster): Redis | undefined {
    const owner = this.#owner
    return cluster
      .nodes('master')
      .find((n) => n.options.host === owner?.host && n.options.port === owner?.port)
  }

  /**
   * Subscribes. Waits (up to `startTimeout`) for a client that is still connecting; on
   * failure it closes what it opened and rejects, so core can call it again later.
   */
  async start(context: BusContext): Promise<void> {
    if (this.#closing) throw new Error('[bus-redis-pubsub] closed')
    this.#teardown()
    this.#ctx = context
    this.#channel = channelName(context.channel)
    const deadline = Date.now() + this.#startTimeout
    try {
      await this.#whenReady(this.#options.redis, deadline)
      const { sub, pub } = this.#connections()
      this.#sub = sub
      this.#pub = pub
      this.#wire(sub, pub)
      const subscribing = this.#cluster
        ? sub.ssubscribe(this.#channel)
        : sub.subscribe(this.#channel)
      await this.#until(subscribing, deadline, 'subscribe')
      this.#runId = await this.#fetchRunId()
    } catch (err) {
      this.#teardown()
      throw err
    }
    this.#lastHeard = Date.now()
    this.#setState(BusState.connected, 'subscribed', false)
    this.#timer = setInterval(() => void this.#tick(), Math.max(10, Math.floor(this.#interval / 4)))
    this.#timer.unref()
  }

  /** A client the user passed in may still be connecting (a Cluster loads its slot map first). */
  async #whenReady(redis: RedisPubSubBusOptions['redis'], deadline: number): Promise<void> {
    if (ioredisKind(redis) === undefined) return
    const client = redis as Client
    if (client.status === 'ready') return
    if (client.status === 'end')
      throw new Error('[bus-redis-pubsub] the client passed in was closed (status end)')
    let onReady: (() => void) | undefined
    const ready = new Promise<void>((resolve) => {
      onReady = resolve
      client.once('ready', resolve)
    })
    try {
      await this.#until(
        ready,
        deadline,
        `waiting for the client to connect (status ${client.status})`,
      )
    } finally {
      if (onReady) client.off('ready', onReady)
    }
  }

  #until<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    p.catch(() => undefined)
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `[bus-redis-pubsub] ${what}: no answer within ${this.#startTimeout} ms${this.#lastError ? ` (connection: ${this.#lastError})` : ''}`,
              ),
            ),
          Math.max(0, deadline - Date.now()),
        )
        timer.unref()
      }),
    ]).finally(() => clearTimeout(timer))
  }

  #wire(sub: Redis, pub: Client): void {
    // Kept so a start that times out can say why (a refused TLS certificate, …).
    sub.on('error', (err: Error) => (this.#lastError = err.message))
    sub.on('ready', () => (this.#lastError = undefined))
    if (this.#ownsPub) pub.on('error', () => undefined)
    const onBuffer = (channel: Buffer | string, payload: Buffer) => {
      if (channel.toString() === this.#channel) this.#receive(payload)
    }
    sub.on('messageBuffer', onBuffer)
    sub.on('smessageBuffer', onBuffer)
    sub.on('close', () => this.#degrade('subscriber connection closed'))
    sub.on('reconnecting', () => this.#degrade('subscriber reconnecting'))
    sub.on('ready', () => {
      // autoResubscribe has re-issued the subscription; a heartbeat round trip confirms it.
      if (this.#state === BusState.degraded) void this.#heartbeat()
    })
    if (this.#cluster)
      sub.on('sunsubscribe', () => this.#degrade('sharded channel unsubscribed (slot moved)'))
  }

  /** Closes the connections of a failed or previous start (never a client the user passed in). */
  #teardown(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    const sub = this.#sub
    if (sub) {
      sub.removeAllListeners()
      sub.on('error', () => undefined)
      sub.disconnect()
    }
    if (this.#ownsPub) this.#pub?.disconnect()
    this.#sub = undefined
    this.#pub = undefined
    this.#ownsPub = false
  }

  #ticks = 0

  async #tick(): Promise<void> {
    if (this.#closing) return
    if (Date.now() - this.#lastHeard > this.#timeout)
      this.#degrade(`no heartbeat for ${this.#timeout} ms`)
    if (++this.#ticks % 4 === 0 || this.#state === BusState.degraded) await this.#heartbeat()
  }

  async #heartbeat(): Promise<void> {
    const pub = this.#pub
    if (!pub || this.#closing) return
    try {
      const runId = await this.#fetchRunId().catch(() => undefined)
      if (runId !== undefined && this.#runId !== undefined && runId !== this.#runId) {
        this.#runId = runId
        this.#degrade('Redis restarted (run_id changed)')
      } else if (runId !== undefined) this.#runId = runId
      await this.#send(
        encodeMessage({
          op: 'heartbeat',
          source: this.#ctx?.source ?? '',
          seq: ++this.#hbSeq,
          ts: Date.now(),
        }),
      )
    } catch {
      // The deadline in #tick reports it.
    }
  }

  async #fetchRunId(): Promise<string | undefined> {
    const pub = this.#pub
    if (!pub) return undefined
    try {
      // A subscribed connection cannot run INFO: on Cluster ask the channel's primary.
      const target = this.#cluster ? this.#ownerNode(this.#cluster) : (pub as Redis)
      if (!target) return undefined
      const info = await this.#withTimeout(target.info('server'))
      return /run_id:(\w+)/.exec(info)?.[1]
    } catch (err) {
      // Without INFO a server restart goes unnoticed: a missing permission fails start().
      if (/NOPERM/.test(String((err as Error | undefined)?.message)))
        throw new Error(
          `[bus-redis-pubsub] the Redis user may not run INFO (restart detection): ${(err as Error).message}`,
        )
      return undefined
    }
  }

  #withTimeout<T>(p: Promise<T>): Promise<T> {
    return withDeadline(
      p,
      this.#publishTimeout,
      () => new Error(`[bus-redis-pubsub] no answer within ${this.#publishTimeout} ms`),
    )
  }

  async #send(message: Buffer): Promise<void> {
    const payload = this.#auth ? this.#auth.sign(message) : message
    const pub = this.#pub
    if (!pub) throw new Error('[bus-redis-pubsub] not started')
    const op = this.#cluster
      ? pub.spublish(this.#channel, payload)
      : pub.publish(this.#channel, payload)
    await this.#withTimeout(op)
  }

  #receive(frame: Buffer): void {
    if (this.#closing) return
    const ctx = this.#ctx
    if (!ctx) return
    const auth = this.#auth
    const payload = auth ? auth.open(frame) : frame
    if (typeof payload === 'string') {
      // Not signed by a key we hold: dropped and counted, never a gap (no forced L1 clears).
      this.#rejected[payload]++
      return
    }
    let m
    try {
      m = decodeMessage(payload)
    } catch {
      // Something on our own channel we cannot read (corrupt, oversized, a newer writer
      // under the same channel): an invalidation may have been lost. Treat it as a gap.
      this.#gap('an unreadable message on the channel')
      return
    }
    if (auth && m.ts < Date.now() - auth.maxAge) {
      this.#rejected.replayed++
      return
    }
    if (m.op === 'heartbeat') {
      if (m.source !== ctx.source) return
      if (auth && m.seq <= this.#hbHeard) {
        this.#rejected.replayed++
        return
      }
      this.#hbHeard = Math.max(this.#hbHeard, m.seq)
      this.#lastHeard = Date.now()
      if (this.#state === BusState.degraded && this.#sub?.status === 'ready') {
        this.#setState(BusState.connected, 'heartbeat round-tripped after a gap', true)
      }
      return
    }
    if (m.source !== ctx.source) {
      const { missed, replay } = this.#peers.check(m.source, m.seq, auth !== undefined)
      if (replay) {
        this.#rejected.replayed++
        return
      }
      if (missed > 0) this.#gap(`missed ${missed} message(s) from a peer`)
    }
    try {
      ctx.onMessage(m)
    } catch {
      // A handler error never breaks the subscription.
    }
  }

  #gap(reason: string): void {
    if (this.#state !== BusState.connected) return
    this.#setState(BusState.degraded, reason, false)
    this.#setState(BusState.connected, 'resynced after a gap', true)
  }

  /** Peers currently remembered for gap detection (tests: the table stays bounded). */
  get peerCount(): number {
    return this.#peers.size
  }

  #degrade(reason: string): void {
    if (this.#closing || this.#state === BusState.degraded || this.#state === BusState.closed)
      return
    if (this.#state === BusState.connecting) return
    this.#setState(BusState.degraded, reason, false)
  }

  #setState(state: BusState, reason: string, resynced: boolean): void {
    this.#state = state
    this.#ctx?.onState(state, { reason, resynced })
  }

  async publish(message: BusMessage): Promise<void> {
    await this.#send(encodeMessage(message))
  }

  close(): Promise<void> {
    this.#closing = true
    this.#state = BusState.closed
    this.#teardown()
    return Promise.resolve()
  }
}

export function redisPubSubBus(options: RedisPubSubBusOptions): RedisPubSubBus {
  return new RedisPubSubBus(options)
}
