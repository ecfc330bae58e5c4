import type { Entry } from '../contracts.js'
import type { CallPolicy } from '../call.js'
import type { Probe } from '../telemetry.js'
import type { Outcome } from './flight.js'
import type { L1Tier } from './l1.js'
import type { L2Answer, L2Tier } from './l2.js'
import type { Shared } from './shared.js'
import { staleServed } from './fail-safe.js'

/**
 * The steps every read shares — the L2 hit (counted, the hook, a guarded L1 fill, the
 * event) and the miss — and the reads that never load: `get` and `getMany` are these
 * steps alone; the loading reads (`ReadPipeline`) run them too.
 */
export class ReadSteps {
  readonly #s: Shared
  readonly #l1: L1Tier | undefined
  readonly #l2: L2Tier | undefined

  constructor(shared: Shared, l1: L1Tier | undefined, l2: L2Tier | undefined) {
    this.#s = shared
    this.#l1 = l1
    this.#l2 = l2
  }

  // ------------------------------------------------------------ shared steps

  /** A fresh entry read from L2, handed to a caller: the hit step, then its outcome. */
  async l2Served(key: string, entry: Entry, start: number, p: CallPolicy): Promise<Outcome> {
    await this.l2Hit(key, entry, start, p)
    return { entry, tier: 'l2', stale: false }
  }

  /**
   * A fresh entry read from L2: counted, the hook, a guarded L1 fill, the event. Returns
   * a promise only while a test hook runs before the fill (so `get` has no hop here).
   */
  l2Hit(
    key: string,
    entry: Entry,
    start: number,
    p: CallPolicy | undefined,
  ): Promise<void> | undefined {
    const s = this.#s
    s.counters.l2Hits++
    const hook = s.hooks?.beforeL1Fill
    if (hook) return Promise.resolve(hook(key)).then(() => this.#l2Filled(key, entry, start, p))
    this.#l2Filled(key, entry, start, p)
    return undefined
  }

  #l2Filled(key: string, entry: Entry, start: number, p: CallPolicy | undefined): void {
    const s = this.#s
    this.#l1?.fill(key, entry, start, p, p !== undefined)
    if (s.events.has.hit)
      s.events.emit('hit', { key: s.keys.fullOf(key), tier: 'l2', stale: false })
  }

  /**
   * Begins the guard that orders a read's L1 fill against invalidations; returns its
   * epoch. Without an L1 there is nothing to order: no record, epoch 0. Pair with
   * `endFillGuard`.
   */
  beginFillGuard(key: string): number {
    return this.#l1 ? this.#s.guard.begin(key) : 0
  }

  endFillGuard(key: string): void {
    if (this.#l1) this.#s.guard.end(key)
  }

  miss(key: string): void {
    const s = this.#s
    if (this.#l2) s.counters.l2Misses++
    if (s.events.has.miss) s.events.emit('miss', { key: s.keys.fullOf(key) })
  }

  // --------------------------------------------------------------- get path

  /** `get` after an L1 miss (L2 only, never loads); `allowStale`: a value within grace will do. */
  getOne(k: string, probe?: Probe, allowStale = false): Promise<unknown> {
    if (this.#l1) this.#s.counters.l1Misses++
    return this.get([k], [0], [undefined], probe, allowStale)
  }

  /**
   * After L1 missed `idx` of `keys`: one L2 batch, guarded L1 fills; values land in `out`.
   * Never loads. Resolves `out[idx[0]]` (what `getOne` returns). Promise chains rather
   * than async frames: a lone `get` waits on each hop.
   */
  get(
    keys: readonly string[],
    idx: readonly number[],
    out: unknown[],
    probe?: Probe,
    allowStale = false,
  ): Promise<unknown> {
    const l2 = this.#l2
    const missing = idx.map((i) => keys[i] as string)
    const first = () => out[idx[0] as number]
    if (!l2) {
      missing.forEach((k, j) => this.#staleOrMiss(k, undefined, idx[j] as number, out, allowStale))
      return Promise.resolve(first())
    }
    const starts = missing.map((k) => this.beginFillGuard(k))
    const end = () => {
      for (const k of missing) this.endFillGuard(k)
    }
    const failed = (err: unknown) => {
      end()
      throw err
    }
    return l2.read(missing, false).then((found) => {
      let hooked: Promise<void> | undefined
      try {
        hooked = this.#served(missing, found, starts, idx, out, probe, allowStale, 0)
      } catch (err) {
        return failed(err)
      }
      if (!hooked) {
        end()
        return first()
      }
      return hooked.then(() => {
        end()
        return first()
      }, failed)
    }, failed)
  }

  /**
   * `get`'s answers from `from` on: hits to `out` (and L1), the rest stale or a miss. A
   * promise only when a test hook runs before an L1 fill: the keys after it wait for it.
   */
  #served(
    missing: readonly string[],
    found: readonly L2Answer[],
    starts: readonly number[],
    idx: readonly number[],
    out: unknown[],
    probe: Probe | undefined,
    allowStale: boolean,
    from: number,
  ): Promise<void> | undefined {
    const s = this.#s
    const now = s.o.clock.now()
    for (let j = from; j < missing.length; j++) {
      const k = missing[j] as string
      const e = (found[j] as L2Answer).entry
      if (!servable(e, now)) {
        this.#staleOrMiss(k, e, idx[j] as number, out, allowStale)
        continue
      }
      const hooked = this.l2Hit(k, e, starts[j] as number, undefined)
      out[idx[j] as number] = s.out(e.value)
      if (probe) {
        probe.tier = 'l2'
        probe.hit = true
      }
      if (hooked) {
        return hooked.then(() =>
          this.#served(missing, found, starts, idx, out, probe, allowStale, j + 1),
        )
      }
    }
    return undefined
  }

  /** No fresh value: with `allowStale`, L2's entry within grace, else this replica's L1 copy; else a miss. */
  #staleOrMiss(
    k: string,
    e: Entry | undefined,
    i: number,
    out: unknown[],
    allowStale: boolean,
  ): void {
    const s = this.#s
    const stale = !allowStale
      ? undefined
      : e && e.staleUntil > s.o.clock.now()
        ? e
        : this.#l1?.stale(k)
    if (!stale) return this.miss(k)
    staleServed(s, k, stale)
    out[i] = s.out(stale.value)
  }

  /** `getMany`: one L1 pass, one L2 batch for what L1 missed. Values in key order. */
  async getMany(keys: readonly string[], probe?: Probe): Promise<unknown[]> {
    const out = new Array<unknown>(keys.length)
    const missing = this.#l1 ? this.#l1.readMany(keys, out) : keys.map((_, i) => i)
    if (probe) {
      probe.tier = missing.length === 0 ? 'l1' : this.#l2 ? 'l2' : 'none'
      probe.hit = missing.length === 0
    }
    if (missing.length > 0) await this.get(keys, missing, out)
    return out
  }
}

/** Fresh enough to serve. */
export function servable(e: Entry | undefined, now: number): e is Entry {
  return e !== undefined && e.freshUntil > now
}
