import { memoryL2, MemoryBusHub } from '@strata/core'
import { busDriverSuite, createFakeClock, l1DriverSuite, l2DriverSuite } from '@strata/core/testing'
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
