/**
 * Maps failures of SQLite (thrown by better-sqlite3, or wrapped in a `SqlError` or a defect by @effect/sql) and of
 * PostgreSQL (node-postgres's errors, in a `SqlError`) to the library's errors, once, by what was being done. The
 * original failure is kept as `cause`, SQLite's own code (e.g. `SQLITE_FULL`) as `sqliteCode` and PostgreSQL's
 * SQLSTATE (e.g. `40001`) as `sqlState`.
 */
import { DatabaseError, ReadFailedError, WriteFailedError } from "../errors/StorageError.js"

/** A link of a chain of causes, as the drivers' errors shape them. */
interface Link {
  readonly code?: unknown
  readonly severity?: unknown
  readonly message?: unknown
  readonly cause?: unknown
}

/** The first of a failure and its causes (at most 8 deep) that `pick` finds something in, and what it found. */
const findInCauses = <A>(failure: unknown, pick: (link: Link) => A | undefined): A | undefined => {
  let current: unknown = failure
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const found = pick(current as Link)
    if (found !== undefined) return found
    current = (current as Link).cause
  }
  return undefined
}

/** SQLite's code for a failure, found on the failure or on one of its causes. */
export const sqliteCodeOf = (failure: unknown): string | undefined =>
  findInCauses(failure, ({ code }) => (typeof code === "string" && code.startsWith("SQLITE_") ? code : undefined))

/** PostgreSQL's SQLSTATE of a failure, found on the failure or on one of its causes (a server's error has one). */
export const sqlStateOf = (failure: unknown): string | undefined =>
  findInCauses(failure, ({ code, severity }) =>
    typeof code === "string" && typeof severity === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
  )

/** Node's codes of a network failure: the server cannot be reached, or the connection to it broke. */
const NETWORK = /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)$/
/** What node-postgres says when a connection ends under a query, or cannot be had in time. */
const DROPPED =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed/i

/**
 * Whether a failure says the PostgreSQL server cannot be reached or used at all (rather than one statement failing):
 * a network failure, a dropped connection, SQLSTATE classes 08 (connection), 28 (authorization) and 3D (no such
 * database), the server shutting down or starting (57P01-57P03), or out of connections (53300).
 */
const unreachable = (failure: unknown, sqlState: string | undefined): boolean => {
  if (sqlState !== undefined)
    return /^(08|28|3D)/.test(sqlState) || /^57P0[123]$/.test(sqlState) || sqlState === "53300"
  return (
    findInCauses(failure, ({ code, message }) =>
      (typeof code === "string" && NETWORK.test(code)) || (typeof message === "string" && DROPPED.test(message))
        ? true
        : undefined
    ) === true
  )
}

const unreachableDatabase = (sqlState: string | undefined, cause: unknown, filename?: string): DatabaseError =>
  new DatabaseError({
    reason: "The PostgreSQL server cannot be reached or used",
    filename,
    sqlState,
    cause
  })

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

/**
 * What every failure is first: a corrupt file or not a database (SQLite), or a server that cannot be reached or used
 * (PostgreSQL), both `DatabaseError`; otherwise `otherwise` makes the error of what was being done, with the codes.
 */
const classify = <E>(
  failure: unknown,
  filename: string | undefined,
  otherwise: (codes: { sqliteCode: string | undefined; sqlState: string | undefined; cause: unknown }) => E
): E | DatabaseError => {
  const sqliteCode = sqliteCodeOf(failure)
  const sqlState = sqlStateOf(failure)
  const cause = rootCause(failure)
  if (unusable(sqliteCode)) return unusableDatabase(sqliteCode, cause, filename)
  if (sqliteCode === undefined && unreachable(failure, sqlState)) return unreachableDatabase(sqlState, cause, filename)
  return otherwise({ sqliteCode, sqlState, cause })
}

/** A failure while reading. */
export const readFailure = (
  operation: string,
  store: string | undefined,
  failure: unknown
): ReadFailedError | DatabaseError =>
  classify(failure, undefined, (codes) => new ReadFailedError({ operation, store, ...codes }))

/** A failure while writing. */
export const writeFailure = (
  operation: string,
  store: string | undefined,
  failure: unknown
): WriteFailedError | DatabaseError =>
  classify(failure, undefined, (codes) => new WriteFailedError({ operation, store, ...codes }))

/** A failure while opening or migrating. */
export const openFailure = (reason: string, filename: string | undefined, failure: unknown): DatabaseError =>
  classify(failure, filename, (codes) => new DatabaseError({ reason, filename, ...codes }))
