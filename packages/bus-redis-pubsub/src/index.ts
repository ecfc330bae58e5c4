export {
  RedisPubSubBus,
  redisPubSubBus,
  type RedisPubSubBusOptions,
  type HeartbeatOptions,
} from './redis-pubsub-bus.js'
export {
  channelName,
  decodeMessage,
  encodeMessage,
  HEARTBEAT,
  WIRE_VERSION,
  type WireMessage,
} from './message.js'
export { BusAuth, type BusAuthOptions, type Rejection } from './auth.js'
