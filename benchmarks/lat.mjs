import { startRedis } from '@strata/testing'
import { createCache } from '@strata/core'
import { redisL2 } from '@strata/l2-redis'
import { Redis } from 'ioredis'
import { Unpackr } from 'msgpackr'
const r = await startRedis()
const u = new Unpackr({ useRecords: true, moreTypes: true })
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((p / 100) * s.length)]
}
const raw = new Redis(r.url)
const rawAp = new Redis(r.url, { enableAutoPipelining: true })
const c1 = createCache({
  prefix: 'a',
  l2: redisL2({ redis: r.url, autoPipelining: true }),
  telemetry: false,
})
const c2 = createCache({
  prefix: 'b',
  l2: redisL2({ redis: r.url, autoPipelining: false }),
  telemetry: false,
})
await c1.set('k', { a: 1, b: 'x'.repeat(200) })
await c2.set('k', { a: 1, b: 'x'.repeat(200) })
const fns = {
  raw: async () => u.unpack((await raw.getBuffer('{a::k}')).subarray(1)),
  rawAutoPipeline: async () => u.unpack((await rawAp.getBuffer('{a::k}')).subarray(1)),
  strataAP: () => c1.get('k'),
  strataNoAP: () => c2.get('k'),
}
const xs = Object.fromEntries(Object.keys(fns).map((k) => [k, []]))
for (let i = 0; i < 6000; i++)
  for (const [k, f] of Object.entries(fns)) {
    const t = performance.now()
    await f()
    if (i > 1000) xs[k].push(performance.now() - t)
  }
for (const k of Object.keys(fns))
  console.log(
    k.padEnd(16),
    'p50',
    (pct(xs[k], 50) * 1000).toFixed(0),
    'µs  p99',
    (pct(xs[k], 99) * 1000).toFixed(0),
  )
raw.disconnect()
rawAp.disconnect()
await c1.close()
await c2.close()
await r.stop()
