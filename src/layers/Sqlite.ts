/**
 * The SQLite backend: one better-sqlite3 connection per layer, with its statements prepared once, for the life of
 * the connection. Each operation is one synchronous call into SQLite, so operations of concurrent fibers never
 * interleave, and a batch is one `BEGIN IMMEDIATE` transaction.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DatabaseError, quote } from "../errors/StorageError.js"
import type { Backend, Row } from "../internal/backend.js"
import { openFailure, readFailure, writeFailure } from "../internal/failure.js"
import { CHUNK, chunks, type MigrationDriver, migrate, Sql } from "../internal/schema.js"
import { make, Storage } from "../services/Storage.js"

/**
 * How durable a completed write is.
 * - `"relaxed"` (default): WAL with `synchronous=NORMAL`. A completed write survives any crash of the process;
 *   the last writes before a power loss or OS crash may be lost (the database stays consistent).
 * - `"strict"`: WAL with `synchronous=FULL`. A completed write also survives power loss.
 *
 * @since 0.1.0
 */
export type Durability = "relaxed" | "strict"

/**
 * Options of {@link layerSqlite}.
 *
 * @since 0.1.0
 */
export interface SqliteOptions {
  /** The database file (missing parent directories are created), or `":memory:"`. */
  readonly filename: string
  /** See {@link Durability}. Default `"relaxed"`. */
  readonly durability?: Durability | undefined
  /** How long to wait for another connection's lock before failing. Default 5 seconds. */
  readonly busyTimeout?: Duration.DurationInput | undefined
}

type Statement = Database.Statement<Array<unknown>, unknown>

const isFileBacked = (filename: string): boolean => filename !== ":memory:" && filename !== ""

const errnoOf = (cause: unknown): string => (cause as NodeJS.ErrnoException).code ?? "error"

/**
 * Creates the missing directories of the database with mode 0700 and a missing database file with mode 0600,
 * whatever the umask: this is the user's private data. SQLite gives the `-wal` and `-shm` files the mode of the
 * database file.
 */
const createPrivately = (filename: string): void => {
  const directory = path.dirname(filename)
  try {
    const created = fs.mkdirSync(directory, { recursive: true, mode: 0o700 })
    if (created !== undefined) fs.chmodSync(directory, 0o700)
  } catch (cause) {
    throw new DatabaseError({
      reason: `Could not create the directory of the database (${errnoOf(cause)}): ${quote(directory)}`,
      filename,
      cause
    })
  }
  let fd: number
  try {
    fd = fs.openSync(filename, "wx", 0o600)
  } catch (cause) {
    // An existing file (or one another process just created) is opened as it is.
    if (errnoOf(cause) === "EEXIST") return
    throw new DatabaseError({ reason: `Could not create the database file (${errnoOf(cause)})`, filename, cause })
  }
  try {
    fs.fchmodSync(fd, 0o600)
  } finally {
    fs.closeSync(fd)
  }
}

/** Opens the connection with its pragmas set. @internal */
export const openDatabase = (options: SqliteOptions): Database.Database => {
  const { filename } = options
  if (isFileBacked(filename)) createPrivately(filename)
  const db = new Database(filename)
  try {
    const busyTimeout = Math.max(0, Math.round(Duration.toMillis(options.busyTimeout ?? Duration.seconds(5))))
    db.pragma(`busy_timeout = ${busyTimeout}`)
    // Reading the header first makes a file that is not a database fail here, before anything is written to it.
    db.pragma("schema_version")
    db.pragma("journal_mode = WAL")
    db.pragma(`synchronous = ${options.durability === "strict" ? "FULL" : "NORMAL"}`)
    db.pragma("trusted_schema = OFF")
    return db
  } catch (cause) {
    db.close()
    throw cause
  }
}

const migrationDriver = (db: Database.Database, filename: string): MigrationDriver<DatabaseError> => {
  const exec = (sql: string): Effect.Effect<void, DatabaseError> =>
    Effect.try({
      try: () => {
        db.exec(sql)
      },
      catch: (cause) => openFailure("Could not migrate the database", filename, cause)
    })
  return {
    query: (sql, params = []) =>
      Effect.try({
        try: () => {
          const statement = db.prepare(sql) as Statement
          if (statement.reader) return statement.all(...params)
          statement.run(...params)
          return []
        },
        catch: (cause) => openFailure("Could not migrate the database", filename, cause)
      }),
    writeTransaction: (self) =>
      Effect.acquireUseRelease(
        exec("BEGIN IMMEDIATE"),
        () => Effect.zipLeft(self, exec("COMMIT")),
        () => (db.inTransaction ? Effect.ignore(exec("ROLLBACK")) : Effect.void)
      )
  }
}

