import * as fs from "node:fs"
import * as path from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import {
  DatabaseError,
  layerMemory,
  layerSql,
  layerSqlite,
  SerializationError,
  Storage,
  StorageErrorCode,
  WriteFailedError
} from "../src/index.js"
import { openDatabase } from "../src/layers/Sqlite.js"
import { open } from "../src/promise.js"
import { expectError } from "../src/testing/vitest.js"
import { tempDir } from "./support.js"

const dir = tempDir()
let fileCounter = 0
const freshFile = (): string => path.join(dir, `db-${++fileCounter}`, "storage.db")

/** Runs `f` with the service of a freshly built layer, then releases the layer (closing the database). */
const withStorage = <A, E, LE>(
  layer: Layer.Layer<Storage, LE>,
  f: (storage: Storage["Type"]) => Effect.Effect<A, E>
): Effect.Effect<A, E | LE> => Effect.flatMap(Storage, f).pipe(Effect.provide(layer))

const raw = (filename: string): Database.Database => new Database(filename)

describe("layerSqlite on a file", () => {
  it.effect("keeps everything across a release and a new build of the layer", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      const value = { recent_files: ["a", "b"], window_state: { x: 1, maximized: true }, n: -0 }
      yield* withStorage(layerSqlite({ filename }), (storage) =>
        Effect.all([
          storage.set("state", value),
          storage.setMany({ theme: "dark", volume: 7 }, { store: "settings" }),
          storage.set("scratch", 1, { store: "cache" })
        ])
      )
      expect(fs.existsSync(`${filename}-wal`)).toBe(false)
      const back = yield* withStorage(layerSqlite({ filename }), (storage) =>
        Effect.all([storage.get("state"), storage.entries({ store: "settings" }), storage.keys({ store: "cache" })])
      )
      expect(back[0]).toStrictEqual(Option.some(value))
      expect(Object.is((Option.getOrThrow(back[0]) as { n: number }).n, -0)).toBe(true)
      expect(back[1]).toEqual([
        { key: "theme", value: "dark" },
        { key: "volume", value: 7 }
      ])
      expect(back[2]).toEqual(["scratch"])
    })
  )

  it.effect("creates the database whole, under its name only: no temporary file, no -wal or -shm left", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) =>
        Effect.flatMap(storage.keys(), () =>
          Effect.sync(() =>
            expect(fs.readdirSync(path.dirname(filename)).sort()).toEqual([
              "storage.db",
              "storage.db-shm",
              "storage.db-wal"
            ])
          )
        )
      )
      expect(fs.readdirSync(path.dirname(filename))).toEqual(["storage.db"])
      expect(fs.statSync(filename).size).toBeGreaterThan(0)
    })
  )

  it.effect("runs its migrations once: building the layer again is a no-op", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* TestClock.setTime(1234)
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1))
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 2))
      const db = raw(filename)
      expect(db.prepare("SELECT migration_id, name FROM runtime_storage_migrations").all()).toEqual([
        { migration_id: 1, name: "create_runtime_storage" },
        { migration_id: 2, name: "rowid_table_key_index_versions" },
        { migration_id: 3, name: "change_log" },
        { migration_id: 4, name: "expiry" }
      ])
      const table = db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'runtime_storage'").pluck().get()
      // Schema 2: a rowid table (a large value no longer slows the other keys), keyed by a unique index.
      expect(table).not.toMatch(/WITHOUT ROWID/)
      // Schema 4: the entries that expire in an index of their own, partial: the others are not in it.
      expect(
        db.prepare("SELECT name, \"unique\", partial FROM pragma_index_list('runtime_storage') ORDER BY name").all()
      ).toEqual([
        { name: "runtime_storage_expiry", unique: 0, partial: 1 },
        { name: "runtime_storage_key", unique: 1, partial: 0 }
      ])
      // expires_at comes before the value, so reading it never walks a large value's overflow pages.
      expect(db.prepare("SELECT name FROM pragma_table_info('runtime_storage')").pluck().all()).toEqual([
        "id",
        "store",
        "key",
        "version",
        "created_at",
        "updated_at",
        "expires_at",
        "value"
      ])
      const row = db.prepare("SELECT created_at, updated_at FROM runtime_storage WHERE key = 'k'").get() as {
        created_at: number
        updated_at: number
      }
      expect(row).toEqual({ created_at: 1234, updated_at: 1234 })
      db.close()
    })
  )

  it.effect("expired entries are deleted in bounded batches, each its own version, and leave no row behind", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      const entries = Array.from({ length: 1200 }, (_, i) => [`k${i}`, { i }] as const)
      const removed = yield* withStorage(layerSqlite({ filename }), (storage) =>
        Effect.gen(function* () {
          yield* storage.set("stays", 1)
          const since = Option.getOrThrow(yield* storage.getEntry("stays")).version
          yield* storage.setMany(entries, { expireIn: 1000 })
          yield* TestClock.adjust(1000)
          // The sweeper's removals, as the feed gives them once it has done them all.
          const changes = yield* Stream.runCollect(Stream.take(storage.watch({}, { since }), 1200 + 1200))
          return [...changes].filter((change) => change.type === "remove")
        })
      )
      expect(removed).toHaveLength(1200)
      expect(removed.every((change) => change.type === "remove" && change.expired === true)).toBe(true)
      // 500 per sweep: three short transactions, three versions.
      expect(new Set(removed.map((change) => change.version)).size).toBe(3)
      const db = raw(filename)
      expect(db.prepare("SELECT key FROM runtime_storage").pluck().all()).toEqual(["stays"])
      db.close()
    })
  )

  it.effect(
    "keys and counts read no table row, only the key and expiry indexes; the sweeper reads the expiry index",
    () =>
      Effect.gen(function* () {
        const filename = freshFile()
        yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1, { expireIn: 1000 }))
        const db = raw(filename)
        const plan = (sql: string) =>
          db
            .prepare(`EXPLAIN QUERY PLAN ${sql}`)
            .all(...Array.from(sql.matchAll(/\?/g), () => "x"))
            .map((row) => (row as { detail: string }).detail)
            .join(" | ")
        const { rangeSql, Sql } = yield* Effect.promise(() => import("../src/internal/schema.js"))
        const count = plan(rangeSql("count", { lower: "a", upper: "b", reverse: false, limit: undefined }))
        expect(count).toMatch(/COVERING INDEX runtime_storage_key/)
        expect(count).toMatch(/COVERING INDEX runtime_storage_expiry/)
        expect(count).not.toMatch(/SCAN runtime_storage\b/)
        const keys = plan(rangeSql("keys", { lower: "a", upper: undefined, reverse: false, limit: 10 }))
        expect(keys).toMatch(/COVERING INDEX runtime_storage_key/)
        expect(keys).not.toMatch(/USING INDEX runtime_storage_key|SCAN runtime_storage\b/)
        expect(plan(Sql.nextExpiry)).toMatch(/COVERING INDEX runtime_storage_expiry/)
        expect(plan(Sql.deleteExpired)).toMatch(/runtime_storage_expiry/)
        db.close()
      })
  )

  it.effect("created_at is kept and updated_at moves on an overwrite", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      // Time is the Clock's (a TestClock here).
      yield* TestClock.setTime(1000)
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1))
      yield* TestClock.setTime(5000)
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.setMany({ k: 2, other: 3 }))
      const check = raw(filename)
      const row = check.prepare("SELECT created_at, updated_at FROM runtime_storage WHERE key = 'k'").get()
      check.close()
      expect(row).toEqual({ created_at: 1000, updated_at: 5000 })
    })
  )

  it.effect("a database migrated by a newer version fails with DatabaseError (9005) saying so", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1))
      const db = raw(filename)
      db.prepare("INSERT INTO runtime_storage_migrations VALUES (99, 'future', 0)").run()
      db.close()
      const error = yield* Effect.flip(withStorage(layerSqlite({ filename }), (storage) => storage.get("k")))
      expect(expectError(error, DatabaseError, StorageErrorCode.DatabaseError).message).toContain("newer version")
    })
  )

  it.effect("a database whose schema was written by an unreleased build fails with 9005 naming the schemas", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1))
      const db = raw(filename)
      db.prepare(
        "UPDATE runtime_storage_migrations SET name = 'rowid_table_and_key_index' WHERE migration_id = 2"
      ).run()
      db.close()
      for (const layer of [
        layerSqlite({ filename }),
        layerSql().pipe(Layer.provide(SqliteClient.layer({ filename })))
      ]) {
        const error = yield* Effect.flip(withStorage(layer, (storage) => storage.get("k")))
        const message = expectError(error, DatabaseError, StorageErrorCode.DatabaseError).message
        expect(message).toContain('"rowid_table_and_key_index"')
        expect(message).toContain("(unreleased) build")
      }
    })
  )

  it.effect("a file that is not a database fails with DatabaseError (9005) and is left untouched", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      fs.mkdirSync(path.dirname(filename), { recursive: true })
      const content = "this is a text file, not SQLite\n".repeat(200)
      fs.writeFileSync(filename, content)
      const error = yield* Effect.flip(withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1)))
      const databaseError = expectError(error, DatabaseError, StorageErrorCode.DatabaseError)
      expect(databaseError.sqliteCode).toBe("SQLITE_NOTADB")
      expect(databaseError.message).toContain("not a SQLite database")
      expect(fs.readFileSync(filename, "utf8")).toBe(content)
    })
  )

  it.effect("a parent path that is a file fails with DatabaseError (9005)", () =>
    Effect.gen(function* () {
      const blocker = path.join(dir, `blocker-${++fileCounter}`)
      fs.writeFileSync(blocker, "")
      const error = yield* Effect.flip(
        withStorage(layerSqlite({ filename: path.join(blocker, "app", "storage.db") }), (storage) => storage.keys())
      )
      expect(expectError(error, DatabaseError, StorageErrorCode.DatabaseError).message).toContain("directory")
    })
  )

  it.effect("a stored value that is not JSON fails reads of it with SerializationError (9006) naming the key", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.setMany({ good: 1, bad: 2 }))
      const db = raw(filename)
      db.prepare("UPDATE runtime_storage SET value = '{not json' WHERE key = 'bad'").run()
      db.close()
      const [get, getMany, entries, page, list, getEntry, keys, good] = yield* withStorage(
        layerSqlite({ filename }),
        (storage) =>
          Effect.all([
            Effect.flip(storage.get("bad")),
            Effect.flip(storage.getMany(["good", "bad"])),
            Effect.flip(storage.entries()),
            Effect.flip(storage.page()),
            Effect.flip(Stream.runDrain(storage.list())),
            Effect.flip(storage.getEntry("bad")),
            storage.keys(),
            storage.get("good")
          ])
      )
      // The Promise API's list gives the entries before the bad one, then rejects at it, and ends.
      const client = open({ filename })
      yield* Effect.promise(async () => {
        const iterator = client.list({ reverse: true })
        expect(await iterator.next()).toEqual({ done: false, value: { key: "good", value: 1 } })
        await expect(iterator.next()).rejects.toMatchObject({ code: 9006, key: "bad" })
        expect(await iterator.next()).toEqual({ done: true, value: undefined })
        await client.close()
      })
      for (const error of [get, getMany, entries, page, list, getEntry]) {
        const serialization = expectError(error, SerializationError, StorageErrorCode.SerializationError)
        expect(serialization.key).toBe("bad")
        expect(serialization.message).toContain('"bad"')
        expect(serialization.message).toContain("not valid JSON")
      }
      expect(keys).toEqual(["bad", "good"])
      expect(good).toEqual(Option.some(1))
    })
  )

  it("sets durability, journal mode, busy timeout and trusted_schema explicitly on the creating open and on reopen", () => {
    const filename = freshFile()
    for (const [durability, synchronous] of [
      ["strict", 2],
      ["relaxed", 1],
      [undefined, 1],
      ["strict", 2]
    ] as const) {
      const db = openDatabase({ filename, durability, busyTimeout: 1234 })
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
      expect(db.pragma("synchronous", { simple: true })).toBe(synchronous)
      expect(db.pragma("busy_timeout", { simple: true })).toBe(1234)
      expect(db.pragma("trusted_schema", { simple: true })).toBe(0)
      db.close()
    }
  })
})

