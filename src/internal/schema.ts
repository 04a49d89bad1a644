/**
 * The SQL of runtime-storage: its schema, its migrations and the statements both SQL backends run. Store names
 * and keys are always bound as parameters; no SQL text is ever built from data.
 */
import * as Effect from "effect/Effect"
import { DatabaseError } from "../errors/StorageError.js"
import type { Range } from "./selector.js"

/** The table of values, keyed by `(store, key)`. */
export const TABLE = "runtime_storage"
/** The one-row table of the last version given to a write (schema 2; schema 3 replaced it with the change log). */
const CLOCK_TABLE = "runtime_storage_clock"
/** The change log: one record per changed entry (or cleared store), in commit order. */
export const CHANGES_TABLE = "runtime_storage_changes"

/**
 * The kinds of change records. `Origin` is the first record of the log: it marks where the kept history starts (the
 * changes before it were trimmed or happened before the log existed) and takes no part in the feed. `Expire` is the
 * deletion of an entry that had expired (by the sweeper, or by a write that met it).
 */
export const Kind = { Origin: 0, Set: 1, Remove: 2, Clear: 3, Expire: 4 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]
/** The index of the entries that expire, in the order they do (schema 4). */
export const EXPIRY_INDEX = `${TABLE}_expiry`
/** This library's own migrations table. */
export const MIGRATIONS_TABLE = "runtime_storage_migrations"

/** Rows per multi-row statement: far below SQLite's limit of 32,766 bound parameters. */
export const CHUNK = 500

export interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

/**
 * The migrations, in order. A database with a higher applied id than the last one here is newer than us. A released
 * migration is never changed: a new schema is a new migration, and `test/fixtures/` keeps a database of every
 * released version to prove the upgrade from it.
 */
export const migrations: ReadonlyArray<Migration> = [
  {
    // 0.1.0.
    id: 1,
    name: "create_runtime_storage",
    statements: [
      `CREATE TABLE ${TABLE} (
        store TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (store, key)
      ) WITHOUT ROWID`
    ]
  },
  {
    // A rowid table, with (store, key) in an index of its own. In the WITHOUT ROWID table of schema 1 a large value
    // lived inside the key's b-tree, so every operation on the other keys of its store walked past its overflow
    // pages (with one 50 MB value, deleting 1,000 small keys took 35 s). Now the index holds only (store, key,
    // rowid): key lookups, key listings and counts never read a value, and `value` is the last column, so reading
    // a row's version or timestamps never walks its value's overflow chain either.
    // Every write is given a version from the one-row clock table, incremented once per committed write call (the
    // write lock orders them across processes); the rows of schema 1 all get version 1.
    id: 2,
    name: "rowid_table_key_index_versions",
    statements: [
      `CREATE TABLE ${TABLE}_v2 (
        id INTEGER PRIMARY KEY,
        store TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        value TEXT NOT NULL
      )`,
      `INSERT INTO ${TABLE}_v2 (store, key, version, created_at, updated_at, value)
        SELECT store, key, 1, created_at, updated_at, value FROM ${TABLE} ORDER BY store, key`,
      `DROP TABLE ${TABLE}`,
      `ALTER TABLE ${TABLE}_v2 RENAME TO ${TABLE}`,
      `CREATE UNIQUE INDEX ${TABLE}_key ON ${TABLE} (store, key)`,
      `CREATE TABLE ${CLOCK_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`,
      `INSERT INTO ${CLOCK_TABLE} (id, version) VALUES (1, 1)`
    ]
  },
  {
    // 0.3.0: the change feed. Every committed write appends one record per changed entry (or one per cleared store)
    // to the change log, in the same transaction as the change itself, so neither exists without the other. A
    // record's `seq` is its place in the log; its `version` is the version of the write that made it: the `seq` of
    // that write's first record, so versions stay increasing in commit order (the write lock orders commits) and
    // the log replaces the clock table: the next version is the log's last `seq` + 1, and a write pays for one
    // appended page instead of a clock page besides.
    // The log starts with an origin record at the clock's last version, so versions continue from it. Its `version`
    // is the newest change the log does not hold: the clock's last version, or 0 for an empty database whose clock
    // never moved (schema 2's clock starts at 1, and its first write takes 2; schema 1's rows were all given 1): a
    // `since` older than it cannot be replayed.
    id: 3,
    name: "change_log",
    statements: [
      `CREATE TABLE ${CHANGES_TABLE} (
        seq INTEGER PRIMARY KEY,
        version INTEGER NOT NULL,
        at INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        store TEXT,
        key TEXT,
        value TEXT
      )`,
      `INSERT INTO ${CHANGES_TABLE} (seq, version, at, kind)
        SELECT version, CASE WHEN version = 1 AND NOT EXISTS (SELECT 1 FROM ${TABLE}) THEN 0 ELSE version END, 0,
          ${Kind.Origin} FROM ${CLOCK_TABLE}`,
      `DROP TABLE ${CLOCK_TABLE}`
    ]
  },
  {
    // 0.4.0: expiring entries. `expires_at` (ms since the epoch, NULL: never) sits before `value`, so reading it never
    // walks a large value's overflow pages; the table is rebuilt for that (ADD COLUMN would put it last), in the
    // migration's one transaction. A partial index holds only the entries that expire, in the order they do: the
    // sweeper finds the expired ones without reading the others, and an entry without expiry costs no index write.
    id: 4,
    name: "expiry",
    statements: [
      `CREATE TABLE ${TABLE}_v4 (
        id INTEGER PRIMARY KEY,
        store TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        value TEXT NOT NULL
      )`,
      `INSERT INTO ${TABLE}_v4 (id, store, key, version, created_at, updated_at, expires_at, value)
        SELECT id, store, key, version, created_at, updated_at, NULL, value FROM ${TABLE} ORDER BY id`,
      `DROP TABLE ${TABLE}`,
      `ALTER TABLE ${TABLE}_v4 RENAME TO ${TABLE}`,
      `CREATE UNIQUE INDEX ${TABLE}_key ON ${TABLE} (store, key)`,
      `CREATE INDEX ${EXPIRY_INDEX} ON ${TABLE} (expires_at, store, key) WHERE expires_at IS NOT NULL`
    ]
  }
]

