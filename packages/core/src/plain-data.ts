/** What a codec can carry besides plain objects, arrays and primitives. */
export interface PlainDataRules {
  /** Date, Map, Set, typed arrays, BigInt (msgpack, v8); false for JSON. @default true */
  rich?: boolean
  /** @default 64 */
  maxDepth?: number
  /** Objects, arrays and collection members visited at most (a shared-reference DAG cannot blow up). @default 1_000_000 */
  maxNodes?: number
}

const PLAIN_PROTOTYPES = new Set<unknown>([Object.prototype, null])

/**
 * Throws unless `value` is data the codec returns exactly as given: the one rule every
 * writer (before encoding) and every reader (after decoding) applies, so a writer
 * cannot accept what its readers refuse. Refused: functions, symbols, class instances
 * (their prototype would survive in the writer's L1 only), nesting past `maxDepth`,
 * more than `maxNodes` nodes; without `rich`, also Date, Map, Set, typed arrays, BigInt
 * and non-finite numbers (JSON would change them).
 */
export function assertPlainData(value: unknown, rules: PlainDataRules = {}): void {
  const rich = rules.rich ?? true
  const maxDepth = rules.maxDepth ?? 64
  let budget = rules.maxNodes ?? 1_000_000
  const walk = (v: unknown, depth: number): void => {
    if (--budget < 0) throw new Error('too many nested values')
    switch (typeof v) {
      case 'function':
      case 'symbol':
        throw new Error(`a ${typeof v} cannot be cached`)
      case 'bigint':
        if (!rich) throw new Error('a bigint cannot be encoded by this codec')
        return
      case 'number':
        if (!rich && !Number.isFinite(v))
          throw new Error(`${String(v)} cannot be encoded by this codec`)
        return
      case 'object':
        break
      default:
        return
    }
    if (v === null) return
    if (depth >= maxDepth) throw new Error(`nesting deeper than ${maxDepth}`)
    if (Array.isArray(v)) {
      for (const item of v) walk(item, depth + 1)
      return
    }
    if (v instanceof Date || ArrayBuffer.isView(v)) {
      if (!rich) throw new Error(`a ${v.constructor.name} cannot be encoded by this codec`)
      return
    }
    if (v instanceof Map || v instanceof Set) {
      if (!rich) throw new Error(`a ${v.constructor.name} cannot be encoded by this codec`)
      if (v instanceof Map) {
        for (const [k, item] of v) {
          walk(k, depth + 1)
          walk(item, depth + 1)
        }
      } else for (const item of v) walk(item, depth + 1)
      return
    }
    if (!PLAIN_PROTOTYPES.has(Object.getPrototypeOf(v))) {
      const name = (v as { constructor?: { name?: string } }).constructor?.name
      throw new Error(`a ${name || 'class'} instance cannot be cached (only plain data)`)
    }
    for (const key in v) walk((v as Record<string, unknown>)[key], depth + 1)
  }
  walk(value, 0)
}
