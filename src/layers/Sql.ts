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
import * as Runtime from "effect/Runtime"
import { DatabaseError, isStorageError, type ReadFailedError, type WriteFailedError } from "../errors/StorageError.js"
import type {
  ChangeRecord,
  ChangeRow,
  EffectPrimitives,
  ListedRow,
  MetaRow,
  Row,
  Stored,
  StoreRow,
  VersionedRow
} from "../internal/backend.js"
import { removalOf, SweepAlarm } from "../internal/expiry.js"
import { openFailure, readFailure, writeFailure } from "../internal/failure.js"
import {
  dueForTrim,
  type History,
  type HistoryOptions,
  historyOf,
  Notifier,
  oldEnough,
  trimCandidate
} from "../internal/feed.js"
import { CHUNK, chunks, Kind, LOCK_TABLE, migrate, rangeParameters, rangeSql, Sql } from "../internal/schema.js"
import { make, Storage } from "../services/Storage.js"

/**
 * Options of {@link layerSql}. The connection's settings belong to the `SqlClient`.
 *
 * @since 0.1.0
 */
export interface SqlOptions {
  /** The history the change feed keeps: see `SqliteOptions.history`. */
  readonly history?: HistoryOptions | undefined
}

interface ValueRow {
  readonly value: Stored
}
interface KeyRow {
  readonly key: string
}
interface KeyValueRow {
  readonly key: string
  readonly value: Stored
}
interface EntryRow {
  readonly value: Stored
  readonly created_at: number | bigint
  readonly updated_at: number | bigint
  readonly version: number | bigint
  readonly expires_at: number | bigint | null
}

const expiryOf = (row: { readonly expires_at: number | bigint | null }): number | null =>
  row.expires_at === null ? null : Number(row.expires_at)

const metaOf = (row: EntryRow): MetaRow => [
  row.value,
  Number(row.created_at),
  Number(row.updated_at),
  Number(row.version),
  expiryOf(row)
]

const isSqlError = (u: unknown): u is SqlError => u instanceof SqlError

/** The version the writes of the current transaction level share, once one of them took it. */
interface SharedVersion {
  version: number | undefined
}

