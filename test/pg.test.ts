import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import pg from "pg"
import { describe, expect, inject, it } from "vitest"
import { layerSql, layerSqlConfig, ReadFailedError, Storage, WriteFailedError } from "../src/index.js"
import { readFailure, writeFailure } from "../src/internal/failure.js"
import { layerPg, layerPgConfig } from "../src/pg.js"
import * as storage from "../src/promise.js"
import { conformance } from "../src/testing/vitest.js"
import { adapt } from "./promise-adapter.js"
import { environment, systemTime } from "./support.js"

let schemas = 0
/** A schema of its own per layer: each layer starts on empty tables. */
const freshSchema = (): string => `t${process.pid}_${++schemas}_${Date.now().toString(36)}`
const url = inject("pgUrl")

conformance(
  "layerPg",
  Layer.suspend(() => layerPg({ url, schema: freshSchema() })),
  {
    withHistory: (history) => Layer.suspend(() => layerPg({ url, schema: freshSchema(), history }))
  }
)

/** A Promise API client on the test server, in a fresh schema, as a Storage layer (closed with it). */
const pgClientLayer = (options: Omit<storage.OpenOptions, "url" | "schema"> = {}) =>
  Layer.scoped(
    Storage,
    Effect.acquireRelease(
      Effect.sync(() => storage.open({ ...options, url, schema: freshSchema() })),
      (client) => Effect.promise(() => client.close())
    ).pipe(Effect.map(adapt))
  )

conformance("the Promise API on PostgreSQL (open({ url }))", pgClientLayer(), {
  withHistory: (history) => pgClientLayer({ history }),
  time: systemTime()
})

describe("layerSql on an app's PgClient", () => {
  const client = PgClient.layer({ url: Redacted.make(url) })

  it("gives the same Storage, in the schema its options name", async () => {
    const schema = freshSchema()
    const program = Effect.gen(function* () {
      const storage = yield* Storage
      yield* storage.set("k\u0000ey", { deep: [1, "two"] }, { store: "s" })
      return yield* storage.entries({ store: "s" })
    })
    const entries = await Effect.runPromise(Effect.provide(program, layerSql({ schema }).pipe(Layer.provide(client))))
    expect(entries).toEqual([{ key: "k\u0000ey", value: { deep: [1, "two"] } }])
    // The tables are in that schema, and nowhere else.
    const tables = await Effect.runPromise(
      Effect.provide(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql<{
              readonly schema: string
            }>`SELECT DISTINCT table_schema AS schema FROM information_schema.tables WHERE table_name = 'runtime_storage'`
        ),
        client
      )
    )
    expect(tables.map((row) => row.schema)).toContain(schema)
  })

  it("refuses what the client's dialect cannot take: a schema on SQLite, a bad schema name on PostgreSQL", async () => {
    const onSqlite = await Effect.runPromiseExit(
      Layer.build(layerSql({ schema: "x" }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))).pipe(
        Effect.scoped
      )
    )
    expect(onSqlite).toMatchObject({ _tag: "Failure", cause: { error: { code: 9005 } } })
    for (const schema of ["", "a\u0000b", "x".repeat(64)]) {
      const exit = await Effect.runPromiseExit(
        Layer.build(layerSql({ schema }).pipe(Layer.provide(client))).pipe(Effect.scoped)
      )
      expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { code: 9005 } } })
    }
  })

  it("two instances starting at once on a new schema migrate it once", async () => {
    const schema = freshSchema()
    const layers = Array.from({ length: 6 }, () => layerPg({ url, schema }))
    await Effect.runPromise(
      Effect.forEach(layers, (layer) => Effect.scoped(Layer.build(layer)), { concurrency: "unbounded" })
    )
    const applied = await Effect.runPromise(
      Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.unsafe<{ readonly id: number }>(`SELECT migration_id AS id FROM "${schema}".runtime_storage_migrations`)
        ),
        client
      )
    )
    expect(applied.map((row) => row.id)).toEqual([1])
  })

  it("a database whose encoding is not UTF-8 is refused with 9005", async () => {
    const name = `latin_${process.pid}_${Date.now().toString(36)}`
    const admin = Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`)
    )
    await Effect.runPromise(Effect.provide(admin, client))
    const latin = new URL(url)
    latin.pathname = `/${name}`
    const exit = await Effect.runPromiseExit(Effect.scoped(Layer.build(layerPg({ url: latin.toString() }))))
    expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { code: 9005 } } })
    expect(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : "")).toMatch(/LATIN1, not UTF8/)
  })
})

describe("the Promise client on PostgreSQL", () => {
  it("takes calls in the order they are made: gets made after a write, in the same tick, see it", async () => {
    const client = storage.open({ url, schema: freshSchema() })
    try {
      await client.set("k", 1)
      const results = await Promise.all([
        client.get("k"),
        client.get("k"),
        client.set("k", 2),
        client.get("k"),
        client.remove("k"),
        client.get("k"),
        client.get("other")
      ])
      expect(results).toEqual([1, 1, undefined, 2, true, null, null])
      // Gets queued behind a write are answered together, each with a value of its own.
      const [, ...values] = await Promise.all([
        client.set("v", { n: 1 }),
        ...Array.from({ length: 20 }, () => client.get<{ n: number }>("v"))
      ])
      expect(values).toEqual(Array.from({ length: 20 }, () => ({ n: 1 })))
      expect(new Set(values).size).toBe(20)
    } finally {
      await client.close()
    }
  })

  it("fails the calls waiting for a server it cannot reach with 9005, and tries again on the next call", async () => {
    const down = new URL(url)
    down.port = "1"
    const client = storage.open({ url: down.toString(), schema: freshSchema() })
    const settled = await Promise.allSettled([client.get("a"), client.set("b", 1), client.keys()])
    for (const result of settled) {
      expect(result.status).toBe("rejected")
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 9005 })
    }
    await expect(client.get("a")).rejects.toMatchObject({ code: 9005 })
    await client.close()
  })
})

describe("PostgreSQL's failures as the library's errors", () => {
  it("a serialization failure is WriteFailed (9002) with SQLSTATE 40001; a cancelled read ReadFailed (9003) with 57014", async () => {
    const [a, b] = [new pg.Client(url), new pg.Client(url)]
    await Promise.all([a.connect(), b.connect()])
    const table = `serial_${process.pid}_${Date.now().toString(36)}`
    try {
      await a.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, n integer)`)
      await a.query(`INSERT INTO ${table} VALUES (1, 0)`)
      await a.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
      await a.query(`SELECT n FROM ${table}`)
      await b.query(`UPDATE ${table} SET n = 1`)
      const serialization = await a.query(`UPDATE ${table} SET n = 2`).then(
        () => undefined,
        (error: unknown) => error
      )
      await a.query("ROLLBACK")
      const written = writeFailure("set", "s", new SqlError({ cause: serialization }))
      expect(written).toBeInstanceOf(WriteFailedError)
      expect(written).toMatchObject({ code: 9002, sqlState: "40001", store: "s" })
      expect(written.message).toMatch(/could not serialize.*\(SQLSTATE 40001\)$/)

      await b.query("SET statement_timeout = 1")
      const cancelled = await b.query("SELECT pg_sleep(1)").then(
        () => undefined,
        (error: unknown) => error
      )
      const read = readFailure("get", "s", new SqlError({ cause: cancelled }))
      expect(read).toBeInstanceOf(ReadFailedError)
      expect(read).toMatchObject({ code: 9003, sqlState: "57014" })
    } finally {
      await a.query(`DROP TABLE IF EXISTS ${table}`)
      await Promise.all([a.end(), b.end()])
    }
  })
})