it.effect("layerSqlite refuses an unknown durability with DatabaseError (9005)", () =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(
      withStorage(layerSqlite({ filename: freshFile(), durability: "full" as never }), (storage) => storage.keys())
    )
    expect(expectError(error, DatabaseError, StorageErrorCode.DatabaseError).message).toContain('"full"')
  })
)

describe("layerSql", () => {
  const sqliteClient = (filename: string, readonly = false) => SqliteClient.layer({ filename, readonly })

  it.effect("shares its schema with layerSqlite: a database written by one is read by the other", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("from", "layerSqlite"))
      const fromSql = yield* withStorage(layerSql().pipe(Layer.provide(sqliteClient(filename))), (storage) =>
        Effect.zipLeft(storage.get("from"), storage.set("back", "layerSql"))
      )
      expect(fromSql).toEqual(Option.some("layerSqlite"))
      const back = yield* withStorage(layerSqlite({ filename }), (storage) => storage.get("back"))
      expect(back).toEqual(Option.some("layerSql"))
    })
  )

  it.effect("maps a failed write to WriteFailed (9002) with SQLite's code", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1))
      const [error, value] = yield* withStorage(
        layerSql().pipe(Layer.provide(sqliteClient(filename, true))),
        (storage) => Effect.all([Effect.flip(storage.setMany({ k: 2, j: 3 })), storage.get("k")])
      )
      const writeFailed = expectError(error, WriteFailedError, StorageErrorCode.WriteFailed)
      expect(writeFailed.sqliteCode).toMatch(/^SQLITE_READONLY/)
      expect(writeFailed.message).toContain("SQLITE_READONLY")
      expect(value).toEqual(Option.some(1))
    })
  )

  it.effect("a newer schema fails the layer with DatabaseError (9005)", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* withStorage(layerSqlite({ filename }), (storage) => storage.set("k", 1))
      const db = raw(filename)
      db.prepare("INSERT INTO runtime_storage_migrations VALUES (99, 'future', 0)").run()
      db.close()
      const error = yield* Effect.flip(
        withStorage(layerSql().pipe(Layer.provide(sqliteClient(filename))), (storage) => storage.get("k"))
      )
      expect(expectError(error, DatabaseError, StorageErrorCode.DatabaseError).message).toContain("newer version")
    })
  )
})

