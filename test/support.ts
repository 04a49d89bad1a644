import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { afterAll, vi } from "vitest"

/** A temporary directory removed when the test file ends. */
export const tempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * The clock a backend's writes and expiry run on, as a test moves it: Effect's `TestClock` for the layers (under
 * `it.effect`), the system clock seen through `Date.now` for the Promise API.
 */
export interface TestTime {
  readonly now: Effect.Effect<number>
  readonly advance: (millis: number) => Effect.Effect<void>
}

/** The `TestClock` that `it.effect` and `it.layer` provide. */
export const testClock: TestTime = { now: Clock.currentTimeMillis, advance: (millis) => TestClock.adjust(millis) }

/**
 * The system clock as `Date.now` gives it, stopped for the rest of the test file and moved only by `advance` (so a
 * test can stop a moment before an expiry, whatever real time its reads take); the Promise API reads the time there.
 */
export const systemTime = (): TestTime => {
  let now = Date.now()
  vi.spyOn(Date, "now").mockImplementation(() => now)
  return {
    now: Effect.sync(() => Date.now()),
    advance: (millis) =>
      Effect.sync(() => {
        now += millis
      })
  }
}
