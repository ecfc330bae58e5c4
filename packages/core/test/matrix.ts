import {
  createCache,
  memoryL2,
  MemoryBusHub,
  type Cache,
  type CacheOptions,
  type MemoryL2,
} from '@strata/core'
import { createFakeClock, type FakeClock } from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'

export type Tiers = 'l1' | 'l2' | 'l1+l2' | 'l1+l2+bus'
export const MATRIX: Tiers[] = ['l1', 'l2', 'l1+l2', 'l1+l2+bus']

export interface Setup {
  tiers: Tiers
  clock: FakeClock
  cache: Cache
  /** A second replica sharing L2 and the bus (only for 'l1+l2+bus'). */
  peer: Cache | undefined
  l2: MemoryL2 | undefined
  hub: MemoryBusHub | undefined
  close(): Promise<void>
}

export function setup(
  tiers: Tiers,
  options: Omit<CacheOptions, 'l1' | 'l2' | 'bus' | 'clock'> = {},
): Setup {
  const clock = createFakeClock()
  const l2 = tiers === 'l1' ? undefined : memoryL2({ clock })
  const hub = tiers === 'l1+l2+bus' ? new MemoryBusHub() : undefined
  const make = () =>
    createCache({
      prefix: 'test',
      ...options,
      clock,
      ...(tiers === 'l2' ? {} : { l1: memoryL1({ maxEntries: 10_000, clock }) }),
      ...(l2 ? { l2 } : {}),
      ...(hub ? { bus: hub.bus() } : {}),
    })
  const cache = make()
  const peer = hub ? make() : undefined
  return {
    tiers,
    clock,
    cache,
    peer,
    l2,
    hub,
    async close() {
      await cache.close()
      await peer?.close()
    },
  }
}

export { deferred } from '@strata/testing'

/** Lets queued promise callbacks and microtask-delivered bus messages run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r))
}
