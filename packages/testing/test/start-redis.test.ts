import { execFileSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ping, startRedis, type RedisHandle } from '../src/index.js'

function client(handle: RedisHandle): Redis {
  return new Redis(handle.port, handle.host, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
}

describe.skipIf(process.env['REDIS_URL'])('startRedis with a local redis-server', () => {
  let redis: RedisHandle
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis.stop()
  })

  it('starts an isolated server on a free loopback port with debug commands enabled', async () => {
    expect(redis.source).toBe('binary')
    expect(redis.host).toBe('127.0.0.1')
    expect(redis.port).not.toBe(6379)
    const c = client(redis)
    await c.connect()
    expect(await c.set('k', 'v')).toBe('OK')
    expect(await c.config('GET', 'save')).toEqual(['save', ''])
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no'])
    // DEBUG answers only with --enable-debug-command local
    expect(await c.call('DEBUG', 'SLEEP', '0')).toBe('OK')
    c.disconnect()
  })

  it('freeze() stops answers until thaw()', async () => {
    await redis.freeze()
    expect(await ping(redis.host, redis.port, 300)).toBe(false)
    await redis.thaw()
    expect(await ping(redis.host, redis.port, 2_000)).toBe(true)
  })

  it('restart() brings back an empty server on the same port', async () => {
    const c = client(redis)
    await c.connect()
    await c.set('survivor', '1')
    const before = (await c.info('server')).match(/run_id:(\w+)/)?.[1]
    c.disconnect()
    await redis.restart()
    const d = client(redis)
    await d.connect()
    expect(await d.get('survivor')).toBeNull()
    const after = (await d.info('server')).match(/run_id:(\w+)/)?.[1]
    expect(after).toBeDefined()
    expect(after).not.toBe(before)
    d.disconnect()
  })

  it('restart() also recovers a frozen server', async () => {
    await redis.freeze()
    await redis.restart()
    expect(await ping(redis.host, redis.port, 2_000)).toBe(true)
  })

  it('kill() ends the process like a crash and restart() recovers', async () => {
    await redis.kill()
    expect(await ping(redis.host, redis.port, 300)).toBe(false)
    await expect(redis.freeze()).rejects.toThrow(/not running/)
    await redis.restart()
    expect(await ping(redis.host, redis.port, 2_000)).toBe(true)
  })

  it('stop() ends the server and is idempotent', async () => {
    const other = await startRedis()
    expect(await ping(other.host, other.port)).toBe(true)
    await other.stop()
    await other.stop()
    expect(await ping(other.host, other.port, 300)).toBe(false)
  })
})

describe('startRedis with REDIS_URL', () => {
  it('uses the URL and refuses fault injection', async () => {
    const previous = process.env['REDIS_URL']
    process.env['REDIS_URL'] = 'redis://127.0.0.1:6399'
    try {
      const handle = await startRedis()
      expect(handle.source).toBe('url')
      expect(handle.port).toBe(6399)
      await expect(handle.kill()).rejects.toThrow(/not available with REDIS_URL/)
      await expect(handle.freeze()).rejects.toThrow(/not available with REDIS_URL/)
      await expect(handle.restart()).rejects.toThrow(/not available with REDIS_URL/)
      await handle.stop()
    } finally {
      if (previous === undefined) delete process.env['REDIS_URL']
      else process.env['REDIS_URL'] = previous
    }
  })
})

describe.skipIf(process.env['REDIS_URL'])('cleanup when the owner dies', () => {
  it('a SIGKILLed owner leaves no redis-server behind', async () => {
    const script = `
      import { startRedis } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}
      const r = await startRedis()
      process.stdout.write(String(r.port) + '\\n')
      setInterval(() => {}, 1000)
    `
    const { spawn } = await import('node:child_process')
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
      child.once('exit', () => reject(new Error('owner exited early')))
    })
    expect(await ping('127.0.0.1', port)).toBe(true)
    const pids = () =>
      execFileSync('sh', ['-c', `pgrep -f '[r]edis-server 127.0.0.1:${port}' || true`])
        .toString()
        .trim()
    expect(pids()).not.toBe('')
    child.kill('SIGKILL')
    // The owner watcher polls once a second.
    const deadline = Date.now() + 10_000
    while (pids() !== '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(pids()).toBe('')
  })
})
