/** Calls Redis executed per command since its stats were reset (INFO commandstats; a script's inner commands count too). */
export async function commandstats(redis: {
  info(section: string): Promise<string>
}): Promise<Map<string, number>> {
  const info = await redis.info('commandstats')
  const out = new Map<string, number>()
  for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g))
    out.set(m[1] as string, Number(m[2]))
  return out
}
