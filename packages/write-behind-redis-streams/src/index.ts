export { redisStreamsWriteBehind } from './queue.js'
export type { RedisStreamsWriteBehindOptions } from './options.js'
export { partitions, partitionOf, type Partition } from './entries.js'
