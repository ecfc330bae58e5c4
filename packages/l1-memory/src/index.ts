export { MemoryL1, memoryL1, type MemoryL1Options } from './memory-l1.js'
export { estimateSize } from './size.js'