describe("one-statement sets under contention", () => {
  it("concurrent sets and removes of the same keys on a pool: each key's stored version and value are its last change's", async () => {
    const schema = freshSchema()
    const keys = ["a", "b", "c", "d", "e"]
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* Storage
          yield* Effect.forEach(
            Array.from({ length: 300 }, (_, i) => i),
            (i) =>
              i % 7 === 0
                ? storage.remove(keys[i % keys.length]!)
                : i % 5 === 0
                  ? storage.setMany(keys.map((key) => [key, { i, key }] as const))
                  : storage.set(keys[i % keys.length]!, { i }),
            { concurrency: 20 }
          )
          const entries = yield* Effect.forEach(keys, (key) => storage.getEntry(key))
          // A last write marks the end of the log; the log from its start up to it, replayed, gives each key's last
          // change.
          yield* storage.set("end", true)
          const end = Option.getOrThrow(yield* storage.getEntry("end")).version
          const changes = yield* storage.watch({}, { since: "0000000000000000" }).pipe(
            Stream.takeUntil((change) => change.version === end),
            Stream.runCollect
          )
          return { entries, changes: [...changes] }
        }).pipe(Effect.provide(layerPg({ url, schema, maxConnections: 10 })))
      )
    )
    const last = new Map<string, { version: string; value: unknown }>()
    for (const change of result.changes) {
      if (change.type === "set") last.set(change.key, { version: change.version, value: change.value })
      else if (change.type === "remove") last.delete(change.key)
    }
    keys.forEach((key, index) => {
      const entry = result.entries[index]!
      const expected = last.get(key)
      if (expected === undefined) expect(Option.isNone(entry)).toBe(true)
      else expect(Option.getOrThrow(entry)).toMatchObject({ key, version: expected.version, value: expected.value })
    })
    // Versions increase along the log.
    const versions = result.changes.map((change) => change.version)
    expect([...versions].sort()).toEqual(versions)
  })
})

describe("layerPgConfig", () => {
  it("reads RUNTIME_STORAGE_URL, _SCHEMA and _MAX_CONNECTIONS; layerSqlConfig reads _SCHEMA for a PgClient", async () => {
    const schema = freshSchema()
    const program = Effect.flatMap(Storage, (storage) =>
      Effect.zipRight(storage.set("k", "from config"), storage.get("k"))
    )
    const read = await Effect.runPromise(
      Effect.provide(
        program,
        layerPgConfig().pipe(
          Layer.provide(
            environment({
              RUNTIME_STORAGE_URL: url,
              RUNTIME_STORAGE_SCHEMA: schema,
              RUNTIME_STORAGE_MAX_CONNECTIONS: "2"
            })
          )
        )
      )
    )
    expect(read).toEqual(Option.some("from config"))
    // The same schema through layerSqlConfig on an app's PgClient.
    const again = await Effect.runPromise(
      Effect.provide(
        Effect.flatMap(Storage, (storage) => storage.get("k")),
        layerSqlConfig().pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(url) })),
          Layer.provide(environment({ RUNTIME_STORAGE_SCHEMA: schema }))
        )
      )
    )
    expect(again).toEqual(Option.some("from config"))
  })

  it("without RUNTIME_STORAGE_URL fails with a ConfigError naming it (as Config paths print: RUNTIME_STORAGE.URL)", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.scoped(Layer.build(layerPgConfig().pipe(Layer.provide(environment({})))))
    )
    expect(Exit.isFailure(exit) ? String(Cause.squash(exit.cause)) : "").toMatch(/RUNTIME_STORAGE.URL/)
  })
})
