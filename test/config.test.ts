/**
 * The Config layers: options read from Effect's `Config`, from environment-style names through a `ConfigProvider`.
 */
import * as path from "node:path"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import {
  layerKeyValueStoreConfig,
  layerMemory,
  layerMemoryConfig,
  layerSqlConfig,
  layerSqliteConfig,
  Storage,
  sqliteConfig
} from "../src/index.js"
import { environment, tempDir } from "./support.js"

const dir = tempDir()
let files = 0
const freshFile = (): string => path.join(dir, `config-${++files}`, "storage.db")

/** How a watch that resumes from 40 writes ago fails (HistoryTrimmed, when the history kept is shorter). */
const resumeFromFortyWritesAgo = Effect.gen(function* () {
  const storage = yield* Storage
  yield* storage.set("a", 0)
  const since = Option.getOrThrow(yield* storage.getEntry("a")).version
  for (let i = 1; i <= 40; i++) yield* storage.set("a", i)
  return yield* Effect.flip(Stream.runDrain(Stream.take(storage.watch({}, { since }), 1)))
})

describe("layerSqliteConfig", () => {
  it.effect("reads RUNTIME_STORAGE_FILENAME, _DURABILITY and _BUSY_TIMEOUT", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* Effect.flatMap(Storage, (storage) => storage.set("k", "from config")).pipe(
        Effect.provide(
          layerSqliteConfig().pipe(
            Layer.provide(
              environment({
                RUNTIME_STORAGE_FILENAME: filename,
                RUNTIME_STORAGE_DURABILITY: "strict",
                RUNTIME_STORAGE_BUSY_TIMEOUT: "2 seconds"
              })
            )
          )
        )
      )
      const db = new Database(filename, { readonly: true })
      expect(db.prepare("SELECT value FROM runtime_storage WHERE key = 'k'").pluck().get()).toBe('"from config"')
      db.close()
    })
  )

  it.effect("reads the history: a since older than RUNTIME_STORAGE_HISTORY_CHANGES keeps fails with 9001", () =>
    Effect.gen(function* () {
      const error = yield* resumeFromFortyWritesAgo.pipe(
        Effect.provide(
          layerSqliteConfig().pipe(
            Layer.provide(
              environment({
                RUNTIME_STORAGE_FILENAME: freshFile(),
                RUNTIME_STORAGE_HISTORY_CHANGES: "4",
                RUNTIME_STORAGE_HISTORY_MAX_AGE: "0 millis"
              })
            )
          )
        )
      )
      expect(error).toMatchObject({ _tag: "HistoryTrimmed", code: 9001 })
    })
  )

  it.effect(
    "without a filename or an app it fails with a ConfigError naming both; a bad value names its variable",
    () =>
      Effect.gen(function* () {
        const missing = yield* Effect.flip(Layer.build(layerSqliteConfig().pipe(Layer.provide(environment({})))))
        expect(String(missing)).toContain("RUNTIME_STORAGE_FILENAME")
        expect(String(missing)).toContain("RUNTIME_STORAGE_APP")
        const bad = yield* Effect.flip(
          Layer.build(
            layerSqliteConfig().pipe(
              Layer.provide(
                environment({ RUNTIME_STORAGE_FILENAME: freshFile(), RUNTIME_STORAGE_DURABILITY: "sometimes" })
              )
            )
          )
        )
        // ConfigError names the path with dots; fromEnv reads it as RUNTIME_STORAGE_DURABILITY.
        expect(String(bad)).toMatch(/RUNTIME_STORAGE.DURABILITY/)
        const app = yield* Effect.flip(
          Layer.build(layerSqliteConfig().pipe(Layer.provide(environment({ RUNTIME_STORAGE_APP: "../escape" }))))
        )
        expect(String(app)).toMatch(/APP/)
      }).pipe(Effect.scoped)
  )

  it.effect("takes a Config of its own, or a Config per option", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      const own = Config.all({ filename: Config.string("DB"), durability: Config.succeed("relaxed" as const) })
      yield* Effect.flatMap(Storage, (storage) => storage.set("k", 1)).pipe(
        Effect.provide(layerSqliteConfig(own).pipe(Layer.provide(environment({ DB: filename }))))
      )
      const perOption = { filename: Config.string("OTHER_DB") }
      const value = yield* Effect.flatMap(Storage, (storage) => storage.get("k")).pipe(
        Effect.provide(layerSqliteConfig(perOption).pipe(Layer.provide(environment({ OTHER_DB: filename }))))
      )
      expect(value).toEqual(Option.some(1))
      // The documented Config, used directly.
      const options = yield* sqliteConfig.pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["RUNTIME_STORAGE_FILENAME", filename]]), { pathDelim: "_" })
        )
      )
      expect(options).toEqual({ filename, durability: undefined, busyTimeout: undefined, history: undefined })
    })
  )
})

describe("the other Config layers", () => {
  it.effect("layerSqlConfig and layerMemoryConfig read the history; layerKeyValueStoreConfig the store", () =>
    Effect.gen(function* () {
      const env = environment({ RUNTIME_STORAGE_HISTORY_CHANGES: "4", RUNTIME_STORAGE_HISTORY_MAX_AGE: "0 millis" })
      const layers: ReadonlyArray<Layer.Layer<Storage, unknown>> = [
        layerMemoryConfig().pipe(Layer.provide(env)),
        layerSqlConfig().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })), Layer.provide(env))
      ]
      for (const layer of layers) {
        const error = yield* resumeFromFortyWritesAgo.pipe(Effect.provide(layer))
        expect(error).toMatchObject({ _tag: "HistoryTrimmed", code: 9001 })
      }
      const stored = yield* Effect.gen(function* () {
        const kv = yield* KeyValueStore.KeyValueStore
        yield* kv.set("k", "v")
        return yield* (yield* Storage).keys({ store: "from-env" })
      }).pipe(
        Effect.provide(
          Layer.provideMerge(
            layerKeyValueStoreConfig().pipe(Layer.provide(environment({ RUNTIME_STORAGE_STORE: "from-env" }))),
            layerMemory
          )
        )
      )
      expect(stored).toEqual(["k"])
    })
  )
})
