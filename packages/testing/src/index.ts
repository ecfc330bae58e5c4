export {
  startRedis,
  type RedisHandle,
  type StartRedisOptions,
  type RedisSource,
} from './start-redis.js'
export { startRedisCluster, type RedisClusterHandle } from './cluster.js'
export { startSentinelGroup, type SentinelGroupHandle } from './sentinel.js'
export { sweepStaleServers } from './redis-server.js'
export { findFreePort, ping, waitFor } from './net.js'
export { startTcpProxy, type TcpProxyHandle, type ProxyMatch } from './proxy.js'
export { spawnChild, serveParent, forkService, type ChildHandle } from './child.js'
export { commandstats } from './commandstats.js'
export { deferred } from './deferred.js'
