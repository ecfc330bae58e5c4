import type { PersistItem, WriteBehindBinding } from '@strata/core'
import {
  parseEntries,
  pendingVersion,
  streamEntries,
  type Partition,
  type QueuedEntry,
} from './entries.js'
import type { Resolved } from './options.js'
import { scripted, type Scripted } from './scripts.js'

/** A write this worker holds: delivered to it, not yet persisted. */
interface Held {
  e: QueuedEntry
  /** Failed save attempts of this entry (deliveries that failed): dead-lettered at maxRetries. */
  attempts: number
  /** Consecutive failures for this id, across the entries that superseded each other: the backoff. */
  streak: number
  /** Not retried before this time (ms). */
  dueAt: number
  /** When this worker last had the entry delivered or claimed (ms), for XCLAIM's min idle. */
  touchedAt: number
}

interface PartitionState {
  held: Map<string, Held>
  groupReady: boolean
  cursor: string
  nextClaim: number
}

export interface WorkerCounters {
  persisted: number
  superseded: number
  retried: number
  deadLettered: number
}

/**
 * One consumer of the group, over every partition. Each round, per partition: reclaim
 * entries a dead consumer left idle (XAUTOCLAIM, every claimIdle / 2), read new entries
 * (XREADGROUP) while it holds fewer than a batch, coalesce per id (the newest version
 * wins; older entries are acknowledged unsaved), drop entries whose id has a newer
 * queued write (the pending hash says so), persist (saveMany on a first attempt, then
 * per item so one poison entry cannot hold the rest back), acknowledge what persisted,
 * and hold what failed for a retry after an exponential, jittered backoff, up to
 * maxRetries deliveries, then dead-letter it. Memory: at most one batch held per partition.
 */
export class Worker {
  readonly counters: WorkerCounters = { persisted: 0, superseded: 0, retried: 0, deadLettered: 0 }
  readonly #o: Resolved
  readonly #parts: readonly Partition[]
  readonly #b: WriteBehindBinding
  readonly #r: Scripted
  readonly #state: PartitionState[]
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #again = false
  #stopped = false
  #lastReport = 0

