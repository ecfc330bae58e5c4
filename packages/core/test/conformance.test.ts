import { createCache, memoryL2, MemoryBusHub } from '@strata/core'
import {
  busDriverSuite,
  cacheBehaviourSuite,
  createFakeClock,
  l1DriverSuite,
  l2DriverSuite,
} from '@strata/core/testing'
import { memoryL1 } from '@strata/l1-memory'

const clock = createFakeClock()
l2DriverSuite('memoryL2', {
  create: () => memoryL2({ clock }),
  prefix: 'conf',
  wait: async (ms) => clock.advance(ms),
})

const hub = new MemoryBusHub()
busDriverSuite('memoryBus', {
  create: (n) => Array.from({ length: n }, () => hub.bus()),
  channel: 'conf',
})

// l1-memory runs this suite in its own package too; core keeps it here as the reference driver.
l1DriverSuite('memoryL1 (reference)', {
  create: ({ maxEntries, clock: c }) => memoryL1({ maxEntries, clock: c }),
})

let seq = 0
for (const tiers of ['l1', 'l2', 'l1+l2', 'l1+l2+bus'] as const) {
  cacheBehaviourSuite(`memory tiers ${tiers}`, {
    create: () => {
      const prefix = `beh${seq++}`
      return createCache({
        prefix,
        ...(tiers === 'l2' ? {} : { l1: memoryL1() }),
        ...(tiers === 'l1' ? {} : { l2: memoryL2() }),
        ...(tiers === 'l1+l2+bus' ? { bus: hub.bus() } : {}),
      })
    },
  })
}