const makeBackend = (db: Database.Database): Backend => {
  const prepare = (sql: string): Statement => db.prepare(sql) as Statement
  const get = prepare(Sql.get).pluck()
  const has = prepare(Sql.has).pluck()
  const keys = prepare(Sql.keys).pluck()
  const entries = prepare(Sql.entries).raw()
  const size = prepare(Sql.size).pluck()
  const clear = prepare(Sql.clear)
  const upsert = prepare(Sql.upsert(1))
  // IN-list statements are prepared once per list length and kept: lengths are at most CHUNK.
  const inLists = new Map<string, Statement>()
  const inList = (kind: "selectIn" | "deleteIn", length: number): Statement => {
    const id = `${kind}:${length}`
    let statement = inLists.get(id)
    if (statement === undefined) {
      statement = prepare(Sql[kind](length))
      if (kind === "selectIn") statement.raw()
      inLists.set(id, statement)
    }
    return statement
  }
  const writeRows = db.transaction((store: string, rows: ReadonlyArray<Row>) => {
    const now = Date.now()
    for (const [key, text] of rows) upsert.run(store, key, text, now, now)
  })
  const deleteKeys = db.transaction((store: string, keys: ReadonlyArray<string>) => {
    let removed = 0
    for (const chunk of chunks(keys)) removed += inList("deleteIn", chunk.length).run(store, ...chunk).changes
    return removed
  })

  const updateKey = db.transaction(<E>(store: string, key: string, f: (text: string | undefined) => string | E) => {
    const text = f(get.get(store, key) as string | undefined)
    if (typeof text === "string") {
      const now = Date.now()
      upsert.run(store, key, text, now, now)
    }
    return text
  })

  const read = <A>(operation: string, store: string, f: () => A) =>
    Effect.try({ try: f, catch: (cause) => readFailure(operation, store, cause) })
  const write = <A>(operation: string, store: string, f: () => A) =>
    Effect.try({ try: f, catch: (cause) => writeFailure(operation, store, cause) })

  return {
    get: (store, key) => read("get", store, () => get.get(store, key) as string | undefined),
    getMany: (store, keys) =>
      read("getMany", store, () => {
        const rows: Array<Row> = []
        for (let start = 0; start < keys.length; start += CHUNK) {
          const chunk = keys.slice(start, start + CHUNK)
          for (const row of inList("selectIn", chunk.length).all(store, ...chunk)) rows.push(row as Row)
        }
        return rows
      }),
    has: (store, key) => read("has", store, () => has.get(store, key) !== undefined),
    keys: (store) => read("keys", store, () => keys.all(store) as Array<string>),
    entries: (store) => read("entries", store, () => entries.all(store) as Array<Row>),
    size: (store) => read("size", store, () => Number(size.get(store))),
    setMany: (store, rows) =>
      write(rows.length === 1 ? "set" : "setMany", store, () => {
        if (rows.length === 1) {
          const now = Date.now()
          const [key, text] = rows[0]!
          upsert.run(store, key, text, now, now)
        } else {
          writeRows.immediate(store, rows)
        }
      }),
    deleteMany: (store, keys) =>
      write(keys.length === 1 ? "remove" : "deleteMany", store, () =>
        keys.length === 1 ? inList("deleteIn", 1).run(store, keys[0]).changes : deleteKeys.immediate(store, keys)
      ),
    clear: (store) =>
      write("clear", store, () => {
        clear.run(store)
      }),
    update: <E extends object>(store: string, key: string, f: (text: string | undefined) => string | E) =>
      Effect.flatMap(
        write("update", store, () => updateKey.immediate(store, key, f) as string | E),
        (text) => (typeof text === "string" ? Effect.succeed(text) : Effect.fail(text))
      )
  }
}

/**
 * Opens the database, sets its pragmas, migrates it and prepares the backend; closes it when the scope closes.
 *
 * @internal
 */
export const makeSqliteBackend = (options: SqliteOptions) =>
  Effect.gen(function* () {
    const { filename } = options
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openDatabase(options),
        catch: (cause) =>
          cause instanceof DatabaseError ? cause : openFailure("Could not open the database", filename, cause)
      }),
      (db) => Effect.sync(() => db.close())
    )
    yield* migrate(migrationDriver(db, filename), filename)
    return yield* Effect.try({
      try: () => makeBackend(db),
      catch: (cause) => openFailure("Could not prepare the database", filename, cause)
    })
  })

/**
 * A `Storage` on a SQLite database file that this layer opens (creating it and its parent directories when
 * missing), migrates, and closes when the layer is released. Every open sets `journal_mode=WAL`, `synchronous`
 * from `durability`, `busy_timeout` and `trusted_schema=OFF` explicitly.
 *
 * @since 0.1.0
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<Storage, DatabaseError> =>
  Layer.scoped(Storage, Effect.map(makeSqliteBackend(options), make))
