/**
 * The database as a file: a consistent copy taken while other processes write (SQLite's online backup), what a
 * file is (a runtime-storage database? of which schema?), and the health checks of `doctor`. These open the file
 * read-only with better-sqlite3: they never migrate or change it.
 */

import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import { DatabaseError, type StorageError } from "../errors/StorageError.js"
import { openFailure } from "../internal/failure.js"
import {
  appliedMigrations,
  CHANGES_TABLE,
  LATEST_MIGRATION,
  MIGRATIONS_TABLE,
  schemaProblem,
  TABLE
} from "../internal/schema.js"
import { type CliFailure, refused } from "./io.js"

/** Opens a database file read-only, runs `f` on it, and closes it. */
const readOnly = <A>(filename: string, what: string, f: (db: Database.Database) => A): Effect.Effect<A, StorageError> =>
  Effect.try({
    try: () => {
      const db = new Database(filename, { readonly: true, fileMustExist: true })
      try {
        db.pragma("busy_timeout = 5000")
        return f(db)
      } finally {
        db.close()
      }
    },
    catch: (cause) => openFailure(what, filename, cause)
  })

/** What a file holds, as far as runtime-storage is concerned. */
export interface Identity {
  /** The newest migration applied (0: none). */
  readonly schema: number
  /** Whether this version of runtime-storage can open it (a newer or foreign schema cannot). */
  readonly problem: string | undefined
}

/**
 * Reads what a database file is, by the rules the library opens it by (its migrations, read read-only); fails with
 * 9005 when it is not a runtime-storage database.
 */
export const identify = (filename: string): Effect.Effect<Identity, StorageError> =>
  Effect.acquireUseRelease(
    Effect.try({
      try: () => new Database(filename, { readonly: true, fileMustExist: true }),
      catch: (cause) => openFailure("Could not read the database", filename, cause)
    }),
    (db) => {
      const query = (sql: string, params: ReadonlyArray<unknown> = []) =>
        Effect.try({
          try: () => db.prepare(sql).all(...params),
          catch: (cause) => openFailure("Could not read the database", filename, cause)
        })
      return Effect.gen(function* () {
        const tables = yield* query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN (?, ?)", [
          TABLE,
          MIGRATIONS_TABLE
        ])
        if (tables.length < 2) {
          return yield* Effect.fail(
            new DatabaseError({
              reason: "This SQLite file is not a runtime-storage database (it has no runtime_storage tables)",
              filename,
              sqliteCode: "SQLITE_NOTADB"
            })
          )
        }
        const applied = yield* appliedMigrations({ query })
        return { schema: applied.latest, problem: schemaProblem(applied, filename)?.reason }
      })
    },
    (db) => Effect.sync(() => db.close())
  )

/**
 * Copies the database to `destination` with SQLite's online backup: a consistent snapshot while other processes
 * keep reading and writing (the copy restarts if one commits mid-copy; after the first step it copies every page
 * in one step, so it finishes). The copy is made under a temporary name with mode 0600, checked, flushed to disk,
 * and only then put in place: it never replaces an existing file unless `force`.
 */
export const backup = (
  filename: string,
  destination: string,
  force: boolean
): Effect.Effect<void, StorageError | CliFailure> =>
  Effect.gen(function* () {
    if (!force && fs.existsSync(destination)) {
      return yield* Effect.fail(refused(`${destination} exists: give --force to replace it`))
    }
    if (fs.existsSync(destination) && fs.realpathSync(destination) === fs.realpathSync(filename)) {
      return yield* Effect.fail(refused(`${destination} is the database itself: back it up to another file`))
    }
    // A database in use (or not closed cleanly) has a -wal beside it that SQLite would apply to the new file.
    for (const suffix of ["-wal", "-shm"]) {
      if (fs.existsSync(`${destination}${suffix}`)) {
        return yield* Effect.fail(
          refused(`${destination}${suffix} exists: ${destination} is a database in use, or was not closed cleanly`)
        )
      }
    }
    const temporary = path.join(
      path.dirname(destination),
      `.${path.basename(destination)}.${process.pid}-${randomBytes(4).toString("hex")}.backup`
    )
    const fail = (what: string) => (cause: unknown) => openFailure(what, destination, cause)
    yield* Effect.acquireUseRelease(
      Effect.try({
        try: () => fs.closeSync(fs.openSync(temporary, "wx", 0o600)),
        catch: fail("Could not create the backup file")
      }),
      () =>
        Effect.gen(function* () {
          const source = yield* Effect.try({
            try: () => new Database(filename, { readonly: true, fileMustExist: true }),
            catch: (cause) => openFailure("Could not open the database", filename, cause)
          })
          yield* Effect.tryPromise({
            try: () => source.backup(temporary, { progress: () => 0x7fffffff }),
            catch: (cause) => openFailure("The backup failed", filename, cause)
          }).pipe(Effect.ensuring(Effect.sync(() => source.close())))
          const check = yield* readOnly(temporary, "Could not check the backup", (db) =>
            db.pragma("quick_check", { simple: true })
          )
          if (check !== "ok") {
            return yield* Effect.fail(
              new DatabaseError({
                reason: `The backup does not pass SQLite's quick_check (${String(check)})`,
                filename: destination
              })
            )
          }
          yield* Effect.try({
            try: () => {
              fs.chmodSync(temporary, 0o600)
              const fd = fs.openSync(temporary, "r+")
              try {
                fs.fsyncSync(fd)
              } finally {
                fs.closeSync(fd)
              }
              if (force) fs.renameSync(temporary, destination)
              else fs.linkSync(temporary, destination)
            },
            catch: fail("Could not put the backup in place")
          })
        }),
      () =>
        Effect.sync(() => {
          for (const suffix of ["", "-journal", "-wal", "-shm"]) fs.rmSync(`${temporary}${suffix}`, { force: true })
        })
    )
  })

