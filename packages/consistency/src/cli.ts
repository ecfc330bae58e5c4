/**
 * `pnpm consistency [scenario…] [--long]`: runs the multi-process consistency checker
 * and prints one line of figures per scenario; writes results/consistency.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runScenario, SCENARIOS, summary, verdict, type Report, type ScenarioName } from './run.js'

const args = process.argv.slice(2)
const long = args.includes('--long')
const names = args.filter((a) => !a.startsWith('--')) as ScenarioName[]
for (const n of names)
  if (!(n in SCENARIOS))
    throw new Error(`unknown scenario ${n}; one of ${Object.keys(SCENARIOS).join(', ')}`)
const reports: Report[] = []
let failures = 0
for (const name of names.length > 0 ? names : (Object.keys(SCENARIOS) as ScenarioName[])) {
  const report = await runScenario(name, {
    opsPerReplica: long ? 1_000_000 : 100_000,
    maxMs: long ? 40_000 : 4_000,
    log: (l) => console.log(l),
  })
  console.log(summary(report))
  const failed = verdict(report)
  console.log(failed.length === 0 ? '  pass' : `  FAIL: ${failed.join('; ')}`)
  failures += failed.length
  for (const w of report.figures.worst) console.log(`    worst: ${JSON.stringify(w)}`)
  reports.push(report)
}
const dir = fileURLToPath(new URL('../results/', import.meta.url))
mkdirSync(dir, { recursive: true })
const file = `${dir}consistency${long ? '-long' : ''}.json`
writeFileSync(
  file,
  JSON.stringify({ node: process.version, date: new Date().toISOString(), reports }, null, 2),
)
console.log(`written ${file}`)
process.exitCode = failures > 0 ? 1 : 0
