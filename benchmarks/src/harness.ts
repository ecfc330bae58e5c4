/** Measurement helpers: every number is a median over interleaved rounds. */

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return Number.NaN
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2
}

export const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}

/** Ops/s of an awaited operation, run for about `ms` (bounded by time and by count). */
export async function throughput(
  op: () => unknown,
  ms: number,
  maxOps = 50_000_000,
): Promise<number> {
  const batch = 1_000
  let ops = 0
  const start = performance.now()
  const end = start + ms
  while (performance.now() < end && ops < maxOps) {
    for (let i = 0; i < batch; i++) await op()
    ops += batch
  }
  return (ops * 1_000) / (performance.now() - start)
}

/** Ops/s of a synchronous operation. */
export function throughputSync(op: () => unknown, ms: number, maxOps = 200_000_000): number {
  const batch = 10_000
  let ops = 0
  let sink = 0
  const start = performance.now()
  const end = start + ms
  while (performance.now() < end && ops < maxOps) {
    for (let i = 0; i < batch; i++) if (op() !== undefined) sink++
    ops += batch
  }
  if (sink < 0) console.log(sink)
  return (ops * 1_000) / (performance.now() - start)
}

/** Ops/s with `inFlight` concurrent callers. */
export async function concurrentThroughput(
  op: (i: number) => Promise<unknown>,
  inFlight: number,
  ms: number,
  maxOps = 5_000_000,
): Promise<number> {
  let ops = 0
  const start = performance.now()
  const end = start + ms
  const worker = async () => {
    while (performance.now() < end && ops < maxOps) await op(ops++)
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  return (ops * 1_000) / (performance.now() - start)
}

/** Latencies (ms) of `count` sequential calls. */
export async function latencies(
  op: (i: number) => Promise<unknown>,
  count: number,
): Promise<number[]> {
  const out = new Array<number>(count)
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await op(i)
    out[i] = performance.now() - t
  }
  return out
}

export interface Measured {
  contender: string
  samples: number[]
}

/**
 * Runs every contender `rounds` times, rotating the order each round so that no
 * contender always runs first (JIT warm-up, GC debt and CPU frequency spread evenly).
 * `warmup` rounds run first, the same way, and are not recorded.
 */
export async function interleave<T = number>(
  contenders: string[],
  rounds: number,
  run: (contender: string, round: number) => Promise<T>,
  warmup = 0,
): Promise<Map<string, T[]>> {
  const out = new Map<string, T[]>(contenders.map((c) => [c, []]))
  for (let r = 0; r < warmup + rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length] as string)
    for (const c of order) {
      const result = await run(c, r)
      if (r >= warmup) out.get(c)?.push(result)
    }
  }
  return out
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'

export function table(head: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String))
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) =>
    '| ' +
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ') +
    ' |'
  return [
    line(head),
    '|' +
      widths
        .map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':'))
        .join('|') +
      '|',
    ...cells.map(line),
  ].join('\n')
}

/** Zipf sampler over [0, n) with exponent s (inverse CDF on a precomputed table). */
export function zipf(n: number, s: number, seed = 1): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 1; k <= n; k++) sum += 1 / k ** s
  let acc = 0
  for (let k = 1; k <= n; k++) {
    acc += 1 / k ** s / sum
    cdf[k - 1] = acc
  }
  let state = seed >>> 0
  const random = () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cdf[mid] as number) < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const sampleObject = (i: number) => ({
  id: i,
  sku: `SKU-${String(i).padStart(8, '0')}`,
  name: `Product number ${i} with a reasonably descriptive name`,
  description: 'A compact, sturdy item for everyday use; ships in recyclable packaging.',
  priceCents: 1999 + (i % 500),
  currency: 'EUR',
  stock: i % 250,
  tags: ['home', 'kitchen', 'bestseller'],
  updatedAt: '2026-11-22T05:25:15.000Z',
  active: true,
})