/** One check of `doctor`. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

const modeOf = (file: string): number | undefined => {
  try {
    return fs.statSync(file).mode & 0o777
  } catch {
    return undefined
  }
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, "0")}`

/** A check of a file's mode: fails when any of the `forbidden` bits is set, saying why that matters. */
const modeCheck = (name: string, file: string, forbidden: number, problem: string): Check => {
  const mode = modeOf(file)
  if (mode === undefined) return { name, ok: false, detail: "unknown (cannot stat it)" }
  const ok = (mode & forbidden) === 0
  return { name, ok, detail: ok ? octal(mode) : `${octal(mode)}: ${problem}` }
}

/** The checks of `doctor`, read-only: what a person looking at a misbehaving app's storage wants to know first. */
export const doctor = (filename: string): Effect.Effect<ReadonlyArray<Check>, StorageError> =>
  Effect.gen(function* () {
    const checks: Array<Check> = []
    const identity = yield* identify(filename)
    checks.push({
      name: "schema",
      ok: identity.problem === undefined,
      detail:
        identity.problem ??
        (identity.schema === LATEST_MIGRATION
          ? `${identity.schema} (current)`
          : `${identity.schema} (this version upgrades it to ${LATEST_MIGRATION} when it opens it)`)
    })
    const facts = yield* readOnly(filename, "Could not read the database", (db) => ({
      integrity: db.pragma("integrity_check", { simple: true }) as string,
      journal: db.pragma("journal_mode", { simple: true }) as string,
      entries: db.prepare(`SELECT count(*) FROM ${TABLE}`).pluck().get() as number,
      stores: db.prepare(`SELECT count(DISTINCT store) FROM ${TABLE}`).pluck().get() as number,
      changes: db.prepare(`SELECT count(*) FROM ${CHANGES_TABLE}`).pluck().get() as number,
      pageSize: db.pragma("page_size", { simple: true }) as number,
      freePages: db.pragma("freelist_count", { simple: true }) as number
    }))
    checks.push({ name: "integrity", ok: facts.integrity === "ok", detail: facts.integrity })
    checks.push({
      name: "journal mode",
      ok: facts.journal === "wal",
      detail:
        facts.journal === "wal"
          ? "wal"
          : `${facts.journal} (runtime-storage uses WAL; it sets it when it opens the file)`
    })
    checks.push({
      name: "synchronous",
      ok: true,
      detail:
        'set by each connection: NORMAL (durability "relaxed", the default) or FULL ("strict"); not stored in the file'
    })
    const size = fs.statSync(filename).size
    checks.push({
      name: "contents",
      ok: true,
      detail: `${facts.entries} entries in ${facts.stores} stores, ${facts.changes} change records, ${size} bytes (${facts.freePages * facts.pageSize} free)`
    })
    let wal = 0
    try {
      wal = fs.statSync(`${filename}-wal`).size
    } catch {
      // No WAL file: every connection closed cleanly.
    }
    const WAL_WARNING = 64 * 1024 * 1024
    checks.push({
      name: "WAL size",
      ok: wal < WAL_WARNING,
      detail:
        wal < WAL_WARNING
          ? `${wal} bytes`
          : `${wal} bytes: a reader held a snapshot for a long time, so checkpoints could not shrink it`
    })
    checks.push(
      modeCheck("file mode", filename, 0o077, "other users can read or write the app's data (chmod 600)"),
      modeCheck(
        "directory mode",
        path.dirname(filename),
        0o022,
        "other users can create or delete files beside the database (chmod 700)"
      )
    )
    return checks
  })