/** The id of the newest migration this version knows. */
export const LATEST_MIGRATION = migrations[migrations.length - 1]!.id

const placeholders = (count: number, group: string): string => Array.from({ length: count }, () => group).join(", ")

const changesSql = (byStore: boolean): string =>
  `SELECT seq, version, kind, store, key, value FROM ${CHANGES_TABLE} WHERE seq > ? AND seq <= ? AND version > ?${byStore ? " AND store = ?" : ""} AND kind > ${Kind.Origin} ORDER BY seq LIMIT ?`

/**
 * The condition of an entry that has not expired, for a `?` bound to the current time. Every read of entries has it:
 * an expired entry is absent, whether or not it has been deleted yet.
 */
const LIVE = "(expires_at IS NULL OR expires_at > ?)"

/** (now, store) → key: the expired keys of a store that are not deleted yet, from the expiry index alone. */
const EXPIRED_KEYS = `SELECT key FROM ${TABLE} INDEXED BY ${EXPIRY_INDEX} WHERE expires_at <= ? AND store = ?`

/** What a range statement reads. */
export type RangeRead = "keys" | "entries" | "count" | "versioned" | "meta"

/**
 * The statements of the SQL backends. `?` parameters, in the order noted; `now` is the current time (ms since the
 * epoch), which tells which entries have expired.
 */
