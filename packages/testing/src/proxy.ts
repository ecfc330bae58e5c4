import { createConnection, createServer, type Socket } from 'node:net'

/** Which connections a black hole holds. */
export type ProxyMatch = 'all' | 'subscribers'

/** A loopback TCP proxy in front of one server, for faults between client and server. */
export interface TcpProxyHandle {
  readonly port: number
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string
  /**
   * For `ms`, nothing moves either way on the matching connections, open or opened
   * meanwhile (`subscribers`: those that sent a SUBSCRIBE), and nothing is closed: a
   * partition as TCP sees it. Bytes sent meanwhile are held, and delivered in order when
   * it heals (as retransmission would); resolves then.
   */
  blackhole(match: ProxyMatch, ms: number): Promise<void>
  close(): Promise<void>
}

interface Pair {
  client: Socket
  upstream: Socket
  subscriber: boolean
  /** Bytes held during a black hole: [towards the server?, bytes]. */
  held: [boolean, Buffer][]
}

/** Starts a proxy on a free loopback port, forwarding to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxyHandle> {
  const pairs = new Set<Pair>()
  let hole: ProxyMatch | undefined
  const holds = (p: Pair) => hole === 'all' || (hole === 'subscribers' && p.subscriber)
  const send = (p: Pair, up: boolean, chunk: Buffer) => {
    if (holds(p)) p.held.push([up, chunk])
    else (up ? p.upstream : p.client).write(chunk)
  }
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort })
    const pair: Pair = { client, upstream, subscriber: false, held: [] }
    pairs.add(pair)
    client.on('data', (chunk: Buffer) => {
      if (!pair.subscriber && /subscribe/i.test(chunk.toString('latin1'))) pair.subscriber = true
      send(pair, true, chunk)
    })
    upstream.on('data', (chunk: Buffer) => send(pair, false, chunk))
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async blackhole(match, ms) {
      hole = match
      await new Promise((resolve) => setTimeout(resolve, ms))
      hole = undefined
      for (const p of pairs) {
        for (const [up, chunk] of p.held.splice(0)) (up ? p.upstream : p.client).write(chunk)
      }
    },
    close() {
      hole = undefined
      for (const p of pairs) {
        p.client.destroy()
        p.upstream.destroy()
      }
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
