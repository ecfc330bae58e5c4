/**
 * `pnpm bench [scenario …] [--quick]`: runs the scenarios against a local redis-server it
 * starts itself (or REDIS_URL), prints a table per scenario, writes JSON to
 * benchmarks/results/ and regenerates docs/benchmarks.md with SVG charts.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { startRedis } from '@strata/testing'
import { table } from './harness.js'
import { writeReport } from './report.js'
import { closeAll } from './rounds.js'
import { SCENARIOS, type Context, type ScenarioResult } from './scenarios.js'

const RESULTS = fileURLToPath(new URL('../results/', import.meta.url))

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const wanted = args.filter((a) => !a.startsWith('--'))
  const unknown = wanted.filter((w) => !(w in SCENARIOS))
  if (unknown.length > 0) {
    console.error(
      `unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    )
    process.exit(2)
  }
  const names = wanted.length > 0 ? wanted : Object.keys(SCENARIOS)
  const redis = await startRedis()
  const ctx: Context = { redisUrl: redis.url, quick, workers: new Map() }
  mkdirSync(RESULTS, { recursive: true })
  const started = Date.now()
  console.log(
    `strata benchmarks: ${names.length} scenario(s), Redis ${redis.url} (${redis.source}), Node ${process.version}, ${cpus().length} cores${quick ? ', --quick' : ''}`,
  )
  try {
    for (const [i, name] of names.entries()) {
      const t = Date.now()
      console.log(`\n[${i + 1}/${names.length}] ${name} …`)
      const result: ScenarioResult = await (
        SCENARIOS[name] as (c: Context) => Promise<ScenarioResult>
      )(ctx)
      const meta = {
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        date: new Date().toISOString(),
        quick,
        seconds: (Date.now() - t) / 1000,
      }
      writeFileSync(`${RESULTS}${name}.json`, JSON.stringify({ ...result, meta }, null, 2) + '\n')
      console.log(`${result.title} (${meta.seconds.toFixed(1)} s)`)
      console.log(
        table(
          ['contender', ...result.columns],
          result.rows.map((r) => [r.contender, ...result.columns.map((c) => r[c] ?? '')]),
        ),
      )
      for (const t of result.targets)
        console.log(`  target ${t.met === null ? '·' : t.met ? '✓' : '✗'} ${t.text}: ${t.detail}`)
      for (const s of result.skipped) console.log(`  skipped: ${s}`)
      await closeAll()
    }
  } finally {
    for (const w of ctx.workers.values()) await w.kill()
    await closeAll()
    await redis.stop()
  }
  const doc = writeReport(RESULTS)
  console.log(
    `\nall done in ${((Date.now() - started) / 1000).toFixed(0)} s; results in ${RESULTS}, report ${doc}`,
  )
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
