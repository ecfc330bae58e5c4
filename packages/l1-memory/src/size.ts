/**
 * A cheap estimate of the heap bytes an entry holds, for `maxBytes`. It walks the value
 * once with a node budget (big values are extrapolated, not walked in full): strings as
 * UTF-16 (2 bytes a char), numbers 8, typed arrays their byteLength, objects 32 plus
 * their keys and values. It is an estimate, not a measurement: use it to bound memory,
 * not to account for it exactly.
 */
const ENTRY_OVERHEAD = 160
const BUDGET = 2_000

export function estimateSize(value: unknown): number {
  let budget = BUDGET
  const walk = (v: unknown, depth: number): number => {
    if (--budget < 0) return 8
    switch (typeof v) {
      case 'string':
        return 16 + v.length * 2
      case 'number':
      case 'bigint':
        return 8
      case 'boolean':
      case 'undefined':
      case 'symbol':
      case 'function':
        return 4
      case 'object': {
        if (v === null) return 4
        if (ArrayBuffer.isView(v)) return 64 + v.byteLength
        if (v instanceof Date) return 48
        if (depth > 8) return 64
        if (Array.isArray(v)) {
          let sum = 32 + v.length * 8
          const n = v.length
          const step = n > 200 ? Math.ceil(n / 200) : 1
          let seen = 0
          for (let i = 0; i < n; i += step) {
            sum += walk(v[i], depth + 1)
            seen++
          }
          return step > 1 ? Math.round((sum * n) / Math.max(seen, 1)) : sum
        }
        if (v instanceof Map || v instanceof Set) {
          let sum = 64
          for (const item of v instanceof Map ? v.entries() : v.values())
            sum += 16 + walk(item, depth + 1)
          return sum
        }
        let sum = 32
        for (const k in v) {
          if (!Object.hasOwn(v, k)) continue
          sum += 16 + k.length * 2 + walk((v as Record<string, unknown>)[k], depth + 1)
        }
        return sum
      }
    }
  }
  return ENTRY_OVERHEAD + walk(value, 0)
}