const makePrimitives = (
  sql: SqlClient.SqlClient,
  sharedVersion: FiberRef.FiberRef<SharedVersion | undefined>,
  history: History,
  feed: Notifier
): EffectPrimitives => {
  const query = <A extends object>(text: string, params: ReadonlyArray<unknown>) => sql.unsafe<A>(text, params)
  // @effect/sql reports some failures (a failed COMMIT, e.g. SQLITE_FULL) as defects: they are mapped too.
  // Failures that are not SqlErrors (an update's own refusal) pass through unchanged.
  const read =
    (operation: string, store: string | undefined) =>
    <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, SqlError> | ReadFailedError | DatabaseError> =>
      self.pipe(
        Effect.catchIf(isSqlError, (cause) => Effect.fail(readFailure(operation, store, cause))),
        Effect.catchAllDefect((cause) => Effect.fail(readFailure(operation, store, cause)))
      ) as Effect.Effect<A, Exclude<E, SqlError> | ReadFailedError | DatabaseError>
  // A write that committed (outside a transaction) wakes the watchers of this layer.
  const write =
    (operation: string, store: string | undefined) =>
    <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, SqlError> | WriteFailedError | DatabaseError> =>
      self.pipe(
        Effect.tap(() =>
          Effect.flatMap(FiberRef.get(sharedVersion), (shared) =>
            Effect.sync(() => {
              if (shared === undefined) feed.notify()
            })
          )
        ),
        Effect.catchIf(isSqlError, (cause) => Effect.fail(writeFailure(operation, store, cause))),
        Effect.catchAllDefect((cause) => Effect.fail(writeFailure(operation, store, cause)))
      ) as Effect.Effect<A, Exclude<E, SqlError> | WriteFailedError | DatabaseError>

  const takeNext = Effect.map(query<{ readonly version: number | bigint }>(Sql.nextVersion, []), (rows) =>
    Number(rows[0]!.version)
  )
  // A transaction's first statement takes the write lock (see LOCK_TABLE), so reading the next version is safe.
  const lock = query(LOCK_TABLE, [])
  /** The version of a write: the next one, or inside a transaction the one its writes share. */
  const nextVersion = Effect.flatMap(FiberRef.get(sharedVersion), (shared) => {
    if (shared === undefined) return takeNext
    if (shared.version !== undefined) return Effect.succeed(shared.version)
    return Effect.map(takeNext, (version) => {
      shared.version = version
      return version
    })
  })

  /** When the next entry expires. */
  const nextExpiry = Effect.map(query<{ readonly expires_at: number | bigint }>(Sql.nextExpiry, []), (rows) =>
    rows[0] === undefined ? undefined : Number(rows[0].expires_at)
  )
  /** The seq of the log's last record. */
  const readHead = Effect.map(query<{ readonly head: number | bigint }>(Sql.head, []), (rows) => Number(rows[0]!.head))
  /**
   * Appends a write call's records to the log, then trims the log in the same transaction when they made it due.
   * The call holds the write lock.
   */
  const record = (records: ReadonlyArray<ChangeRecord>): Effect.Effect<void, SqlError> =>
    records.length === 0
      ? Effect.void
      : Effect.gen(function* () {
          // The records' seqs come back with them: the last one is the log's head, without another query.
          let last = 0
          for (const chunk of chunks(records)) {
            for (const row of yield* query<{ readonly seq: number | bigint }>(
              `${Sql.logChanges(chunk.length)} RETURNING seq`,
              chunk.flat()
            )) {
              last = Math.max(last, Number(row.seq))
            }
          }
          if (!dueForTrim(history, last - records.length + 1, last)) return
          const origin = Number((yield* query<{ readonly seq: number | bigint }>(Sql.origin, []))[0]!.seq)
          const cut = trimCandidate(history, origin, last)
          if (cut === undefined) return
          const at = (yield* query<{ readonly at: number | bigint }>(Sql.recordAt, [cut]))[0]?.at
          if (!oldEnough(history, at === undefined ? undefined : Number(at), records[0]![1])) return
          yield* query(Sql.trimBefore, [cut])
          yield* query(Sql.makeOrigin, [cut])
        })
  /**
   * Removes keys (holding the write lock) and gives the records of the removal of those that existed (as expiries
   * for those that had expired), with the version given or else the next one, and how many existed and had not
   * expired.
   */
  const removeKeys = (store: string, keys: ReadonlyArray<string>, now: number, version?: number) =>
    Effect.gen(function* () {
      const removed: Array<KeyRow & Pick<EntryRow, "expires_at">> = []
      for (const chunk of chunks(keys)) {
        removed.push(
          ...(yield* query<KeyRow & Pick<EntryRow, "expires_at">>(Sql.deleteIn(chunk.length), [store, ...chunk]))
        )
      }
      if (removed.length === 0) return [[], 0] as const
      const taken = version ?? (yield* nextVersion)
      let live = 0
      const records = removed.map((row): ChangeRecord => {
        const kind = removalOf(expiryOf(row), now)
        if (kind === Kind.Remove) live++
        return [taken, now, kind, store, row.key, null]
      })
      return [records, live] as const
    })
  // Reads of the feed: each in one transaction, one snapshot.
  const changesOf = (after: number, since: number, store: string | undefined, limit: number) =>
    Effect.gen(function* () {
      const head = yield* readHead
      const rows = yield* query<{
        readonly seq: number | bigint
        readonly version: number | bigint
        readonly kind: number
        readonly store: string
        readonly key: string | null
        readonly value: Stored | null
      }>(
        store === undefined ? Sql.changes.all : Sql.changes.byStore,
        store === undefined ? [after, head, since, limit] : [after, head, since, store, limit]
      )
      const origin = (yield* query<{ readonly seq: number | bigint; readonly version: number | bigint }>(
        Sql.origin,
        []
      ))[0]!
      return {
        rows: rows.map(
          (row): ChangeRow => [Number(row.seq), Number(row.version), row.kind as Kind, row.store, row.key, row.value]
        ),
        head,
        origin: [Number(origin.seq), Number(origin.version)] as const
      }
    })

  return {
    head: () => readHead.pipe(read("watch", undefined)),
    changes: (after, since, store, limit) =>
      sql.withTransaction(changesOf(after, since, store, limit)).pipe(read("watch", store)),
    snapshot: (store, ranges, now) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            const rows: Array<VersionedRow> = []
            for (const range of ranges) {
              const found = yield* query<KeyValueRow & { readonly version: number | bigint }>(
                rangeSql("versioned", range),
                rangeParameters(store, range, "versioned", now)
              )
              for (const row of found) rows.push([row.key, row.value, Number(row.version)])
            }
            const head = yield* readHead
            return { rows, head }
          })
        )
        .pipe(read("watch", store)),
    get: (store, key, now) =>
      query<ValueRow>(Sql.get, [store, key, now]).pipe(
        Effect.map((rows) => rows[0]?.value),
        read("get", store)
      ),
    getMany: (store, keys, now) => {
      const select = Effect.forEach(chunks(keys), (chunk) =>
        query<KeyValueRow>(Sql.selectIn(chunk.length), [store, now, ...chunk])
      )
      // Several statements read in one transaction: one snapshot, never half of another writer's batch.
      return (keys.length > CHUNK ? sql.withTransaction(select) : select).pipe(
        Effect.map((results) => results.flatMap((rows) => rows.map((row): Row => [row.key, row.value]))),
        read("getMany", store)
      )
    },
    has: (store, key, now) =>
      query(Sql.has, [store, key, now]).pipe(
        Effect.map((rows) => rows.length > 0),
        read("has", store)
      ),
    getEntry: (store, key, now) =>
      query<EntryRow>(Sql.getEntry, [store, key, now]).pipe(
        Effect.map((rows): MetaRow | undefined => {
          const row = rows[0]
          return row === undefined ? undefined : metaOf(row)
        }),
        read("getEntry", store)
      ),
    scanKeys: (store, range, now) =>
      query<KeyRow>(rangeSql("keys", range), rangeParameters(store, range, "keys", now)).pipe(
        Effect.map((rows) => rows.map((row) => row.key)),
        read("keys", store)
      ),
    // A query returns all its rows at once: the byte budget is left to the caller's chunk sizes.
    scan: (store, range, _maxBytes, now) =>
      query<KeyValueRow>(rangeSql("entries", range), rangeParameters(store, range, "entries", now)).pipe(
        Effect.map((rows) => rows.map((row): Row => [row.key, row.value])),
        read("entries", store)
      ),
    scanMeta: (store, range, _maxBytes, now) =>
      query<EntryRow & KeyRow>(rangeSql("meta", range), rangeParameters(store, range, "meta", now)).pipe(
        Effect.map((rows) => rows.map((row): ListedRow => [row.key, ...metaOf(row)])),
        read("entries", store)
      ),
    count: (store, range, now) =>
      query<{ readonly count: number | bigint }>(
        rangeSql("count", range),
        rangeParameters(store, range, "count", now)
      ).pipe(
        Effect.map((rows) => Number(rows[0]?.count ?? 0)),
        read("count", store)
      ),
    size: (store, now) =>
      query<{ readonly size: number | bigint }>(Sql.size, [store, now]).pipe(
        Effect.map((rows) => Number(rows[0]?.size ?? 0)),
        read("size", store)
      ),
    stores: (now) =>
      query<{ readonly store: string; readonly count: number | bigint; readonly size: number | bigint }>(Sql.stores, [
        now
      ]).pipe(
        Effect.map((rows) => rows.map((row): StoreRow => [row.store, Number(row.count), Number(row.size)])),
        read("stores", undefined)
      ),
    setMany: (store, rows, now, expiresAt) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            yield* lock
            const version = yield* nextVersion
            for (const chunk of chunks(rows)) {
              yield* query(
                Sql.upsert(chunk.length),
                chunk.flatMap(([key, text]) => [store, key, text, now, now, version, expiresAt])
              )
            }
            yield* record(rows.map(([key, text]): ChangeRecord => [version, now, Kind.Set, store, key, text]))
            return version
          })
        )
        .pipe(write(rows.length === 1 ? "set" : "setMany", store)),
    deleteMany: (store, keys, now) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            yield* lock
            const [records, live] = yield* removeKeys(store, keys, now)
            yield* record(records)
            return live
          })
        )
        .pipe(write(keys.length === 1 ? "remove" : "deleteMany", store)),
    clear: (store, now) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            yield* lock
            if ((yield* query(Sql.anyKey, [store])).length === 0) return
            yield* query(Sql.clear, [store])
            yield* record([[yield* nextVersion, now, Kind.Clear, store, null, null]])
          })
        )
        .pipe(write("clear", store)),
    update: (store, key, f, now, expiresAt) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            yield* lock
            const current = (yield* query<EntryRow>(Sql.getEntry, [store, key, now]))[0]
            const text = f(current?.value)
            if (isStorageError(text)) return yield* Effect.fail(text)
            const version = yield* nextVersion
            const expiry = expiresAt === undefined ? (current === undefined ? null : expiryOf(current)) : expiresAt
            yield* query(Sql.upsert(1), [store, key, text, now, now, version, expiry])
            yield* record([[version, now, Kind.Set, store, key, text]])
            return text
          })
        )
        .pipe(write("update", store)),
    commit: (checks, writes, now) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            // The write lock first: the checks read what no other writer can change before the commit.
            yield* lock
            for (const [store, key, expected] of checks) {
              const rows = yield* query<{ readonly version: number | bigint }>(Sql.versionOf, [store, key, now])
              const current = rows[0] === undefined ? null : Number(rows[0].version)
              if (current !== expected) return undefined
            }
            const version = yield* nextVersion
            const records: Array<ChangeRecord> = []
            for (const [store, key, text, expiresAt] of writes) {
              if (text === undefined) {
                records.push(...(yield* removeKeys(store, [key], now, version))[0])
              } else {
                yield* query(Sql.upsert(1), [store, key, text, now, now, version, expiresAt])
                records.push([version, now, Kind.Set, store, key, text])
              }
            }
            // A commit that changed nothing still returns its version: a record that only holds it keeps it its own.
            if (records.length === 0) records.push([version, now, Kind.Origin, null, null, null])
            yield* record(records)
            return version
          })
        )
        .pipe(write("commit", undefined)),
    // A sweep takes the write lock only when something has expired.
    expire: (now, limit) =>
      Effect.gen(function* () {
        const next = yield* nextExpiry
        if (next === undefined || next > now) return { removed: 0, next }
        return yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* lock
              const removed = yield* query<KeyRow & { readonly store: string }>(Sql.deleteExpired, [now, limit])
              if (removed.length > 0) {
                const version = yield* nextVersion
                yield* record(removed.map((row): ChangeRecord => [version, now, Kind.Expire, row.store, row.key, null]))
              }
              return { removed: removed.length, next: yield* nextExpiry }
            })
          )
          .pipe(write("expire", undefined))
      }).pipe(read("expire", undefined))
  }
}

/**
 * A `Storage` on the application's `SqlClient` (SQLite dialect). Building the layer runs this library's
 * migrations, in its own `runtime_storage_migrations` table (a no-op when already applied), and fails with
 * `DatabaseError` when the database was migrated by a newer version.
 *
 * @since 0.1.0
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<Storage, DatabaseError, SqlClient.SqlClient> =>
  Layer.scoped(
    Storage,
    Effect.gen(function* () {
      const history = yield* Effect.try({
        try: () => historyOf(options?.history),
        catch: (cause) => new DatabaseError({ reason: (cause as Error).message })
      })
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
      // Watchers poll the log's head through the client while they watch (waiting, like any query, while a
      // transaction holds the connection).
      const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
      const feed = new Notifier(() => runPromise(primitives.head()))
      const primitives = makePrimitives(sql, sharedVersion, history, feed)
      return yield* make({
        _tag: "Effect",
        feed,
        alarm: new SweepAlarm(),
        primitives,
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
                  else feed.notify()
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
