/**
 * The clock of the conformance suite: how a test reads the time a backend's writes and expiry run on, and moves it.
 *
 * @since 0.4.0
 */
import * as Clock from "effect/Clock"
import type * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"

/**
 * The clock a backend's writes and expiry run on, as a test moves it: Effect's `TestClock` for an Effect layer
 * (under `it.effect`), or (for an API that reads the system clock) a `Date.now` the test controls.
 *
 * @since 0.4.0
 */
export interface TestTime {
  readonly now: Effect.Effect<number>
  readonly advance: (millis: number) => Effect.Effect<void>
}

/**
 * The `TestClock` that `it.effect` and `it.layer` provide: the clock of every Effect layer.
 *
 * @since 0.4.0
 */
export const testClock: TestTime = { now: Clock.currentTimeMillis, advance: (millis) => TestClock.adjust(millis) }
