/**
 * The backend on an `SqlClient` that the application already has (any SQLite-dialect client of @effect/sql:
 * `@effect/sql-sqlite-node`, `-bun`, `-wasm`, libsql, …). Batches run in the client's `withTransaction`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { DatabaseError, type ReadFailedError, type WriteFailedError } from "../errors/StorageError.js"
import type { EffectPrimitives, MetaRow, Row } from "../internal/backend.js"
import { openFailure, readFailure, writeFailure } from "../internal/failure.js"
import { CHUNK, chunks, LOCK_TABLE, migrate, rangeParameters, rangeSql, Sql } from "../internal/schema.js"
import { make, Storage } from "../services/Storage.js"

/**
 * Options of {@link layerSql}. None yet: the connection's settings belong to the `SqlClient`.
 *
 * @since 0.1.0
 */
export type SqlOptions = Record<string, never>

interface ValueRow {
  readonly value: string
}
interface KeyRow {
  readonly key: string
}
interface KeyValueRow {
  readonly key: string
  readonly value: string
}
interface EntryRow {
  readonly value: string
  readonly created_at: number | bigint
  readonly updated_at: number | bigint
  readonly version: number | bigint
}

const isSqlError = (u: unknown): u is SqlError => u instanceof SqlError

/** The version the writes of the current transaction level share, once one of them took it. */
interface SharedVersion {
  version: number | undefined
}

const makePrimitives = (
  sql: SqlClient.SqlClient,
  sharedVersion: FiberRef.FiberRef<SharedVersion | undefined>
): EffectPrimitives => {
  const query = <A extends object>(text: string, params: ReadonlyArray<unknown>) => sql.unsafe<A>(text, params)
  // @effect/sql reports some failures (a failed COMMIT, e.g. SQLITE_FULL) as defects: they are mapped too.
  // Failures that are not SqlErrors (an update's own refusal) pass through unchanged.
  const read =
    (operation: string, store: string) =>
    <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, SqlError> | ReadFailedError | DatabaseError> =>
      self.pipe(
        Effect.catchIf(isSqlError, (cause) => Effect.fail(readFailure(operation, store, cause))),
        Effect.catchAllDefect((cause) => Effect.fail(readFailure(operation, store, cause)))
      ) as Effect.Effect<A, Exclude<E, SqlError> | ReadFailedError | DatabaseError>
  const write =
    (operation: string, store: string | undefined) =>
    <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, SqlError> | WriteFailedError | DatabaseError> =>
      self.pipe(
        Effect.catchIf(isSqlError, (cause) => Effect.fail(writeFailure(operation, store, cause))),
        Effect.catchAllDefect((cause) => Effect.fail(writeFailure(operation, store, cause)))
      ) as Effect.Effect<A, Exclude<E, SqlError> | WriteFailedError | DatabaseError>

  const takeNext = Effect.map(query<{ readonly version: number | bigint }>(Sql.nextVersion, []), (rows) =>
    Number(rows[0]!.version)
  )
  /** The version of a write: the next one, or inside a transaction the one its writes share. */
  const nextVersion = Effect.flatMap(FiberRef.get(sharedVersion), (shared) => {
    if (shared === undefined) return takeNext
    if (shared.version !== undefined) return Effect.succeed(shared.version)
    return Effect.map(takeNext, (version) => {
      shared.version = version
      return version
    })
  })

  return {
    get: (store, key) =>
      query<ValueRow>(Sql.get, [store, key]).pipe(
        Effect.map((rows) => rows[0]?.value),
        read("get", store)
      ),
    getMany: (store, keys) => {
      const select = Effect.forEach(chunks(keys), (chunk) =>
        query<KeyValueRow>(Sql.selectIn(chunk.length), [store, ...chunk])
      )
      // Several statements read in one transaction: one snapshot, never half of another writer's batch.
      return (keys.length > CHUNK ? sql.withTransaction(select) : select).pipe(
        Effect.map((results) => results.flatMap((rows) => rows.map((row): Row => [row.key, row.value]))),
        read("getMany", store)
      )
    },
    has: (store, key) =>
      query(Sql.has, [store, key]).pipe(
        Effect.map((rows) => rows.length > 0),
        read("has", store)
      ),
    getEntry: (store, key) =>
      query<EntryRow>(Sql.getEntry, [store, key]).pipe(
        Effect.map((rows): MetaRow | undefined => {
          const row = rows[0]
          return row === undefined
            ? undefined
            : [row.value, Number(row.created_at), Number(row.updated_at), Number(row.version)]
        }),
        read("getEntry", store)
      ),
    scanKeys: (store, range) =>
      query<KeyRow>(rangeSql("keys", range), rangeParameters(store, range, "keys")).pipe(
        Effect.map((rows) => rows.map((row) => row.key)),
        read("keys", store)
      ),
    // A query returns all its rows at once: the byte budget is left to the caller's chunk sizes.
    scan: (store, range) =>
      query<KeyValueRow>(rangeSql("entries", range), rangeParameters(store, range, "entries")).pipe(
        Effect.map((rows) => rows.map((row): Row => [row.key, row.value])),
        read("entries", store)
      ),
    count: (store, range) =>
      query<{ readonly count: number | bigint }>(rangeSql("count", range), rangeParameters(store, range, "count")).pipe(
        Effect.map((rows) => Number(rows[0]?.count ?? 0)),
        read("count", store)
      ),
    size: (store) =>
      query<{ readonly size: number | bigint }>(Sql.size, [store]).pipe(
        Effect.map((rows) => Number(rows[0]?.size ?? 0)),
        read("size", store)
      ),
    setMany: (store, rows) => {
      const now = Date.now()
      // The first statement of the transaction (taking the next version) is a write, so it holds the write lock
      // from its start.
      return sql
        .withTransaction(
          Effect.flatMap(nextVersion, (version) =>
            Effect.as(
              Effect.forEach(
                chunks(rows),
                (chunk) =>
                  query(
                    Sql.upsert(chunk.length),
                    chunk.flatMap(([key, text]) => [store, key, text, now, now, version])
                  ),
                { discard: true }
              ),
              version
            )
          )
        )
        .pipe(write(rows.length === 1 ? "set" : "setMany", store))
    },
    deleteMany: (store, keys) =>
      sql
        .withTransaction(
          Effect.forEach(chunks(keys), (chunk) =>
            query<KeyRow>(`${Sql.deleteIn(chunk.length)} RETURNING key`, [store, ...chunk])
          )
        )
        .pipe(
          Effect.map((results) => results.reduce((removed, rows) => removed + rows.length, 0)),
          write(keys.length === 1 ? "remove" : "deleteMany", store)
        ),
    clear: (store) => query(Sql.clear, [store]).pipe(Effect.asVoid, write("clear", store)),
    update: (store, key, f) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            yield* query(LOCK_TABLE, [])
            const rows = yield* query<ValueRow>(Sql.get, [store, key])
            const text = f(rows[0]?.value)
            if (typeof text !== "string") return yield* Effect.fail(text)
            const now = Date.now()
            yield* query(Sql.upsert(1), [store, key, text, now, now, yield* nextVersion])
            return text
          })
        )
        .pipe(write("update", store)),
    commit: (checks, writes) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            // The write lock first: the checks read what no other writer can change before the commit.
            yield* query(LOCK_TABLE, [])
            for (const [store, key, expected] of checks) {
              const rows = yield* query<{ readonly version: number | bigint }>(Sql.versionOf, [store, key])
              const current = rows[0] === undefined ? null : Number(rows[0].version)
              if (current !== expected) return undefined
            }
            const version = yield* nextVersion
            const now = Date.now()
            for (const [store, key, text] of writes) {
              if (text === undefined) yield* query(Sql.deleteOne, [store, key])
              else yield* query(Sql.upsert(1), [store, key, text, now, now, version])
            }
            return version
          })
        )
        .pipe(write("commit", undefined))
  }
}

