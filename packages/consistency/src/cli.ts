/**
 * `pnpm chaos [scenario…] [--long] [--docs]` (also `pnpm consistency`): runs the
 * multi-process consistency checker under real faults and prints one line of figures per
 * scenario; writes results/consistency.json, and with `--docs` docs/reliability.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runScenario, SCENARIOS, type Report, type ScenarioName } from './run.js'
import { summary, verdict } from './verdict.js'
import { reliabilityDoc } from './doc.js'
import { runStampede, stampedeSummary, stampedeVerdict, type StampedeReport } from './stampede.js'

const STAMPEDE = 'stampede-under-stall'
const args = process.argv.slice(2)
const long = args.includes('--long')
const asked = args.filter((a) => !a.startsWith('--'))
for (const n of asked)
  if (!(n in SCENARIOS) && n !== STAMPEDE)
    throw new Error(
      `unknown scenario ${n}; one of ${[...Object.keys(SCENARIOS), STAMPEDE].join(', ')}`,
    )
// The soak (10 minutes) runs with --long or when named.
const names = (
  asked.length > 0
    ? asked.filter((n) => n !== STAMPEDE)
    : Object.keys(SCENARIOS).filter((n) => n !== 'soak' || long)
) as ScenarioName[]
const reports: Report[] = []
let failures = 0
let stampede: StampedeReport | undefined
if (asked.length === 0 || asked.includes(STAMPEDE)) {
  // --long: 10 rounds of the same stampede (each its own cold keys and processes).
  for (let round = 0; round < (long ? 10 : 1); round++) {
    const r = await runStampede({ log: (l) => console.log(l) })
    console.log(stampedeSummary(r))
    const failed = stampedeVerdict(r)
    console.log(failed.length === 0 ? '  pass' : `  FAIL: ${failed.join('; ')}`)
    failures += failed.length
    stampede = r
  }
}
for (const name of names) {
  const report = await runScenario(name, {
    // The soak is bounded by its 10 minutes (and a count no run reaches).
    ...(name === 'soak' ? {} : { opsPerReplica: long ? 1_000_000 : 100_000 }),
    // Short: each scenario's own load time (4 s; 14 s around a 10 s outage).
    ...(long && name !== 'soak' ? { maxMs: 40_000, floodMessages: 1_000_000 } : {}),
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
  JSON.stringify(
    { node: process.version, date: new Date().toISOString(), reports, stampede },
    null,
    2,
  ),
)
console.log(`written ${file}`)
if (args.includes('--docs')) {
  const doc = fileURLToPath(new URL('../../../docs/reliability.md', import.meta.url))
  writeFileSync(doc, reliabilityDoc(reports, long, stampede))
  console.log(`written ${doc}`)
}
process.exitCode = failures > 0 ? 1 : 0
