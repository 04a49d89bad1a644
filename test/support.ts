import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterAll, vi } from "vitest"
import type { TestTime } from "../src/testing/time.js"

/** A temporary directory removed when the test file ends. */
export const tempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

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

/** The environment an app would have, as a ConfigProvider (names joined with "_", as `fromEnv` reads them). */
export const environment = (variables: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables)), { pathDelim: "_" }))
