/**
 * `@strata/core/testing`: what a driver must do, as vitest suites. Every driver package
 * runs these against its driver; a third-party driver proves itself the same way.
 */
export { createFakeClock, flushMicrotasks, type FakeClock } from '../clock.js'
export { l1DriverSuite, type L1SuiteOptions } from './l1-suite.js'
export { l2DriverSuite, type L2SuiteOptions } from './l2-suite.js'
export { busDriverSuite, type BusSuiteOptions } from './bus-suite.js'
export { cacheBehaviourSuite, type BehaviourSuiteOptions } from './behaviour-suite.js'
export { setTestHooks } from './hooks.js'
