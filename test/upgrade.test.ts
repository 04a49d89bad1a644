/**
 * Upgrades: a database written by every released version opens and is upgraded in place, in one transaction, with
 * nothing lost; an upgrade killed in the middle leaves the old schema whole, and the next open upgrades it; two
 * processes opening an old database at once upgrade it once.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import pg from "pg"
import { describe, expect, inject, it } from "vitest"
import { layerSql, layerSqlite, Storage } from "../src/index.js"
import { migrations } from "../src/internal/schema.js"
import { layerPg } from "../src/pg.js"
import { open } from "../src/promise.js"
import { tempDir } from "./support.js"

const dir = tempDir()
let fileCounter = 0
const freshFile = (): string => path.join(dir, `db-${++fileCounter}`, "storage.db")
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

/** A copy of a fixture database, to be upgraded without touching the original. */
const copyOf = (name: string): string => {
  const filename = freshFile()
  fs.mkdirSync(path.dirname(filename), { recursive: true })
  fs.copyFileSync(fixture(name), filename)
  return filename
}

interface StoredRow {
  readonly store: string
  readonly key: string
  readonly value: string
  readonly created_at: number
  readonly updated_at: number
}

const inspect = (filename: string) => {
  const db = new Database(filename)
  try {
    return {
      applied: db.prepare("SELECT migration_id FROM runtime_storage_migrations ORDER BY migration_id").pluck().all(),
      table: db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'runtime_storage'").pluck().get() as string,
      rows: db
        .prepare("SELECT store, key, value, created_at, updated_at FROM runtime_storage ORDER BY store, key")
        .all() as Array<StoredRow>,
      integrity: db.pragma("integrity_check", { simple: true }),
      /** The entries that expire, and when (schema 4). */
      expiring: (db.prepare("SELECT 1 FROM pragma_table_info('runtime_storage') WHERE name = 'expires_at'").get() !==
      undefined
        ? db
            .prepare("SELECT store, key, expires_at FROM runtime_storage WHERE expires_at IS NOT NULL ORDER BY key")
            .all()
        : []) as ReadonlyArray<unknown>,
      /** The last version a write took (schema 1 gave every row version 1; schema 3 keeps them in its change log). */
      clock: (db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'runtime_storage_clock'").get() !== undefined
        ? db.prepare("SELECT version FROM runtime_storage_clock").pluck().get()
        : db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'runtime_storage_changes'").get() !== undefined
          ? db.prepare("SELECT max(seq) FROM runtime_storage_changes").pluck().get()
          : 1) as number
    }
  } finally {
    db.close()
  }
}

const digestOf = (rows: ReadonlyArray<StoredRow>): string =>
  createHash("sha256").update(JSON.stringify(rows)).digest("hex")

/** The database of every released version, written by `test/fixtures/<version>/make.mjs` with that version. */
const released = [
  { version: "v0.1.0", schema: 1 },
  { version: "v0.2.0", schema: 2 },
  { version: "v0.3.0", schema: 3 },
  { version: "v0.4.0", schema: 4 },
  { version: "v0.5.0", schema: 4 },
  { version: "v0.6.0", schema: 4 }
] as const

