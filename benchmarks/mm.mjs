import { startRedis } from '@strata/testing'
import { strata } from './dist/adapters/strata.js'
import { raw } from './dist/adapters/raw.js'
const r = await startRedis()
const sleep = (ms) => new Promise((res) => setTimeout(res, ms))
const which = process.argv[2]
for (const [name, f, mode] of [
  ['raw tiered', raw, 'tiered'],
  ['strata tiered', strata, 'tiered'],
  ['strata l2', strata, 'l2'],
].filter((x) => !which || x[0].startsWith(which))) {
  const a = await f({ mode, redisUrl: r.url, prefix: 'p' + Math.random() })
  const times = []
  for (let round = 0; round < 20; round++) {
    const t = performance.now()
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        a.getOrSet(`k${round}:${i}`, () => sleep(1).then(() => ({ a: i }))),
      ),
    )
    times.push(performance.now() - t)
  }
  times.sort((x, y) => x - y)
  console.log(name, 'median', times[10].toFixed(1), 'ms')
  await a.close()
}
await r.stop()