export const Sql = {
  /** (store, key, now) → value */
  get: `SELECT value FROM ${TABLE} WHERE store = ? AND key = ? AND ${LIVE}`,
  /**
   * (store, key, now, store, key) → one row when present: from the key index alone, less an expired entry not
   * deleted yet, found in the expiry index (reading the row for its expiry made `has` grow with the store: a random
   * page read once the table outgrows the cache)
   */
  has: `SELECT 1 AS present FROM ${TABLE} WHERE store = ? AND key = ? AND NOT EXISTS (SELECT 1 FROM ${TABLE} INDEXED BY ${EXPIRY_INDEX} WHERE expires_at <= ? AND store = ? AND key = ?)`,
  /** (store) → one row when the store holds any row (expired or not) */
  anyKey: `SELECT 1 AS present FROM ${TABLE} WHERE store = ? LIMIT 1`,
  /** (store, key, now) → version */
  versionOf: `SELECT version FROM ${TABLE} WHERE store = ? AND key = ? AND ${LIVE}`,
  /** (store, key, now) → value, created_at, updated_at, version, expires_at */
  getEntry: `SELECT value, created_at, updated_at, version, expires_at FROM ${TABLE} WHERE store = ? AND key = ? AND ${LIVE}`,
  /** () → the version of the next write: the seq its first change record will take (run it holding the write lock) */
  nextVersion: `SELECT COALESCE(MAX(seq), 0) + 1 AS version FROM ${CHANGES_TABLE}`,
  /** (version, at, kind, store, key, value) per record: appends change records */
  logChanges: (rows: number): string =>
    `INSERT INTO ${CHANGES_TABLE} (version, at, kind, store, key, value) VALUES ${placeholders(rows, "(?, ?, ?, ?, ?, ?)")}`,
  /** () → head: the seq of the last record */
  head: `SELECT COALESCE(MAX(seq), 0) AS head FROM ${CHANGES_TABLE}`,
  /** () → seq, version of the origin record (the first one) */
  origin: `SELECT seq, version FROM ${CHANGES_TABLE} ORDER BY seq LIMIT 1`,
  /**
   * (after, head, since, [store], limit) → seq, version, kind, store, key, value: the change records after a seq, up
   * to the head, of writes newer than `since`, in commit order
   */
  changes: {
    all: changesSql(false),
    byStore: changesSql(true)
  },
  /** (seq) → at: when one record was written */
  recordAt: `SELECT at FROM ${CHANGES_TABLE} WHERE seq = ?`,
  /** (seq): drops the records before a seq (trimming) */
  trimBefore: `DELETE FROM ${CHANGES_TABLE} WHERE seq < ?`,
  /** (seq): turns a record into the origin of the log, keeping its version (the newest change no longer held) */
  makeOrigin: `UPDATE ${CHANGES_TABLE} SET kind = ${Kind.Origin}, store = NULL, key = NULL, value = NULL WHERE seq = ?`,
  /**
   * (see {@link rangeParameters}) → key / key, value / count / key, value, version: the live keys of a range,
   * ordered by BINARY collation (code point order on UTF-8). A limit of -1 is no limit. A count without a limit
   * counts the key index and takes away the expired entries of the range, found in the expiry index: like keys, it
   * reads no row of the table.
   */
  range: (read: RangeRead, lower: boolean, upper: boolean, reverse: boolean, limited: boolean): string => {
    const where = `store = ?${lower ? " AND key >= ?" : ""}${upper ? " AND key < ?" : ""}`
    if (read === "count") {
      return limited
        ? `SELECT count(*) AS count FROM (SELECT 1 FROM ${TABLE} WHERE ${where} AND ${LIVE} LIMIT ?)`
        : `SELECT (SELECT count(*) FROM ${TABLE} WHERE ${where}) - ` +
            `(SELECT count(*) FROM ${TABLE} INDEXED BY ${EXPIRY_INDEX} WHERE expires_at <= ? AND ${where}) AS count`
    }
    const order = `ORDER BY key${reverse ? " DESC" : ""} LIMIT ?`
    // Keys are read from the key index alone (reading each row to check its expiry made keys() 1.6x slower), less
    // the expired keys of the store, found in the expiry index (none, usually: the sweeper deletes them).
    if (read === "keys") {
      return `SELECT key FROM ${TABLE} WHERE ${where} AND (NOT EXISTS (${EXPIRED_KEYS}) OR key NOT IN (${EXPIRED_KEYS})) ${order}`
    }
    const columns =
      read === "entries"
        ? "key, value"
        : read === "versioned"
          ? "key, value, version"
          : "key, value, created_at, updated_at, version, expires_at"
    return `SELECT ${columns} FROM ${TABLE} WHERE ${where} AND ${LIVE} ${order}`
  },
  /** (store, now) → size: UTF-8 bytes of the stored JSON text */
  size: `SELECT COALESCE(SUM(length(CAST(value AS BLOB))), 0) AS size FROM ${TABLE} WHERE store = ? AND ${LIVE}`,
  /** (now) → store, count, size: every store with a live entry, in code point order */
  stores: `SELECT store, count(*) AS count, COALESCE(SUM(length(CAST(value AS BLOB))), 0) AS size FROM ${TABLE} WHERE ${LIVE} GROUP BY store ORDER BY store`,
  /** (store) */
  clear: `DELETE FROM ${TABLE} WHERE store = ?`,
  /** (store, limit): deletes at most `limit` entries of the store (a piece of a large clear) */
  clearSome: `DELETE FROM ${TABLE} WHERE id IN (SELECT id FROM ${TABLE} WHERE store = ? LIMIT ?)`,
  /**
   * (store, key, value, now, now, version, expires_at) per row. Overwriting an expired entry creates the key anew.
   */
  upsert: (rows: number): string =>
    `INSERT INTO ${TABLE} (store, key, value, created_at, updated_at, version, expires_at) VALUES ${placeholders(rows, "(?, ?, ?, ?, ?, ?, ?)")} ` +
    "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, " +
    "version = excluded.version, expires_at = excluded.expires_at, created_at = CASE WHEN expires_at <= " +
    "excluded.updated_at THEN excluded.created_at ELSE created_at END",
  /** (store, now, ...keys) → key, value */
  selectIn: (keys: number): string =>
    `SELECT key, value FROM ${TABLE} WHERE store = ? AND ${LIVE} AND key IN (${placeholders(keys, "?")})`,
  /** (store, ...keys) → key, expires_at: the keys removed, and when they expired (NULL: they would not have) */
  deleteIn: (keys: number): string =>
    `DELETE FROM ${TABLE} WHERE store = ? AND key IN (${placeholders(keys, "?")}) RETURNING key, expires_at`,
  /** () → expires_at: when the next entry expires (no row: none does) */
  nextExpiry: `SELECT expires_at FROM ${TABLE} INDEXED BY ${EXPIRY_INDEX} WHERE expires_at IS NOT NULL ORDER BY expires_at LIMIT 1`,
  /**
   * (now, limit) → store, key, expires_at: deletes at most `limit` expired entries, the longest expired first (the
   * rows come back in no particular order: see `expiredInOrder`)
   */
  deleteExpired: `DELETE FROM ${TABLE} WHERE id IN (SELECT id FROM ${TABLE} INDEXED BY ${EXPIRY_INDEX} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING store, key, expires_at`
} as const