for (const { version, schema } of released) {
  describe(`the database written by ${version} (schema ${schema})`, () => {
    // Read from a copy: opening a WAL database, even to read, writes beside it.
    const original = inspect(copyOf(`${version}/storage.db`))

    it(`is schema ${schema}, with the data the fixture script wrote`, () => {
      expect(original.applied).toEqual(migrations.slice(0, schema).map((migration) => migration.id))
      if (schema === 1) expect(original.table).toMatch(/WITHOUT ROWID/)
      // Since 0.4.0 the script also writes an entry that expires in ten years.
      expect(original.rows).toHaveLength(schema >= 4 ? 62 : 61)
      expect(original.expiring).toHaveLength(schema >= 4 ? 1 : 0)
    })

    const layers: ReadonlyArray<readonly [string, (filename: string) => Layer.Layer<Storage, unknown>]> = [
      ["layerSqlite", (filename) => layerSqlite({ filename })],
      ["layerSql", (filename) => layerSql().pipe(Layer.provide(SqliteClient.layer({ filename })))]
    ]
    for (const [name, layer] of layers) {
      it(`opens and is upgraded in place by ${name}, every row, value and timestamp kept`, async () => {
        const filename = copyOf(`${version}/storage.db`)
        const read = await Effect.runPromise(
          Effect.scoped(
            Effect.gen(function* () {
              const storage = yield* Storage
              return {
                theme: yield* storage.get("theme", { store: "settings" }),
                zero: yield* storage.get("negative-zero"),
                drafts: yield* storage.count({ store: "notes", prefix: "draft:" }),
                odd: yield* storage.keys({ store: "odd keys" }),
                counter: yield* storage.getEntry("counter")
              }
            }).pipe(Effect.provide(layer(filename)))
          )
        )
        expect(read.theme).toEqual(Option.some("dark"))
        expect(Object.is(Option.getOrThrow(read.zero), -0)).toBe(true)
        expect(read.drafts).toBe(50)
        expect(read.odd).toEqual(["a\u0000b", "é", "\uFFFF", "😀"])
        const counter = Option.getOrThrow(read.counter)
        const stored = original.rows.find((row) => row.key === "counter")!
        expect(counter).toMatchObject({
          key: "counter",
          value: 2,
          createdAt: stored.created_at,
          updatedAt: stored.updated_at
        })
        expect(counter.updatedAt).toBeGreaterThan(counter.createdAt)
        const upgraded = inspect(filename)
        expect(upgraded.applied).toEqual(migrations.map((migration) => migration.id))
        expect(upgraded.table).not.toMatch(/WITHOUT ROWID/)
        expect(upgraded.integrity).toBe("ok")
        expect(digestOf(upgraded.rows)).toBe(digestOf(original.rows))
        expect(upgraded.expiring).toEqual(original.expiring)
      })
    }

    it("gives every later write a greater version than any it holds", async () => {
      const filename = copyOf(`${version}/storage.db`)
      const client = open({ filename })
      const versions: Array<string> = []
      for await (const { key } of client.list({ store: "notes" }))
        versions.push((await client.getEntry(key, { store: "notes" }))!.version)
      const newest = [...versions].sort().at(-1)!
      if (schema === 1) expect(newest).toBe("0000000000000001")
      await client.set("draft:new", { i: -1 }, { store: "notes" })
      expect((await client.getEntry("draft:new", { store: "notes" }))!.version > newest).toBe(true)
      await client.close()
    })

    it("keeps its change feed going: changes before the log are refused, later ones replayed", async () => {
      const filename = copyOf(`${version}/storage.db`)
      const client = open({ filename })
      const since = original.clock.toString(16).padStart(16, "0")
      const fromStart = client.watch({ store: "notes" }, { since: "0000000000000000" })
      if (schema < 3) {
        // Written before the change log existed: those changes cannot be replayed.
        await expect(fromStart.next()).rejects.toMatchObject({ _tag: "HistoryTrimmed", code: 9001 })
      } else {
        // Its whole history is in the log: the first of its 50 drafts comes first.
        expect((await fromStart.next()).value).toMatchObject({ type: "set", key: "draft:000", value: { i: 0 } })
        await fromStart.return?.()
      }
      const changes = client.watch({ store: "notes" }, { since })
      await client.set("draft:new", 1, { store: "notes" })
      expect((await changes.next()).value).toMatchObject({ type: "set", key: "draft:new", value: 1 })
      await changes.return?.()
      await client.close()
    })

    it("is upgraded by the Promise API, and a second open finds nothing to do", async () => {
      const filename = copyOf(`${version}/storage.db`)
      for (let round = 0; round < 2; round++) {
        const client = open({ filename })
        expect(await client.get("window", { store: "settings" })).toEqual({
          x: 10,
          y: 20,
          size: { width: 800, height: 600 },
          maximized: false
        })
        expect(await client.count()).toBe(5)
        await client.close()
      }
      const upgraded = inspect(filename)
      expect(upgraded.applied).toEqual(migrations.map((migration) => migration.id))
      expect(digestOf(upgraded.rows)).toBe(digestOf(original.rows))
    })
  })
}

/** A schema-1 database as 0.1.0 made it, with `rows` keys in the store "bulk" (about 300 bytes each). */
const makeSchema1 = (rows: number): string => {
  const filename = freshFile()
  fs.mkdirSync(path.dirname(filename), { recursive: true })
  const db = new Database(filename)
  db.pragma("journal_mode = WAL")
  db.exec(`CREATE TABLE runtime_storage_migrations (
    migration_id INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, created_at INTEGER NOT NULL)`)
  for (const statement of migrations[0]!.statements) db.exec(statement)
  db.prepare("INSERT INTO runtime_storage_migrations VALUES (1, 'create_runtime_storage', 0)").run()
  const insert = db.prepare("INSERT INTO runtime_storage VALUES ('bulk', ?, ?, ?, ?)")
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      insert.run(`key-${String(i).padStart(7, "0")}`, JSON.stringify({ i, text: "v".repeat(280) }), i, i + 1)
    }
  })()
  db.close()
  return filename
}

