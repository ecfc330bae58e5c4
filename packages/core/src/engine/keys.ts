import { CacheError, errors, invalidOption } from '../errors.js'
import { PREFIX_PATTERN } from '../options.js'

/**
 * Key layout. L1 is private to this cache, so its keys need no prefix: root keys are the
 * caller's key as is (the hit path builds no string), namespaced keys are
 * `\u0001<ns>\u0001<key>`, and a root key that itself starts with \u0001 gets one more
 * (namespace names never start with \u0001, so nothing collides). L2 and the bus use the
 * full key `<prefix>:<ns>:<key>`; conversions happen on the slow path only.
 */
export class Keys {
  /** `<prefix>:` */
  readonly #p1: string
  /** `<prefix>::` (full keys of the root namespace) */
  readonly #rootFull: string
  readonly maxLength: number

  constructor(prefix: string, maxLength: number) {
    this.#p1 = `${prefix}:`
    this.#rootFull = `${prefix}::`
    this.maxLength = maxLength
  }

  /** The L1 key of `key` in the namespace whose L1 prefix is `kp` ('' for the root). Validates first. */
  l1Key(kp: string, key: unknown): string {
    return l1Key(kp, key, this.maxLength, this)
  }

  l1Keys(kp: string, keys: unknown): string[] {
    if (!Array.isArray(keys))
      throw new CacheError(errors.E_INVALID_KEY, '[core] expected an array of keys')
    return (keys as readonly unknown[]).map((k) => this.l1Key(kp, k))
  }

  invalid(key: unknown): CacheError {
    const what =
      typeof key === 'string'
        ? key.length === 0
          ? 'an empty string'
          : `${key.length} characters long`
        : `a ${typeof key}`
    return new CacheError(
      errors.E_INVALID_KEY,
      `[core] keys must be non-empty strings of at most ${this.maxLength} characters (got ${what})`,
    )
  }

  /** The L2 / bus key of an L1 key. */
  fullOf(k: string): string {
    if (k.charCodeAt(0) !== 1) return this.#rootFull + k
    if (k.charCodeAt(1) === 1) return this.#rootFull + k.slice(1)
    const end = k.indexOf('\u0001', 1)
    return `${this.#p1}${k.slice(1, end)}:${k.slice(end + 1)}`
  }

  /** The L1 key of a full key of this prefix (undefined for anything else). */
  l1Of(full: string): string | undefined {
    if (!full.startsWith(this.#p1)) return undefined
    const i = full.indexOf(':', this.#p1.length)
    if (i < 0) return undefined
    const ns = full.slice(this.#p1.length, i)
    const key = full.slice(i + 1)
    if (ns !== '') return `\u0001${ns}\u0001${key}`
    return key.charCodeAt(0) === 1 ? `\u0001${key}` : key
  }

  /** The L1 prefix of a full prefix (`''` = everything). */
  l1PrefixOf(fullPrefix: string): string | undefined {
    if (!fullPrefix.startsWith(this.#p1)) return undefined
    const rest = fullPrefix.slice(this.#p1.length)
    if (rest === '') return ''
    if (rest.endsWith(':')) return `\u0001${rest.slice(0, -1)}\u0001`
    if (rest.endsWith('/')) return `\u0001${rest}`
    return undefined
  }

  /** The full prefixes a clear of namespace `ns` ('' = root) covers. */
  clearPrefixes(prefix: string, ns: string): string[] {
    return ns ? [`${prefix}:${ns}:`, `${prefix}:${ns}/`] : [`${prefix}:`]
  }
}

/** Maps the strings of a bus message through `f`, dropping what is not ours (undefined). */
export function mapOwn(
  items: readonly unknown[] | undefined,
  f: (s: string) => string | undefined,
): string[] {
  const out: string[] = []
  for (const item of items ?? []) {
    const mapped = typeof item === 'string' ? f(item) : undefined
    if (mapped !== undefined) out.push(mapped)
  }
  return out
}

/** The path of namespace `name` under `parent` ('' = root), validating the name. */
export function namespacePath(parent: string, name: unknown): string {
  if (typeof name !== 'string' || !PREFIX_PATTERN.test(name)) {
    throw invalidOption(
      'core',
      'namespace',
      `names must be 1-64 characters of letters, digits, '_', '-', '.' (got ${JSON.stringify(name)})`,
    )
  }
  return parent ? `${parent}/${name}` : name
}

/** The one key check and mapping (a plain function: it is on the L1 hit path). */
export function l1Key(kp: string, key: unknown, max: number, keys: Keys): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > max) throw keys.invalid(key)
  if (kp !== '') return kp + key
  return key.charCodeAt(0) === 1 ? `\u0001${key}` : key
}
