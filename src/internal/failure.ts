/**
 * Maps failures of SQLite (thrown by better-sqlite3, or wrapped in a `SqlError` or a defect by @effect/sql) to
 * the library's errors, once, by what was being done. The original failure is kept as `cause` and SQLite's own
 * code (e.g. `SQLITE_FULL`) as `sqliteCode`.
 */
import { DatabaseError, ReadFailedError, WriteFailedError } from "../errors/StorageError.js"

/** SQLite's code for a failure, found on the failure or on one of its causes. */
export const sqliteCodeOf = (failure: unknown): string | undefined => {
  let current: unknown = failure
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const code: unknown = (current as { readonly code?: unknown }).code
    if (typeof code === "string" && code.startsWith("SQLITE_")) return code
    current = (current as { readonly cause?: unknown }).cause
  }
  return undefined
}

/** The deepest `Error` of a chain of causes: the driver's own error, whose message is the most precise. */
const rootCause = (failure: unknown): unknown => {
  let current: unknown = failure
  for (let depth = 0; depth < 8; depth++) {
    const next: unknown = (current as { readonly cause?: unknown } | null)?.cause
    if (!(next instanceof Error)) return current
    current = next
  }
  return current
}

/** A database that is corrupt or not a database fails every operation with `DatabaseError`. */
const unusable = (code: string | undefined): boolean =>
  code !== undefined && (code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB"))

const unusableDatabase = (code: string | undefined, cause: unknown, filename?: string): DatabaseError =>
  new DatabaseError({
    reason: code?.startsWith("SQLITE_NOTADB") ? "The file is not a SQLite database" : "The database file is corrupt",
    filename,
    sqliteCode: code,
    cause
  })

/** A failure while reading. */
export const readFailure = (
  operation: string,
  store: string | undefined,
  failure: unknown
): ReadFailedError | DatabaseError => {
  const sqliteCode = sqliteCodeOf(failure)
  const cause = rootCause(failure)
  return unusable(sqliteCode)
    ? unusableDatabase(sqliteCode, cause)
    : new ReadFailedError({ operation, store, sqliteCode, cause })
}

/** A failure while writing. */
export const writeFailure = (
  operation: string,
  store: string | undefined,
  failure: unknown
): WriteFailedError | DatabaseError => {
  const sqliteCode = sqliteCodeOf(failure)
  const cause = rootCause(failure)
  return unusable(sqliteCode)
    ? unusableDatabase(sqliteCode, cause)
    : new WriteFailedError({ operation, store, sqliteCode, cause })
}

/** A failure while opening or migrating. */
export const openFailure = (reason: string, filename: string | undefined, failure: unknown): DatabaseError => {
  const sqliteCode = sqliteCodeOf(failure)
  return unusable(sqliteCode)
    ? unusableDatabase(sqliteCode, rootCause(failure), filename)
    : new DatabaseError({ reason, filename, sqliteCode, cause: rootCause(failure) })
}
