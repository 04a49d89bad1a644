/**
 * The SQL of runtime-storage: its schema, its migrations and the statements both SQL backends run. Store names
 * and keys are always bound as parameters; no SQL text is ever built from data.
 */
import * as Effect from "effect/Effect"
import { DatabaseError } from "../errors/StorageError.js"

/** The table of values, keyed by `(store, key)`. */
export const TABLE = "runtime_storage"
/** This library's own migrations table. */
export const MIGRATIONS_TABLE = "runtime_storage_migrations"

/** Rows per multi-row statement: far below SQLite's limit of 32,766 bound parameters. */
export const CHUNK = 500

export interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

/** The migrations, in order. A database with a higher applied id than the last one here is newer than us. */
export const migrations: ReadonlyArray<Migration> = [
  {
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
  }
]

/** The id of the newest migration this version knows. */
export const LATEST_MIGRATION = migrations[migrations.length - 1]!.id

const placeholders = (count: number, group: string): string => Array.from({ length: count }, () => group).join(", ")

/** The statements of the SQL backends. `?` parameters, in the order noted. */
export const Sql = {
  /** (store, key) → value */
  get: `SELECT value FROM ${TABLE} WHERE store = ? AND key = ?`,
  /** (store, key) → one row when present */
  has: `SELECT 1 AS present FROM ${TABLE} WHERE store = ? AND key = ?`,
  /** (store) → key, ordered by BINARY collation: code point order on UTF-8 */
  keys: `SELECT key FROM ${TABLE} WHERE store = ? ORDER BY key`,
  /** (store) → key, value */
  entries: `SELECT key, value FROM ${TABLE} WHERE store = ? ORDER BY key`,
  /** (store) → size: UTF-8 bytes of the stored JSON text */
  size: `SELECT COALESCE(SUM(length(CAST(value AS BLOB))), 0) AS size FROM ${TABLE} WHERE store = ?`,
  /** (store) */
  clear: `DELETE FROM ${TABLE} WHERE store = ?`,
  /** (store, key, value, now, now) per row */
  upsert: (rows: number): string =>
    `INSERT INTO ${TABLE} (store, key, value, created_at, updated_at) VALUES ${placeholders(rows, "(?, ?, ?, ?, ?)")} ` +
    "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
  /** (store, ...keys) → key, value */
  selectIn: (keys: number): string =>
    `SELECT key, value FROM ${TABLE} WHERE store = ? AND key IN (${placeholders(keys, "?")})`,
  /** (store, ...keys) */
  deleteIn: (keys: number): string => `DELETE FROM ${TABLE} WHERE store = ? AND key IN (${placeholders(keys, "?")})`
} as const

/**
 * A write that changes nothing. As the first statement of a deferred transaction (`BEGIN`, which @effect/sql's
 * `withTransaction` uses) it takes the write lock at once, as `BEGIN IMMEDIATE` would, so a read-then-write
 * transaction waits for the lock (busy_timeout) instead of failing with SQLITE_BUSY_SNAPSHOT under contention.
 */
export const LOCK_TABLE = `UPDATE ${TABLE} SET key = key WHERE 0`
const LOCK_MIGRATIONS = `UPDATE ${MIGRATIONS_TABLE} SET name = name WHERE 0`

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

const newerSchema = (applied: number, filename: string | undefined): DatabaseError =>
  new DatabaseError({
    reason: `The database was migrated by a newer version of runtime-storage (schema ${applied}, this version knows ${LATEST_MIGRATION}); upgrade runtime-storage to open it`,
    filename
  })

const appliedMigration = <E>(driver: MigrationDriver<E>): Effect.Effect<number, E> =>
  Effect.flatMap(
    driver.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [MIGRATIONS_TABLE]),
    (tables) =>
      tables.length === 0
        ? Effect.succeed(0)
        : Effect.map(
            driver.query(`SELECT COALESCE(MAX(migration_id), 0) AS applied FROM ${MIGRATIONS_TABLE}`),
            (rows) => Number((rows[0] as { readonly applied: number } | undefined)?.applied ?? 0)
          )
  )

/**
 * Brings the schema up to date; a no-op (and read-only) when it already is. Two processes opening a new database
 * at once are serialized by the write lock, and the second finds the work done.
 */
export const migrate = <E>(
  driver: MigrationDriver<E>,
  filename: string | undefined
): Effect.Effect<void, E | DatabaseError> =>
  Effect.gen(function* () {
    const applied = yield* appliedMigration(driver)
    if (applied > LATEST_MIGRATION) return yield* Effect.fail(newerSchema(applied, filename))
    if (applied === LATEST_MIGRATION) return
    yield* driver.query(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
        migration_id INTEGER PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`
    )
    yield* driver.writeTransaction(
      Effect.gen(function* () {
        // Takes the write lock before reading, even in a deferred transaction.
        yield* driver.query(LOCK_MIGRATIONS)
        const current = yield* appliedMigration(driver)
        if (current > LATEST_MIGRATION) return yield* Effect.fail(newerSchema(current, filename))
        for (const migration of migrations) {
          if (migration.id <= current) continue
          for (const statement of migration.statements) yield* driver.query(statement)
          yield* driver.query(`INSERT INTO ${MIGRATIONS_TABLE} (migration_id, name, created_at) VALUES (?, ?, ?)`, [
            migration.id,
            migration.name,
            Date.now()
          ])
        }
      })
    )
  })
