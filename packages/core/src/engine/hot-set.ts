import type { L2HotSet } from '../contracts.js'
import { toMs, type Duration } from '../duration.js'
import { invalidOption } from '../errors.js'
import type { Shared } from './shared.js'

export interface HotSetOptions {
  /** How often this replica merges its hottest keys into the fleet's set. @default '30s' */
  interval?: Duration
  /** Keys this replica contributes per merge. @default 1000 */
  top?: number
  /** Keys the fleet's set keeps per namespace. @default 10 000 */
  max?: number
}

export interface WarmStartOptions {
  /** How many of the fleet's hottest keys a new replica loads into L1 before `ready()`. */
  keys: number
  /** The most `ready()` waits for it; what is not loaded by then is skipped. @default '2s' */
  budget?: Duration
}

export interface HotSetResolved {
  interval: number
  top: number
  max: number
}

export function resolveHotSet(
  hot: HotSetOptions | false | undefined,
  warm: WarmStartOptions | undefined,
  l2Hot: boolean,
): { hotSet: HotSetResolved | false; warmStart: { keys: number; budget: number } | undefined } {
  const int = (v: unknown, name: string, fallback: number) => {
    if (v === undefined) return fallback
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > 1_000_000) {
      throw invalidOption('core', name, 'must be an integer in [1, 1000000]')
    }
    return v as number
  }
  let hotSet: HotSetResolved | false = false
  if (hot !== false && l2Hot) {
    const h = hot ?? {}
    hotSet = {
      interval: toMs(h.interval, 'hotSet.interval') ?? 30_000,
      top: int(h.top, 'hotSet.top', 1_000),
      max: int(h.max, 'hotSet.max', 10_000),
    }
    if (hotSet.interval < 100)
      throw invalidOption('core', 'hotSet.interval', 'must be at least 100ms')
  }
  if (warm === undefined) return { hotSet, warmStart: undefined }
  if (!l2Hot)
    throw invalidOption(
      'core',
      'warmStart',
      'needs an L2 driver with a hot set (redisL2) and an l1',
    )
  return {
    hotSet,
    warmStart: {
      keys: int(warm.keys, 'warmStart.keys', 0),
      budget: toMs(warm.budget, 'warmStart.budget') ?? 2_000,
    },
  }
}

/** Samples one L1 hit in this many (a power of two: a mask on the hit counter). */
export const HOT_SAMPLE_MASK = 15

/**
 * The replica's hottest L1 keys: a sampled hit count per key (1 in 16 hits, so the L1
 * hit path pays a mask test), merged into the fleet's set in L2 every `interval` and then
 * halved (decay). A replica started with `warmStart` loads the fleet's hottest keys from
 * L2 into its L1 before `ready()` (no loader calls).
 */
export class HotSet {
  readonly #s: Shared
  readonly #store: L2HotSet
  readonly #o: HotSetResolved
  #counts = new Map<string, number>()
  readonly #timer: ReturnType<typeof setInterval>

  constructor(shared: Shared, store: L2HotSet, o: HotSetResolved) {
    this.#s = shared
    this.#store = store
    this.#o = o
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), o.interval)
    this.#timer.unref()
  }

  /** One sampled hit of L1 key `k`. */
  touch(k: string): void {
    const counts = this.#counts
    counts.set(k, (counts.get(k) ?? 0) + 1)
    if (counts.size > this.#o.top * 8) this.#decay()
  }

  /** Merges this replica's top keys into the fleet's set, per namespace, then decays. */
  async flush(): Promise<void> {
    const s = this.#s
    const top = [...this.#counts].sort((a, b) => b[1] - a[1]).slice(0, this.#o.top)
    this.#decay()
    const byNs = new Map<string, { key: string; score: number }[]>()
    for (const [k, score] of top) {
      const ns = namespaceOf(k)
      let list = byNs.get(ns)
      if (!list) byNs.set(ns, (list = []))
      list.push({ key: s.keys.fullOf(k), score })
    }
    for (const [ns, items] of byNs) {
      await this.#store.pushHot(s.o.prefix, ns, items, this.#o.max, this.#o.interval)
    }
  }

  #decay(): void {
    const next = new Map<string, number>()
    for (const [k, n] of this.#counts) if (n > 1) next.set(k, n >> 1)
    this.#counts = next
  }

  close(): void {
    clearInterval(this.#timer)
  }
}

/** The fleet's hottest L1 keys (full keys from L2 mapped back; foreign ones dropped). */
export async function hottest(shared: Shared, store: L2HotSet, n: number): Promise<string[]> {
  const full = await store.topHot(shared.o.prefix, n)
  const out: string[] = []
  for (const f of full) {
    const k = shared.keys.l1Of(f)
    if (k !== undefined) out.push(k)
  }
  return out
}

/** The namespace path of an L1 key ('' for the root). */
function namespaceOf(k: string): string {
  if (k.charCodeAt(0) !== 1) return ''
  const end = k.indexOf('\u0001', 1)
  return end > 0 ? k.slice(1, end) : ''
}