/**
 * A `Storage` on the application's `SqlClient` (SQLite dialect). Building the layer runs this library's
 * migrations, in its own `runtime_storage_migrations` table (a no-op when already applied), and fails with
 * `DatabaseError` when the database was migrated by a newer version.
 *
 * @since 0.1.0
 */
export const layerSql = (_options?: SqlOptions): Layer.Layer<Storage, DatabaseError, SqlClient.SqlClient> =>
  Layer.effect(
    Storage,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const failed = (cause: unknown) => openFailure("Could not migrate the database", undefined, cause)
      yield* migrate(
        {
          query: (text, params = []) => sql.unsafe(text, params).pipe(Effect.mapError(failed)),
          writeTransaction: (self) =>
            sql
              .withTransaction(self)
              .pipe(Effect.mapError((error) => (error instanceof DatabaseError ? error : failed(error)))) as never
        },
        undefined
      ).pipe(Effect.catchAllDefect((cause) => Effect.fail(failed(cause))))
      const sharedVersion = FiberRef.unsafeMake<SharedVersion | undefined>(undefined)
      return make({
        _tag: "Effect",
        primitives: makePrimitives(sql, sharedVersion),
        withTransaction: (self) =>
          Effect.flatMap(FiberRef.get(sharedVersion), (parent) => {
            // A savepoint inside a transaction starts with its parent's version, and gives it to its parent when
            // it commits; undone, it takes its version with it (as SQLite undoes the clock's increment).
            const level: SharedVersion = { version: parent?.version }
            const body = Effect.locally(self, sharedVersion, level)
            return sql
              .withTransaction(parent === undefined ? Effect.zipRight(sql.unsafe(LOCK_TABLE, []), body) : body)
              .pipe(
                Effect.tap(() => {
                  if (parent !== undefined) parent.version = level.version
                }),
                Effect.catchIf(isSqlError, (cause) => Effect.fail(writeFailure("transaction", undefined, cause))),
                Effect.catchSomeDefect((cause) =>
                  isSqlError(cause)
                    ? Option.some(Effect.fail(writeFailure("transaction", undefined, cause)))
                    : Option.none()
                )
              )
          })
      })
    })
  )
