export { RedisL2, redisL2, type RedisL2Options } from './redis-l2.js'
export {
  msgpackCodec,
  jsonCodecReadingMsgpack,
  MSGPACK_V1,
  type MsgpackCodecOptions,
} from './codec.js'
export { Breaker, type BreakerOptions } from './breaker.js'
export {
  redisBloomGuard,
  bloomSizing,
  positions as bloomPositions,
  type RedisBloomGuardOptions,
} from './bloom-guard.js'