/**
 * The parameters of {@link Sql.range} for a store, a range and the current time: (store, [lower], [upper]), then
 * for a count without a limit (now, store, [lower], [upper]); for keys (now, store, limit); else (now, [limit]).
 */
export const rangeParameters = (store: string, range: Range, read: RangeRead, now: number): Array<unknown> => {
  const parameters: Array<unknown> = [store]
  if (range.lower !== undefined) parameters.push(range.lower)
  if (range.upper !== undefined) parameters.push(range.upper)
  if (read === "count" && range.limit === undefined) return [...parameters, now, ...parameters]
  parameters.push(now)
  if (read === "keys") parameters.push(store, now, store)
  if (read !== "count" || range.limit !== undefined) parameters.push(range.limit ?? -1)
  return parameters
}

const READS: Record<RangeRead, number> = { keys: 0, entries: 1, count: 2, versioned: 3, meta: 4 }
/** The text of each shape of range statement, made once: lists and pages ask for it on every chunk and page. */
const rangeTexts: Array<string | undefined> = []

/** The statement of {@link Sql.range} for a range. */
export const rangeSql = (read: RangeRead, range: Range): string => {
  const lower = range.lower !== undefined
  const upper = range.upper !== undefined
  const limited = range.limit !== undefined
  const shape = READS[read] * 16 + (lower ? 8 : 0) + (upper ? 4 : 0) + (range.reverse ? 2 : 0) + (limited ? 1 : 0)
  let text = rangeTexts[shape]
  if (text === undefined) {
    text = Sql.range(read, lower, upper, range.reverse, limited)
    rangeTexts[shape] = text
  }
  return text
}

/**
 * A write that changes nothing. As the first statement of a deferred transaction (`BEGIN`, which @effect/sql's
 * `withTransaction` uses) it takes the write lock at once, as `BEGIN IMMEDIATE` would, so a read-then-write
 * transaction waits for the lock (busy_timeout) instead of failing with SQLITE_BUSY_SNAPSHOT under contention.
 */
export const LOCK_TABLE = `UPDATE ${TABLE} SET key = key WHERE 0`

/** Splits a list into chunks of at most {@link CHUNK}. */
export const chunks = <A>(items: ReadonlyArray<A>): Array<ReadonlyArray<A>> => {
  const result: Array<ReadonlyArray<A>> = []
  for (let start = 0; start < items.length; start += CHUNK) result.push(items.slice(start, start + CHUNK))
  return result
}

/** How the migration runner reaches a database. */
export interface MigrationDriver<E> {
  readonly query: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<unknown>, E>
  /** Runs the effect in a transaction that holds the write lock from its start. */
  readonly writeTransaction: <A, E2>(self: Effect.Effect<A, E2>) => Effect.Effect<A, E | E2>
}

/**
 * What the migration runner needs to know of a database engine: its migrations, how to tell whether the migrations
 * table exists, the statements that take the migration lock (each run, in order, as the migration transaction's
 * first ones; they may create what the lock needs), and how to record a migration.
 */
export interface MigrationPlan {
  readonly migrations: ReadonlyArray<Migration>
  /** () → a row when the migrations table exists */
  readonly migrationsTable: readonly [text: string, params: ReadonlyArray<unknown>]
  /** () → id, name of every applied migration, in order */
  readonly applied: string
  /** Statements run before the migration transaction, when the schema is not up to date. */
  readonly prepare: ReadonlyArray<string>
  /** The migration transaction's first statements: they take the lock before anything is read. */
  readonly lock: ReadonlyArray<readonly [text: string, params: ReadonlyArray<unknown>]>
  /** (id, name, created_at): records an applied migration */
  readonly record: string
}