  constructor(o: Resolved, parts: readonly Partition[], binding: WriteBehindBinding) {
    this.#o = o
    this.#parts = parts
    this.#b = binding
    this.#r = scripted(o.redis)
    this.#state = parts.map(() => ({
      held: new Map(),
      groupReady: false,
      cursor: '0-0',
      nextClaim: 0,
    }))
  }

  /** Writes held (persisting or waiting for a retry). */
  get inFlight(): number {
    let n = 0
    for (const s of this.#state) n += s.held.size
    return n
  }

  start(): void {
    this.#schedule(0)
  }

  /** Runs a round now (or right after the one in flight). */
  kick(): void {
    if (this.#stopped) return
    if (this.#round) this.#again = true
    else this.#schedule(0)
  }

  /** Stops after the round in flight, waiting for it at most `drainTimeout`. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    const round = this.#round
    if (!round) return
    let t: NodeJS.Timeout | undefined
    await Promise.race([round, new Promise((r) => (t = setTimeout(r, this.#o.drainTimeout)))])
    clearTimeout(t)
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#round = this.#run().finally(() => (this.#round = undefined))
    }, ms)
  }

  async #run(): Promise<void> {
    let busy = false
    let nextDue = Infinity
    for (const p of this.#parts) {
      if (this.#stopped) return
      try {
        if (await this.#partition(p)) busy = true
      } catch (err) {
        this.#report(err, p)
      }
      for (const h of (this.#state[p.index] as PartitionState).held.values())
        nextDue = Math.min(nextDue, h.dueAt)
    }
    const again = this.#again || busy
    this.#again = false
    const wait = again ? 0 : Math.min(this.#o.flushInterval, Math.max(0, nextDue - Date.now()))
    this.#schedule(wait)
  }

  #report(err: unknown, p: Partition): void {
    const msg = (err as Error | undefined)?.message ?? ''
    if (msg.includes('NOGROUP')) (this.#state[p.index] as PartitionState).groupReady = false
    const now = Date.now()
    if (now - this.#lastReport < 5_000) return
    this.#lastReport = now
    this.#b.report(err, 'write-behind.worker')
  }

  /** One round for one partition; true when a full batch was read (more may wait). */
  async #partition(p: Partition): Promise<boolean> {
    const o = this.#o
    const st = this.#state[p.index] as PartitionState
    const redis = o.redis
    if (!st.groupReady) {
      await redis.xgroup('CREATE', p.stream, o.group, '0', 'MKSTREAM').catch((err: unknown) => {
        if (!(err as Error).message.includes('BUSYGROUP')) throw err
      })
      st.groupReady = true
    }
    const now = Date.now()
    const fresh: QueuedEntry[] = []
    const bad: string[] = []
    if (now >= st.nextClaim) {
      const r = (await redis.callBuffer(
        'XAUTOCLAIM',
        p.stream,
        o.group,
        o.consumer,
        o.claimIdle,
        st.cursor,
        'COUNT',
        o.batchSize,
      )) as unknown[]
      st.cursor = String(r[0])
      if (st.cursor === '0-0') {
        st.nextClaim = now + o.claimIdle / 2
        await this.#forgetDeadConsumers(p)
      }
      const parsed = parseEntries(r[1])
      fresh.push(...parsed.entries)
      bad.push(...parsed.malformed)
    }
    let full = false
    const room = o.batchSize - st.held.size
    if (room > 0) {
      const r = await redis.callBuffer(
        'XREADGROUP',
        'GROUP',
        o.group,
        o.consumer,
        'COUNT',
        room,
        'STREAMS',
        p.stream,
        '>',
      )
      const parsed = parseEntries(streamEntries(r))
      fresh.push(...parsed.entries)
      bad.push(...parsed.malformed)
      full = parsed.entries.length + parsed.malformed.length >= room
    }
    if (bad.length > 0) {
      // Not written by a Strata queue: acknowledged and dropped, and reported.
      this.#b.report(
        new Error(`${bad.length} malformed stream entries dropped`),
        'write-behind.read',
      )
    }
    const superseded: string[] = [...bad]
    for (const e of fresh) {
      const h = st.held.get(e.id)
      if (!h) st.held.set(e.id, { e, attempts: 0, streak: 0, dueAt: 0, touchedAt: now })
      else if (e.version > h.e.version) {
        superseded.push(h.e.entry)
        h.e = e
        h.attempts = 0
        h.touchedAt = now
      } else if (e.entry !== h.e.entry) superseded.push(e.entry)
    }
    const due = await this.#claimDue(p, st, now)
    await this.#persist(p, st, due, superseded)
    return full
  }

  /**
   * Consumers that hold nothing and were idle for 10× claimIdle (replicas that stopped or
   * crashed: every restart joins under a new name) are removed from the group; the
   * "holds nothing" check and the removal are one script. A live consumer removed while
   * idle joins again with its next read.
   */
  async #forgetDeadConsumers(p: Partition): Promise<void> {
    const o = this.#o
    const raw = (await o.redis.xinfo('CONSUMERS', p.stream, o.group)) as unknown[][]
    for (const fields of raw) {
      const info = new Map<string, unknown>()
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1])
      const name = String(info.get('name'))
      if (name === o.consumer || Number(info.get('pending')) !== 0) continue
      if (Number(info.get('idle')) < 10 * o.claimIdle) continue
      await this.#r.strataWbForget(p.stream, o.group, name)
    }
  }

  /** Held entries due now, still this consumer's and still the newest write of their id. */
  async #claimDue(p: Partition, st: PartitionState, now: number): Promise<Held[]> {
    const o = this.#o
    let due = [...st.held.values()].filter((h) => h.dueAt <= now)
    const retries = due.filter((h) => h.attempts > 0 || h.streak > 0)
    if (retries.length > 0) {
      // Reset their idle time (so no one reclaims them mid-save) unless someone already did.
      const minIdle = Math.max(0, Math.min(...retries.map((h) => now - h.touchedAt)) - 50)
      const mine = new Set(
        // `call`: XCLAIM's typed overloads differ between ioredis 5 and 6.
        (
          (await o.redis.call(
            'XCLAIM',
            p.stream,
            o.group,
            o.consumer,
            minIdle,
            ...retries.map((h) => h.e.entry),
            'JUSTID',
          )) as (string | Buffer)[]
        ).map(String),
      )
      for (const h of retries) {
        if (mine.has(h.e.entry)) h.touchedAt = now
        else st.held.delete(h.e.id)
      }
      due = due.filter((h) => st.held.get(h.e.id) === h)
    }
    return due
  }

  async #persist(
    p: Partition,
    st: PartitionState,
    due: Held[],
    superseded: string[],
  ): Promise<void> {
    const c = this.counters
    let save: Held[] = []
    if (due.length > 0) {
      const current = await this.#o.redis.hmgetBuffer(p.pending, ...due.map((h) => h.e.id))
      due.forEach((h, i) => {
        if (pendingVersion(current[i]) === h.e.version) save.push(h)
        else {
          // A newer write of this id is queued (or was already persisted): this one is moot.
          superseded.push(h.e.entry)
          st.held.delete(h.e.id)
        }
      })
    }
    const failed = new Map<Held, unknown>()
    const values = new Map<Held, unknown>()
    for (const h of save) {
      if (h.e.op === 'delete') continue
      try {
        values.set(h, this.#b.decode(h.e.bytes, h.e.id))
      } catch (err) {
        h.attempts = this.#o.maxRetries - 1 // bytes do not heal: dead-letter now
        failed.set(h, err)
      }
    }
    save = save.filter((h) => !failed.has(h))
    await this.#call(save, values, failed)
    const ok = save.filter((h) => !failed.has(h))
    for (const h of ok) st.held.delete(h.e.id)
    const entries = [...superseded, ...ok.map((h) => h.e.entry)]
    if (entries.length > 0) {
      const pairs = ok.flatMap((h) => [h.e.id, h.e.version])
      await this.#r.strataWbDone(
        p.stream,
        p.pending,
        this.#o.group,
        entries.length,
        ...entries,
        ...pairs,
      )
    }
    c.persisted += ok.length
    c.superseded += superseded.length
    for (const [h, err] of failed) await this.#failed(p, st, h, err)
  }

  /** Calls the source: saveMany for a batch on its first attempt, else one call per write. */
  async #call(save: Held[], values: Map<Held, unknown>, failed: Map<Held, unknown>): Promise<void> {
    const { save: one, saveMany, remove } = this.#b.persist
    const sets = save.filter((h) => h.e.op === 'set')
    const dels = save.filter((h) => h.e.op === 'delete')
    const item = (h: Held): PersistItem => ({
      id: h.e.id,
      value: values.get(h),
      version: h.e.version,
    })
    const calls: Promise<void>[] = []
    const run = (hs: Held[], fn: () => unknown) =>
      calls.push(
        (async () => fn())().then(
          () => undefined,
          (err: unknown) => {
            for (const h of hs) failed.set(h, err)
          },
        ),
      )
    if (saveMany && sets.length > 1 && sets.every((h) => h.attempts === 0)) {
      run(sets, () => saveMany(sets.map(item)))
    } else {
      for (const h of sets) {
        const it = item(h)
        run([h], () => (one ? one(it.id, it.value, { version: it.version }) : saveMany?.([it])))
      }
    }
    for (const h of dels) {
      run([h], () => {
        if (!remove) throw new Error('the repository has no remove()')
        return remove(h.e.id, { version: h.e.version })
      })
    }
    await Promise.all(calls)
  }

  async #failed(p: Partition, st: PartitionState, h: Held, err: unknown): Promise<void> {
    const o = this.#o
    h.attempts++
    h.streak++
    const message = err instanceof Error ? err.message : String(err)
    if (h.attempts >= o.maxRetries) {
      await this.#r.strataWbDead(
        p.stream,
        p.pending,
        p.dead,
        o.group,
        h.e.entry,
        h.e.id,
        h.e.version,
        h.e.op === 'set' ? 's' : 'd',
        h.e.bytes,
        message.slice(0, 1_000),
        h.attempts,
      )
      st.held.delete(h.e.id)
      this.counters.deadLettered++
      this.#b.deadLettered({ id: h.e.id, version: h.e.version, error: message })
      return
    }
    this.counters.retried++
    // Exponential backoff with equal jitter: half the step fixed, half random.
    const step = Math.min(o.retryMax, o.retryBase * 2 ** Math.min(30, h.streak - 1))
    h.dueAt = Date.now() + step / 2 + Math.random() * (step / 2)
  }
}
