import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import type { AdapterFactory } from './types.js'

export const bentocache: AdapterFactory = async ({ mode, redisUrl, prefix, maxEntries }) => {
  const { hostname, port } = new URL(redisUrl)
  const connection = { host: hostname, port: Number(port) }
  let store = bentostore()
  if (mode !== 'l2')
    store = store.useL1Layer(memoryDriver({ maxItems: maxEntries ?? 100_000, maxSize: '512mb' }))
  if (mode !== 'l1') store = store.useL2Layer(redisDriver({ connection, prefix }))
  if (mode === 'tiered') store = store.useBus(redisBusDriver({ connection }))
  const bento = new BentoCache({ default: 'c', prefix, ttl: '1h', stores: { c: store } })
  // The bus subscribes asynchronously; give it a moment (there is no ready signal).
  if (mode === 'tiered') await new Promise((r) => setTimeout(r, 200))
  return {
    name: `bentocache (${mode === 'tiered' ? 'L1+L2+bus' : mode === 'l1' ? 'memory' : 'redis'})`,
    get: (key) => bento.get({ key }),
    getOrSet: (key, factory) => bento.getOrSet({ key, factory }),
    set: async (key, value) => {
      await bento.set({ key, value })
    },
    delete: async (key) => {
      await bento.delete({ key })
    },
    getMany: (keys) => Promise.all(keys.map((key) => bento.get({ key }))),
    close: () => bento.disconnectAll(),
  }
}
