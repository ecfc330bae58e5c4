/** Peers remembered for sequence-gap detection at most, and how long an unheard peer is kept. */
const MAX_PEERS = 10_000
const PEER_IDLE_MS = 10 * 60_000

/**
 * Per peer (replica id): the highest sequence number heard and when. A jump means
 * messages were missed (a gap); with `strict` (authenticated bus), a number at or
 * below the highest heard is a replay. Bounded: idle peers are forgotten, and when
 * still full the least recently heard half.
 */
export class PeerSequences {
  readonly #peers = new Map<string, { seq: number; at: number }>()

  /** `missed`: how many messages were skipped (0: none); `replay`: strict and not newer. */
  check(source: string, seq: number, strict: boolean): { missed: number; replay: boolean } {
    const now = Date.now()
    const peer = this.#peers.get(source)
    if (peer === undefined) {
      if (this.#peers.size >= MAX_PEERS) this.#prune(now)
      this.#peers.set(source, { seq, at: now })
      return { missed: 0, replay: false }
    }
    const last = peer.seq
    if (strict && seq <= last) return { missed: 0, replay: true }
    peer.seq = Math.max(last, seq)
    peer.at = now
    return { missed: Math.max(0, seq - last - 1), replay: false }
  }

  get size(): number {
    return this.#peers.size
  }

  #prune(now: number): void {
    for (const [source, p] of this.#peers) if (now - p.at > PEER_IDLE_MS) this.#peers.delete(source)
    if (this.#peers.size < MAX_PEERS) return
    const byAge = [...this.#peers].sort((a, b) => a[1].at - b[1].at)
    for (const [source] of byAge.slice(0, byAge.length / 2)) this.#peers.delete(source)
  }
}
