/**
 * The conformance suite of runtime-storage, for vitest with `@effect/vitest` (optional peer dependencies of this
 * package: install them to use this entry). One call tests any `Storage` layer, the library's own or yours:
 *
 * ```ts
 * import { conformance } from "runtime-storage/testing/vitest"
 * conformance("my backend", layerMine)
 * ```
 *
 * @since 0.4.0
 */
export {
  type ConformanceOptions,
  conformance,
  expectError,
  freshStore,
  invalidNames,
  refusedValues
} from "./conformance.js"
export type { WithHistory } from "./conformance-watch.js"
export { type TestTime, testClock } from "./time.js"
