/** What `defineScripts` needs of a client: ioredis' `defineCommand` (Redis and Cluster). */
export interface ScriptHost {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void
}

const defined = new WeakMap<object, Set<string>>()

/**
 * Defines Lua scripts as commands on a client, once per client and name (ioredis sends
 * them by EVALSHA and loads them again after a server restart), and returns the client
 * typed with those commands. For drivers' scripts.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the commands' types
export function defineScripts<T>(
  client: ScriptHost,
  scripts: Record<string, { keys: number; lua: string }>,
): T {
  let names = defined.get(client)
  if (!names) defined.set(client, (names = new Set()))
  for (const [name, s] of Object.entries(scripts)) {
    if (names.has(name)) continue
    client.defineCommand(name, { numberOfKeys: s.keys, lua: s.lua })
    names.add(name)
  }
  return client as unknown as T
}

/**
 * An ioredis client (`Redis` or `Cluster`) of either major, or built by another copy of
 * ioredis, described by shape: drivers accept it in their options, so a client from
 * any installed ioredis type-checks (and `ioredisKind` recognises it at run time).
 */
export interface IoredisClientLike {
  readonly isCluster: boolean
  readonly status: string
  duplicate: (...args: never[]) => unknown
  sendCommand: (...args: never[]) => unknown
}

/**
 * Which ioredis client `value` is, told by shape, not `instanceof`: a project may hold
 * ioredis 5 and 6 side by side (or two copies of one), and a client built by the other
 * copy must still be taken as a client, not as connection options. For drivers.
 */
export function ioredisKind(value: unknown): 'redis' | 'cluster' | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const c = value as { isCluster?: unknown; duplicate?: unknown; sendCommand?: unknown }
  if (typeof c.isCluster !== 'boolean' || typeof c.sendCommand !== 'function') return undefined
  if (typeof c.duplicate !== 'function') return undefined
  return c.isCluster ? 'cluster' : 'redis'
}