/** The plan of the SQLite backends. */
export const sqliteMigrations: MigrationPlan = {
  migrations,
  migrationsTable: ["SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [MIGRATIONS_TABLE]],
  applied: `SELECT migration_id AS id, name FROM ${MIGRATIONS_TABLE} ORDER BY migration_id`,
  prepare: [
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
        migration_id INTEGER PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`
  ],
  // Takes the write lock before reading, even in a deferred transaction.
  lock: [[`UPDATE ${MIGRATIONS_TABLE} SET name = name WHERE 0`, []]],
  record: `INSERT INTO ${MIGRATIONS_TABLE} (migration_id, name, created_at) VALUES (?, ?, ?)`
}

const newerSchema = (applied: number, latest: number, filename: string | undefined): DatabaseError =>
  new DatabaseError({
    reason: `The database was migrated by a newer version of runtime-storage (schema ${applied}, this version knows ${latest}); upgrade runtime-storage to open it`,
    filename
  })

/** The migrations a database says it has: the newest id, and one whose name is not ours, if any. */
export interface Applied {
  readonly latest: number
  readonly foreign: { readonly id: number; readonly name: string } | undefined
}

const latestOf = (plan: MigrationPlan): number => plan.migrations[plan.migrations.length - 1]!.id

/** Reads the migrations a database says it has (none when it has no migrations table). */
export const appliedMigrations = <E>(
  driver: Pick<MigrationDriver<E>, "query">,
  plan: MigrationPlan = sqliteMigrations
): Effect.Effect<Applied, E> =>
  Effect.flatMap(driver.query(...plan.migrationsTable), (tables) =>
    tables.length === 0
      ? Effect.succeed({ latest: 0, foreign: undefined })
      : Effect.map(driver.query(plan.applied), (rows) => {
          const applied = rows as ReadonlyArray<{ readonly id: number | string; readonly name: string }>
          const latest = latestOf(plan)
          const foreign = applied.find(
            (row) => Number(row.id) <= latest && plan.migrations.find((m) => m.id === Number(row.id))?.name !== row.name
          )
          return {
            latest: Number(applied.at(-1)?.id ?? 0),
            foreign: foreign === undefined ? undefined : { id: Number(foreign.id), name: foreign.name }
          }
        })
  )

/**
 * Why this version cannot open a database with these migrations, if it cannot: a newer version migrated it, or a
 * migration of a known id has another name (a build of runtime-storage that never was released wrote it: a
 * migration changed before its release, so its schema is not the one this version expects).
 */
export const schemaProblem = (
  applied: Applied,
  filename: string | undefined,
  plan: MigrationPlan = sqliteMigrations
): DatabaseError | undefined => {
  const latest = latestOf(plan)
  if (applied.latest > latest) return newerSchema(applied.latest, latest, filename)
  return applied.foreign === undefined
    ? undefined
    : new DatabaseError({
        reason: `The database's schema ${applied.foreign.id} is ${JSON.stringify(applied.foreign.name)}, not this version's ${JSON.stringify(plan.migrations.find((m) => m.id === applied.foreign!.id)?.name)}: it was written by another (unreleased) build of runtime-storage`,
        filename
      })
}

/**
 * Brings the schema up to date; a no-op (and read-only) when it already is. Two processes opening a new database
 * at once are serialized by the migration lock, and the second finds the work done.
 */
export const migrate = <E>(
  driver: MigrationDriver<E>,
  filename: string | undefined,
  plan: MigrationPlan = sqliteMigrations
): Effect.Effect<void, E | DatabaseError> =>
  Effect.gen(function* () {
    const applied = yield* appliedMigrations(driver, plan)
    const problem = schemaProblem(applied, filename, plan)
    if (problem !== undefined) return yield* Effect.fail(problem)
    if (applied.latest === latestOf(plan)) return
    for (const statement of plan.prepare) yield* driver.query(statement)
    yield* driver.writeTransaction(
      Effect.gen(function* () {
        for (const [text, params] of plan.lock) yield* driver.query(text, params)
        const current = yield* appliedMigrations(driver, plan)
        const changed = schemaProblem(current, filename, plan)
        if (changed !== undefined) return yield* Effect.fail(changed)
        for (const migration of plan.migrations) {
          if (migration.id <= current.latest) continue
          for (const statement of migration.statements) yield* driver.query(statement)
          yield* driver.query(plan.record, [migration.id, migration.name, Date.now()])
        }
      })
    )
  })
