export { runStampede, stampedeSummary, stampedeVerdict, type StampedeReport } from './stampede.js'
export { analyze, type Figures, type ReadRecord, type WriteRecord } from './analyze.js'
export {
  runScenario,
  summary,
  SCENARIOS,
  type Report,
  type RunOptions,
  type ScenarioName,
} from './run.js'
export { forgedFailures, type ForgedReport, type ForgedSent } from './forged.js'
export type { WorkloadSpec, WorkloadResult } from './protocol.js'
