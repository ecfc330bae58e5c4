export { createCache, Cache } from './cache.js'
export type { LoaderContext, Loader, BatchLoader, EngineHooks } from './engine/index.js'
export type { CacheOptions, TimeoutOptions } from './options.js'
export type { EntryOptions, GetOptions, SetManyItem } from './call.js'
export { Repository, type RepositoryOptions, type RepositoryStats } from './repository.js'
export type { WarmOptions, WarmResult } from './warm.js'
export type { HotSetOptions, WarmStartOptions } from './engine/hot-set.js'
export type { BoundGuard, Guard, GuardBinding, GuardStats, RebuildReport } from './guard.js'
export type {
  PendingWrite,
  Persistence,
  PersistItem,
  WriteBehind,
  WriteBehindBinding,
  WriteBehindQueue,
  WriteOp,
  WriteQueueStats,
} from './write-behind.js'
export { CacheError, errors, invalidOption, type ErrorCode } from './errors.js'
export { toMs, type Duration } from './duration.js'
export { withDeadline } from './deadline.js'
export { silentLogger, type Logger } from './logger.js'
export type { CacheHealth } from './health.js'
export { defineScripts, ioredisKind, type IoredisClientLike, type ScriptHost } from './scripts.js'
export { systemClock } from './clock.js'
export {
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  type TelemetryOptions,
} from './telemetry.js'
export { jsonCodec, createJsonCodec, v8Codec, FormatByte, type JsonCodecOptions } from './codec.js'
export {
  compressedCodec,
  encryptedCodec,
  type CompressedCodecOptions,
  type EncryptedCodecOptions,
} from './codecs.js'
export { assertPlainData, type PlainDataRules } from './plain-data.js'
export { isEntry, envelope } from './entry.js'
export {
  Emitter,
  type CacheEvents,
  type CacheEventName,
  type CacheStats,
  type Tier,
  type Listener,
} from './events.js'
export { MemoryL2, memoryL2, type MemoryL2Options } from './memory/l2.js'
export { MemoryBus, MemoryBusHub, memoryBus } from './memory/bus.js'
export {
  L1Record,
  BusOp,
  BusState,
  EvictionReason,
  type BusContext,
  type BusDriver,
  type BusMessage,
  type Clock,
  type Codec,
  type Entry,
  type L1Driver,
  type L1Entry,
  type L2Driver,
  type L2Leases,
  type L2Locks,
  type L2ReadResult,
  type L2SetItem,
  type L2FillItem,
  type L2Tags,
  type L2HotSet,
  type L2Health,
  type TimerHandle,
} from './contracts.js'
