import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startRedis } from '@strata/testing'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../../', import.meta.url))

/** pnpm packs with `workspace:` ranges replaced by versions (npm pack would not). */
function pnpm(): [string, string[]] {
  try {
    execFileSync('pnpm', ['--version'], { stdio: 'ignore' })
    return ['pnpm', []]
  } catch {
    return ['npx', ['-y', 'pnpm@10']]
  }
}
const PACKAGES = ['core', 'l1-memory', 'l2-redis', 'bus-redis-pubsub']

/** The README's "A first cache", with an in-memory stand-in for the database. */
const FIRST_CACHE = `
import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { redisPubSubBus } from '@strata/bus-redis-pubsub'

const db = { products: { find: async (id) => ({ id, name: 'Tea' }), update: async () => undefined } }
const id = 42, patch = {}
const cache = createCache({
  prefix: 'shop',
  l1: memoryL1({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 }),
  l2: redisL2({ redis: process.env.REDIS_URL }),
  bus: redisPubSubBus({ redis: process.env.REDIS_URL }),
  ttl: '1m',
  grace: '1h',
  timeouts: { soft: 50, hard: 2_000 },
})

const product = await cache.getOrSet(\`product:\${id}\`, () => db.products.find(id), {
  tags: ['products'],
})
await db.products.update(id, patch)
await cache.delete(\`product:\${id}\`) // every replica drops its L1 copy
await cache.ready()
console.log(JSON.stringify({ product, health: (await cache.health()).status }))
await cache.close()
`

describe('a release a user can install', () => {
  it('the packed tarballs install with npm into a fresh project and the README example runs against redis-server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-release-'))
    const redis = await startRedis({ source: 'binary' })
    try {
      const [bin, pre] = pnpm()
      for (const p of PACKAGES) {
        execFileSync(bin, [...pre, 'pack', '--pack-destination', dir], {
          cwd: join(root, 'packages', p),
          stdio: 'ignore',
        })
      }
      const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'))
      expect(tarballs).toHaveLength(PACKAGES.length)
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'strata-user', private: true, type: 'module' }),
      )
      execFileSync(
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
          'ioredis@^5',
          ...tarballs.map((t) => `./${t}`),
        ],
        { cwd: dir, stdio: 'ignore' },
      )
      writeFileSync(join(dir, 'first-cache.mjs'), FIRST_CACHE)
      const out = execFileSync(process.execPath, ['first-cache.mjs'], {
        cwd: dir,
        env: { ...process.env, REDIS_URL: redis.url },
        encoding: 'utf8',
      })
      expect(JSON.parse(out.trim().split('\n').at(-1) as string)).toEqual({
        product: { id: 42, name: 'Tea' },
        health: 'ok',
      })
    } finally {
      await redis.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
