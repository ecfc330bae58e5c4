import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCache } from '@strata/core'
import { memoryL1 } from '@strata/l1-memory'
import { redisL2 } from '@strata/l2-redis'
import { findFreePort, spawnChild, startRedis, waitFor, type RedisHandle } from '@strata/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisPubSubBus } from '../src/index.js'

/** A CA and a server certificate for localhost, made with openssl for this run. */
function certificates(dir: string, name: string) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name} CA`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.crt`,
  )
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  )
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  ssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${name}-ca.crt`,
    '-CAkey',
    `${name}-ca.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    'san.ext',
    '-out',
    `${name}.crt`,
  )
  return {
    ca: join(dir, `${name}-ca.crt`),
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
  }
}

let dir: string
let redis: RedisHandle
let tlsPort: number
let ca: Buffer
let otherCa: Buffer

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-tls-'))
  const server = certificates(dir, 'server')
  ca = readFileSync(server.ca)
  otherCa = readFileSync(certificates(dir, 'other').ca)
  tlsPort = await findFreePort()
  redis = await startRedis({
    source: 'binary',
    args: [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      server.cert,
      '--tls-key-file',
      server.key,
      '--tls-ca-cert-file',
      server.ca,
      '--tls-auth-clients',
      'no',
    ],
  })
}, 60_000)
afterAll(async () => {
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('TLS (a redis-server with --tls-port and certificates made at test time)', () => {
  const tls = (caCert: Buffer) => ({
    host: '127.0.0.1',
    port: tlsPort,
    tls: { ca: caCert, servername: 'localhost' },
  })
  const replica = (caCert: Buffer) =>
    createCache({
      prefix: 'tls',
      l1: memoryL1(),
      l2: redisL2({ redis: tls(caCert), commandTimeout: 1_000 }),
      bus: redisPubSubBus({ redis: tls(caCert), startTimeout: 2_000 }),
    })

  it('L2 and the bus work over TLS with CA verification on: a write on A drops B’s L1 copy', async () => {
    const a = replica(ca)
    const b = replica(ca)
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    await a.set('k', 'v2')
    await waitFor(async () => (await b.get('k')) === 'v2', 5_000, 'B sees v2')
    expect((await b.health()).status).toBe('ok')
    await a.close()
    await b.close()
  })

  it('a wrong CA fails with a clear error: ready() rejects, reads fall back to the loader', async () => {
    // In a child process: a second TLS error on one ioredis socket can be uncaught there
    // (redis/ioredis#962); the child counts it instead of dying, and reports it.
    const child = spawnChild(
      fileURLToPath(new URL('./fixtures/tls-replica.mjs', import.meta.url)),
      [],
      {},
    )
    try {
      const r = await child.request<{
        readyError: { code: string; message: string } | undefined
        value: string
        health: string
        errors: string[]
        uncaught: string[]
      }>({ cmd: 'wrongCa', port: tlsPort, ca: otherCa.toString('base64') }, 30_000)
      expect(r.readyError?.code).toBe('E_BUS_UNAVAILABLE')
      expect(r.value).toBe('from the loader')
      expect(r.health).not.toBe('ok')
      expect(r.errors.some((m) => /certificate|self[- ]signed|unable to verify/i.test(m))).toBe(
        true,
      )
      if (r.uncaught.length > 0)
        console.log(`uncaught in the child (ioredis#962): ${r.uncaught.join(' | ')}`)
    } finally {
      await child.kill()
    }
  })
})
