/**
 * The statements of the SQL backend (`layerSql`), per database engine. The backend's logic (what a write does, in
 * which transaction, with which version and change records) is written once over a dialect; a dialect only says how
 * each statement reads in its engine's SQL, how keys, store names and values are bound, and how they come back.
 * Store names, keys and values are always bound as parameters; no SQL text is ever built from data.
 */
import type { ChangeRecord, Row, Stored } from "./backend.js"
import {
  LOCK_TABLE,
  type MigrationPlan,
  type RangeRead,
  rangeParameters,
  rangeSql,
  Sql,
  sqliteMigrations
} from "./schema.js"
import type { Range } from "./selector.js"

/** A statement with its parameters. */
export interface Statement {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/** The columns a value comes back in: its JSON text in `value` (SQLite: or its bytes), its bytes in `data`. */
export interface ValueColumns {
  readonly value: Stored | null
  readonly data?: Uint8Array | null
}

/**
 * One engine's statements. `now` is the current time (ms since the epoch), which tells which entries have expired:
 * every read of entries skips expired ones. Rows come back with the columns noted; keys and store names in them are
 * read with `name`, values with `text`.
 */
export interface Dialect {
  readonly engine: "sqlite" | "pg"
  /** The plan of this engine's migrations. */
  readonly migrations: MigrationPlan
  /**
   * The channel every committed write notifies, when the engine has notifications (PostgreSQL's `NOTIFY`): watchers
   * listen on it instead of polling the log's head.
   */
  readonly channel: string | undefined
  /** The first statement of a write transaction: takes the write lock, so no other writer comes in between. */
  readonly lock: Statement
  /** The first statement of a read transaction that must read one snapshot, when the engine's default does not. */
  readonly snapshot: Statement | undefined
  /** → value(s) */
  readonly get: (store: string, key: string, now: number) => Statement
  /** → one row when present */
  readonly has: (store: string, key: string, now: number) => Statement
  /** → one row when the store holds any row (expired or not) */
  readonly anyKey: (store: string) => Statement
  /** → version */
  readonly versionOf: (store: string, key: string, now: number) => Statement
  /** → value(s), created_at, updated_at, version, expires_at */
  readonly getEntry: (store: string, key: string, now: number) => Statement
  /** → version: the seq the next write's first change record will take (run it holding the write lock) */
  readonly nextVersion: Statement
  /** → seq per record: appends change records, in order, after the log's last */
  readonly logChanges: (records: ReadonlyArray<ChangeRecord>) => Statement
  /** → head: the seq of the log's last record */
  readonly head: Statement
  /** → seq, version of the origin record (the first one) */
  readonly origin: Statement
  /** → seq, version, kind, store, key, value(s): the records after a seq up to the head, of writes newer than `since` */
  readonly changes: (after: number, head: number, since: number, store: string | undefined, limit: number) => Statement
  /** → at: when one record was written */
  readonly recordAt: (seq: number) => Statement
  /** Drops the records before a seq (trimming). */
  readonly trimBefore: (seq: number) => Statement
  /** Turns a record into the origin of the log, keeping its version (the newest change no longer held). */
  readonly makeOrigin: (seq: number) => Statement
  /**
   * → key / key, value(s) / count / key, value(s), version / key, value(s), created_at, updated_at, version, expires_at:
   * the live keys of a range, in code point order, at most its limit.
   */
  readonly range: (read: RangeRead, store: string, range: Range, now: number) => Statement
  /** → size: UTF-8 bytes of the stored JSON texts (and bytes) of a store */
  readonly size: (store: string, now: number) => Statement
  /** → store, count, size: every store with a live entry, in code point order */
  readonly stores: (now: number) => Statement
  readonly clear: (store: string) => Statement
  /** Inserts or overwrites rows of distinct keys. Overwriting an expired entry creates the key anew. */
  readonly upsert: (
    store: string,
    rows: ReadonlyArray<Row>,
    now: number,
    version: number,
    expiresAt: number | null
  ) => Statement
  /**
   * → first, last: a set or setMany outside a transaction as ONE statement that takes the write lock, writes the rows
   * and their change records with the next version and wakes other connections' watchers, when the engine can
   * (`first` is the version, `last` the log's new head); the write is trimmed afterwards if due.
   */
  readonly setManyAtOnce?: (store: string, rows: ReadonlyArray<Row>, now: number, expiresAt: number | null) => Statement
  /** → key, value(s) of the given keys that exist */
  readonly selectIn: (store: string, keys: ReadonlyArray<string>, now: number) => Statement
  /** → key, expires_at of the keys removed (expires_at: when they expired, NULL: they would not have) */
  readonly deleteIn: (store: string, keys: ReadonlyArray<string>) => Statement
  /** → expires_at: when the next entry expires (no row: none does) */
  readonly nextExpiry: Statement
  /** → store, key: deletes at most `limit` expired entries, the longest expired first */
  readonly deleteExpired: (now: number, limit: number) => Statement
  /** A key or store name as a row gives it. */
  readonly name: (column: unknown) => string
  /** A value as a row gives it (`null`: the row has none, a change record of a removal). */
  readonly text: (row: ValueColumns) => Stored | null
}

const statement = (text: string, params: ReadonlyArray<unknown>): Statement => ({ text, params })

/** SQLite: the statements of {@link Sql}, which SQLite's own backend runs too. */
export const sqliteDialect: Dialect = {
  engine: "sqlite",
  migrations: sqliteMigrations,
  channel: undefined,
  lock: statement(LOCK_TABLE, []),
  snapshot: undefined,
  get: (store, key, now) => statement(Sql.get, [store, key, now]),
  has: (store, key, now) => statement(Sql.has, [store, key, now, store, key]),
  anyKey: (store) => statement(Sql.anyKey, [store]),
  versionOf: (store, key, now) => statement(Sql.versionOf, [store, key, now]),
  getEntry: (store, key, now) => statement(Sql.getEntry, [store, key, now]),
  nextVersion: statement(Sql.nextVersion, []),
  logChanges: (records) => statement(`${Sql.logChanges(records.length)} RETURNING seq`, records.flat()),
  head: statement(Sql.head, []),
  origin: statement(Sql.origin, []),
  changes: (after, head, since, store, limit) =>
    store === undefined
      ? statement(Sql.changes.all, [after, head, since, limit])
      : statement(Sql.changes.byStore, [after, head, since, store, limit]),
  recordAt: (seq) => statement(Sql.recordAt, [seq]),
  trimBefore: (seq) => statement(Sql.trimBefore, [seq]),
  makeOrigin: (seq) => statement(Sql.makeOrigin, [seq]),
  range: (read, store, range, now) => statement(rangeSql(read, range), rangeParameters(store, range, read, now)),
  size: (store, now) => statement(Sql.size, [store, now]),
  stores: (now) => statement(Sql.stores, [now]),
  clear: (store) => statement(Sql.clear, [store]),
  upsert: (store, rows, now, version, expiresAt) =>
    statement(
      Sql.upsert(rows.length),
      rows.flatMap(([key, text]) => [store, key, text, now, now, version, expiresAt])
    ),
  selectIn: (store, keys, now) => statement(Sql.selectIn(keys.length), [store, now, ...keys]),
  deleteIn: (store, keys) => statement(Sql.deleteIn(keys.length), [store, ...keys]),
  nextExpiry: statement(Sql.nextExpiry, []),
  deleteExpired: (now, limit) => statement(Sql.deleteExpired, [now, limit]),
  name: (column) => column as string,
  text: (row) => row.value
}
