export { runStampede, stampedeSummary, stampedeVerdict, type StampedeReport } from './stampede.js'
export { analyze, type Figures, type ReadRecord, type WriteRecord } from './analyze.js'
export {
  runScenario,
  forgedFailures,
  summary,
  SCENARIOS,
  type Report,
  type RunOptions,
  type ScenarioName,
} from './run.js'
export type { WorkloadSpec, WorkloadResult } from './protocol.js'
