import { BusState, type BusContext, type BusDriver, type BusMessage } from '../contracts.js'

/** One in-process "pub/sub server": caches whose buses share a hub see each other's messages. */
export class MemoryBusHub {
  readonly #subscribers = new Map<string, Set<MemoryBus>>()

  /** A bus driver attached to this hub (one per cache). */
  bus(): MemoryBus {
    return new MemoryBus(this)
  }

  /** @internal */
  join(channel: string, bus: MemoryBus): void {
    let set = this.#subscribers.get(channel)
    if (!set) this.#subscribers.set(channel, (set = new Set()))
    set.add(bus)
  }

  /** @internal */
  leave(channel: string, bus: MemoryBus): void {
    this.#subscribers.get(channel)?.delete(bus)
  }

  /** @internal Delivers asynchronously, like a network would, in publish order. */
  deliver(channel: string, message: BusMessage): void {
    const targets = [...(this.#subscribers.get(channel) ?? [])]
    const copy = structuredClone(message)
    queueMicrotask(() => {
      for (const bus of targets) bus.receive(copy)
    })
  }

  /** Simulates a gap for every subscriber (a lost connection): they go degraded, then resync. */
  simulateGap(): void {
    for (const set of this.#subscribers.values()) for (const bus of set) bus.gap()
  }
}

export class MemoryBus implements BusDriver {
  readonly name = 'memory-bus'
  #state: BusState = BusState.connecting
  #context: BusContext | undefined
  readonly #hub: MemoryBusHub

  constructor(hub: MemoryBusHub) {
    this.#hub = hub
  }

  get state(): BusState {
    return this.#state
  }

  start(context: BusContext): Promise<void> {
    this.#context = context
    this.#hub.join(context.channel, this)
    this.#state = BusState.connected
    context.onState(BusState.connected, { reason: 'subscribed' })
    return Promise.resolve()
  }

  publish(message: BusMessage): Promise<void> {
    if (!this.#context || this.#state === BusState.closed) {
      return Promise.reject(new Error('[core] memory bus is not started'))
    }
    this.#hub.deliver(this.#context.channel, message)
    return Promise.resolve()
  }

  /** @internal */
  receive(message: BusMessage): void {
    if (this.#state !== BusState.connected || !this.#context) return
    try {
      this.#context.onMessage(message)
    } catch {
      // A handler error never breaks the subscription.
    }
  }

  /** @internal */
  gap(): void {
    const ctx = this.#context
    if (!ctx) return
    this.#state = BusState.degraded
    ctx.onState(BusState.degraded, { reason: 'simulated gap' })
    queueMicrotask(() => {
      if (this.#state !== BusState.degraded) return
      this.#state = BusState.connected
      ctx.onState(BusState.connected, { reason: 'resubscribed', resynced: true })
    })
  }

  close(): Promise<void> {
    if (this.#context) this.#hub.leave(this.#context.channel, this)
    this.#state = BusState.closed
    return Promise.resolve()
  }
}

/** A hub shared by every `memoryBus()` created without one. */
const defaultHub = new MemoryBusHub()

export function memoryBus(hub: MemoryBusHub = defaultHub): MemoryBus {
  return hub.bus()
}
