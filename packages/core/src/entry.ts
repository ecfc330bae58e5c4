import type { Entry } from './contracts.js'

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

/**
 * Checks a decoded object is an entry core can trust: bytes in L2 may be corrupt or
 * hostile, and a wrong shape must become a miss, never a poisoned object.
 */
export function isEntry(v: unknown): v is Entry {
  if (typeof v !== 'object' || v === null) return false
  const e = v as Record<string, unknown>
  if (!('value' in e) || e['value'] === undefined) return false
  if (!isFiniteNumber(e['createdAt']) || !isFiniteNumber(e['freshUntil'])) return false
  if (!isFiniteNumber(e['staleUntil']) || !isFiniteNumber(e['version'])) return false
  const tags = e['tags']
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) return false
  const tv = e['tagVersions']
  if (
    tv !== undefined &&
    (!Array.isArray(tv) || tv.length !== tags.length || !tv.every(isFiniteNumber))
  ) {
    return false
  }
  const neg = e['negative']
  return neg === undefined || typeof neg === 'boolean'
}

/** Plain-object view of an entry with only the envelope fields (what codecs store). */
export function envelope(entry: Entry): Entry {
  const out: Entry = {
    value: entry.value,
    createdAt: entry.createdAt,
    freshUntil: entry.freshUntil,
    staleUntil: entry.staleUntil,
    tags: entry.tags,
    version: entry.version,
  }
  if (entry.tagVersions !== undefined) out.tagVersions = entry.tagVersions
  if (entry.negative) out.negative = true
  return out
}