const start = (filename: string) => {
  const child = spawn(process.execPath, [fixture("upgrader.mjs"), filename], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return { child, exited, output: () => output }
}

const walSize = (filename: string): number => {
  try {
    return fs.statSync(`${filename}-wal`).size
  } catch {
    return 0
  }
}

/** Kills the child with SIGKILL once the upgrade has written `bytes` to the WAL (uncommitted: the WAL grows first). */
const killWhenWalReaches = (child: ChildProcess, filename: string, bytes: number, exited: Promise<unknown>) =>
  new Promise<boolean>((resolve) => {
    const timer = setInterval(() => {
      if (walSize(filename) >= bytes) {
        clearInterval(timer)
        child.kill("SIGKILL")
        resolve(true)
      }
    }, 1)
    void exited.then(() => {
      clearInterval(timer)
      resolve(false)
    })
  })

describe("upgrading schema 1 to 2", () => {
  const ROWS = 90_000

  it("a SIGKILL in the middle of the upgrade leaves schema 1 whole; the next open upgrades it", async () => {
    const filename = makeSchema1(ROWS)
    const before = inspect(filename)
    let killedMidway = 0
    for (let attempt = 0; attempt < 6 && killedMidway < 2; attempt++) {
      const { child, exited } = start(filename)
      const killed = await killWhenWalReaches(child, filename, 2 * 1024 * 1024, exited)
      await exited
      const after = inspect(filename)
      expect(after.integrity).toBe("ok")
      if (!killed) break
      // Killed before the upgrade committed: the database is schema 1, exactly as it was.
      if (after.applied.length === 1) {
        killedMidway++
        expect(after.table).toMatch(/WITHOUT ROWID/)
        expect(digestOf(after.rows)).toBe(digestOf(before.rows))
      }
    }
    expect(killedMidway).toBeGreaterThan(0)
    const { exited, output } = start(filename)
    expect(await exited).toBe(0)
    expect(output()).toContain(`count ${ROWS}`)
    const upgraded = inspect(filename)
    expect(upgraded.applied).toEqual(migrations.map((migration) => migration.id))
    expect(upgraded.table).not.toMatch(/WITHOUT ROWID/)
    expect(upgraded.integrity).toBe("ok")
    expect(digestOf(upgraded.rows)).toBe(digestOf(before.rows))
  })

  it("two processes opening a schema-1 database at once upgrade it once, and both read all of it", async () => {
    const filename = makeSchema1(ROWS / 3)
    const before = inspect(filename)
    const first = start(filename)
    const second = start(filename)
    expect(await first.exited).toBe(0)
    expect(await second.exited).toBe(0)
    expect(first.output()).toContain(`count ${ROWS / 3}`)
    expect(second.output()).toContain(`count ${ROWS / 3}`)
    const upgraded = inspect(filename)
    expect(upgraded.applied).toEqual(migrations.map((migration) => migration.id))
    expect(digestOf(upgraded.rows)).toBe(digestOf(before.rows))
  })
})

/** The PostgreSQL schema written by every released version since PostgreSQL arrived (0.6.0), as plain SQL. */
const releasedPg = ["v0.6.0"] as const

for (const version of releasedPg) {
  describe(`the PostgreSQL schema written by ${version}`, () => {
    it("opens with layerPg: every value, key and timestamp kept, the expiry too, and later writes get greater versions", async () => {
      // A database of its own, so the dump's schema name is free.
      const server = inject("pgUrl")
      const name = `upgrade_${version.replaceAll(".", "_")}_${process.pid}`
      const admin = new pg.Client(server)
      await admin.connect()
      await admin.query(`DROP DATABASE IF EXISTS ${name}`)
      await admin.query(`CREATE DATABASE ${name}`)
      await admin.end()
      const url = new URL(server)
      url.pathname = `/${name}`
      const loader = new pg.Client(url.toString())
      await loader.connect()
      await loader.query(fs.readFileSync(fixture(`${version}/pg.sql`), "utf8"))
      const stored = (
        await loader.query(
          "SELECT created_at, updated_at FROM release_fixture.runtime_storage WHERE key = convert_to('counter', 'UTF8')"
        )
      ).rows[0] as { created_at: string; updated_at: string }
      await loader.end()
      const read = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* Storage
            const before = {
              theme: yield* storage.get("theme", { store: "settings" }),
              zero: yield* storage.get("negative-zero"),
              text: yield* storage.get("text"),
              drafts: yield* storage.count({ store: "notes", prefix: "draft:" }),
              odd: yield* storage.keys({ store: "odd keys" }),
              counter: yield* storage.getEntry("counter"),
              session: yield* storage.getEntry("session", { store: "cache" }),
              stores: (yield* storage.stores()).map((row) => row.store)
            }
            yield* storage.set("after", 1)
            return { ...before, after: yield* storage.getEntry("after") }
          }).pipe(Effect.provide(layerPg({ url: url.toString(), schema: "release_fixture" })))
        )
      )
      expect(read.theme).toEqual(Option.some("dark"))
      expect(Object.is(Option.getOrThrow(read.zero), -0)).toBe(true)
      expect(read.text).toEqual(Option.some('héllo 😀 \u0000 \n "quoted"'))
      expect(read.drafts).toBe(50)
      expect(read.odd).toEqual(["a\u0000b", "é", "\uFFFF", "😀"])
      expect(read.stores).toEqual(["cache", "default", "notes", "odd keys", "settings"])
      const counter = Option.getOrThrow(read.counter)
      expect(counter).toMatchObject({
        value: 2,
        createdAt: Number(stored.created_at),
        updatedAt: Number(stored.updated_at)
      })
      expect(counter.updatedAt).toBeGreaterThan(counter.createdAt)
      expect(Option.getOrThrow(read.session).expiresAt).toBeGreaterThan(Date.now() + 9 * 365 * 24 * 60 * 60 * 1000)
      expect(Option.getOrThrow(read.after).version > counter.version).toBe(true)
    })
  })
}
