/**
 * The errors of runtime-storage. Every failure of the public API is one of these seven classes: a real `Error`
 * with a `_tag` (for `Effect.catchTag`), a stable numeric `code`, a `message` built from its fields, and the
 * lower-level failure as `cause` where one was wrapped.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"
import { quote } from "../internal/quote.js"

/**
 * The stable numeric code of each error, by `_tag`.
 *
 * @since 0.1.0
 */
export const StorageErrorCode = {
  Generic: 9000,
  NotFound: 9001,
  WriteFailed: 9002,
  ReadFailed: 9003,
  InvalidKey: 9004,
  DatabaseError: 9005,
  SerializationError: 9006
} as const

/**
 * One of the numeric codes of {@link StorageErrorCode}.
 *
 * @since 0.1.0
 */
export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode]

const TypeId: unique symbol = Symbol.for("runtime-storage/StorageError")

const describeStore = (store: string | undefined): string => (store === undefined ? "" : ` in store ${quote(store)}`)

const withCodes = (text: string, sqliteCode: string | undefined, sqlState: string | undefined): string =>
  `${text}${sqliteCode === undefined ? "" : ` (${sqliteCode})`}${sqlState === undefined ? "" : ` (SQLSTATE ${sqlState})`}`

const causeMessage = (cause: unknown): string =>
  cause instanceof Error && cause.message !== "" ? `: ${cause.message}` : ""

/**
 * A failure that fits no other class, such as a Promise client used after `close()` or a missing app name.
 *
 * @since 0.1.0
 */
export class GenericError extends Data.TaggedError("Generic")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.Generic
  override get message(): string {
    return this.reason
  }
}

/**
 * An operation that needs an existing key did not find it.
 *
 * @since 0.1.0
 */
export class NotFoundError extends Data.TaggedError("NotFound")<{
  readonly key: string
  readonly store: string
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.NotFound
  override get message(): string {
    return `Key ${quote(this.key)} was not found${describeStore(this.store)}`
  }
}

/**
 * The database failed while writing. `sqliteCode` is SQLite's own code, e.g. `SQLITE_FULL` or `SQLITE_BUSY`;
 * `sqlState` PostgreSQL's, e.g. `40001`.
 *
 * @since 0.1.0
 */
export class WriteFailedError extends Data.TaggedError("WriteFailed")<{
  readonly operation: string
  readonly store?: string | undefined
  readonly sqliteCode?: string | undefined
  /** PostgreSQL's SQLSTATE of the failure (e.g. `40001`, `57P01`), on a PostgreSQL database. @since 0.6.0 */
  readonly sqlState?: string | undefined
  readonly cause?: unknown
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.WriteFailed
  override get message(): string {
    return withCodes(
      `Could not write (${this.operation})${describeStore(this.store)}${causeMessage(this.cause)}`,
      this.sqliteCode,
      this.sqlState
    )
  }
}

/**
 * The database failed while reading. `sqliteCode` is SQLite's own code, e.g. `SQLITE_BUSY`; `sqlState`
 * PostgreSQL's.
 *
 * @since 0.1.0
 */
export class ReadFailedError extends Data.TaggedError("ReadFailed")<{
  readonly operation: string
  readonly store?: string | undefined
  readonly sqliteCode?: string | undefined
  /** PostgreSQL's SQLSTATE of the failure (e.g. `40001`, `57P01`), on a PostgreSQL database. @since 0.6.0 */
  readonly sqlState?: string | undefined
  readonly cause?: unknown
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.ReadFailed
  override get message(): string {
    return withCodes(
      `Could not read (${this.operation})${describeStore(this.store)}${causeMessage(this.cause)}`,
      this.sqliteCode,
      this.sqlState
    )
  }
}

/**
 * A key, a store name, or the shape of an argument was refused before anything touched the database.
 * `reason` says what was wrong.
 *
 * @since 0.1.0
 */
export class InvalidKeyError extends Data.TaggedError("InvalidKey")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.InvalidKey
  override get message(): string {
    return this.reason
  }
}

/**
 * The database could not be opened or migrated, is corrupt, is not a database, has a schema newer than this
 * version of the library, or (PostgreSQL) cannot be reached or used: the server is down or restarting, the
 * connection dropped, authentication failed.
 *
 * @since 0.1.0
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly reason: string
  readonly filename?: string | undefined
  readonly sqliteCode?: string | undefined
  /** PostgreSQL's SQLSTATE of the failure (e.g. `40001`, `57P01`), on a PostgreSQL database. @since 0.6.0 */
  readonly sqlState?: string | undefined
  readonly cause?: unknown
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.DatabaseError
  override get message(): string {
    const where = this.filename === undefined ? "" : ` (database ${quote(this.filename)})`
    return withCodes(`${this.reason}${where}${causeMessage(this.cause)}`, this.sqliteCode, this.sqlState)
  }
}

/**
 * A watch asked for the changes after a version (`since`) that the change feed no longer holds all of: the history
 * it keeps (by default the last 100,000 changes or 7 days, whichever is more) starts after version `oldest`. Code 9001
 * (NotFound): those changes are not found. List the entries again (`watch(…, { initial: true })`) and resume from
 * there; nothing is ever skipped silently.
 *
 * @since 0.3.0
 */
export class HistoryTrimmedError extends Data.TaggedError("HistoryTrimmed")<{
  readonly since: string
  readonly oldest: string
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.NotFound
  override get message(): string {
    return `The changes after version ${this.since} are no longer all kept: the change history starts after version ${this.oldest}. List the entries again (watch with { initial: true }) and resume from there`
  }
}

/**
 * A value cannot be stored as JSON without being changed (`path` says where and `reason` what it was), or a
 * stored value is not valid JSON.
 *
 * @since 0.1.0
 */
export class SerializationError extends Data.TaggedError("SerializationError")<{
  readonly key: string
  readonly store: string
  readonly path: string
  readonly reason: string
  readonly cause?: unknown
}> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly code = StorageErrorCode.SerializationError
  override get message(): string {
    return `Value of key ${quote(this.key)}${describeStore(this.store)}: ${this.path} ${this.reason}`
  }
}

/**
 * Any error of runtime-storage.
 *
 * @since 0.1.0
 */
export type StorageError =
  | GenericError
  | NotFoundError
  | WriteFailedError
  | ReadFailedError
  | InvalidKeyError
  | DatabaseError
  | SerializationError
  | HistoryTrimmedError

/**
 * Whether a value is one of the errors of runtime-storage.
 *
 * @since 0.1.0
 */
export const isStorageError = (u: unknown): u is StorageError => Predicate.hasProperty(u, TypeId)