describe("the sweeper", () => {
  const fresh: ReadonlyArray<readonly [string, () => Layer.Layer<Storage, unknown>]> = [
    ["layerMemory", () => layerMemory],
    ["layerSqlite", () => layerSqlite({ filename: ":memory:" })],
    ["layerSql", () => layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))]
  ]
  for (const [name, layer] of fresh) {
    it.effect(`${name}: an entry that expires before the sweeper's next run is deleted when it expires`, () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        // With nothing that expires, the sweeper runs once a second: one whole interval on, it has just run and
        // sleeps a whole interval again.
        yield* TestClock.adjust(1000)
        yield* storage.set("keep", 1)
        const since = Option.getOrThrow(yield* storage.getEntry("keep")).version
        yield* storage.set("soon", 1, { expireIn: 100 })
        yield* TestClock.adjust(100)
        // Without being woken by the write, the sweeper would run 900 ms later: the watch would wait for it.
        const gone = yield* Stream.runCollect(Stream.take(storage.watch({}, { since }), 2)).pipe(
          Effect.raceFirst(
            Effect.flatMap(
              Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2000))),
              () => Effect.die("the sweeper did not delete the entry when it expired")
            )
          )
        )
        expect([...gone].map((change) => `${change.type} ${"key" in change ? change.key : ""}`)).toEqual([
          "set soon",
          "remove soon"
        ])
      }).pipe(Effect.provide(layer()))
    )
  }
})
