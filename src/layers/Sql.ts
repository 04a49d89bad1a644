/**
 * The backend on an `SqlClient` that the application already has: any SQLite-dialect client of @effect/sql
 * (`@effect/sql-sqlite-node`, `-bun`, `-wasm`, libsql, …) or a PostgreSQL one (`@effect/sql-pg`, since 0.6.0), its
 * statements from the dialect the client reports. Batches run in the client's `withTransaction`.
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
import type * as Scope from "effect/Scope"
import { DatabaseError, isStorageError, type ReadFailedError, type WriteFailedError } from "../errors/StorageError.js"
import type {
  Backend,
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
import { type Dialect, type Statement, sqliteDialect, type ValueColumns } from "../internal/dialect.js"
import { expiredInOrder, removalOf, SweepAlarm } from "../internal/expiry.js"
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
import { checkEncoding, checkSchema, type PgLike, pgDialect, pgListener } from "../internal/pg.js"
import { CHUNK, chunks, Kind, migrate } from "../internal/schema.js"
import { breathing } from "../internal/slices.js"
import { make, Storage } from "../services/Storage.js"

/**
 * Options of {@link layerSql}. The connection's settings belong to the `SqlClient`.
 *
 * @since 0.1.0
 */
export interface SqlOptions {
  /** The history the change feed keeps: see `SqliteOptions.history`. */
  readonly history?: HistoryOptions | undefined
  /**
   * PostgreSQL only: the schema the tables live in (default `public`), created when missing. Apps sharing a
   * database keep their data apart by schema.
   *
   * @since 0.6.0
   */
  readonly schema?: string | undefined
}

interface KeyRow {
  readonly key: unknown
}
type KeyValueRow = KeyRow & ValueColumns
interface EntryRow extends ValueColumns {
  readonly created_at: number | bigint | string
  readonly updated_at: number | bigint | string
  readonly version: number | bigint | string
  readonly expires_at: number | bigint | string | null
}

const expiryOf = (row: { readonly expires_at: number | bigint | string | null }): number | null =>
  row.expires_at === null ? null : Number(row.expires_at)

const isSqlError = (u: unknown): u is SqlError => u instanceof SqlError

/** The version the writes of the current transaction level share, once one of them took it. */
interface SharedVersion {
  version: number | undefined
}

const makePrimitives = (
  sql: SqlClient.SqlClient,
  d: Dialect,
  sharedVersion: FiberRef.FiberRef<SharedVersion | undefined>,
  history: History,
  feed: Notifier
): EffectPrimitives => {
  // Each statement lets the event loop turn first when the slice has run out: the statements of a large call
  // (a batch's chunks, a client whose driver is synchronous, as better-sqlite3 is) leave the app running between them.
  const run = <A extends object>(statement: Statement) => breathing(sql.unsafe<A>(statement.text, statement.params))
  /** A stored value of a row (entries always have one). */
  const textOf = (row: ValueColumns): Stored => d.text(row) as Stored
  const metaOf = (row: EntryRow): MetaRow => [
    textOf(row),
    Number(row.created_at),
    Number(row.updated_at),
    Number(row.version),
    expiryOf(row)
  ]
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
  /** Runs reads as one snapshot: in a transaction of their own, or in the one already open. */
  const snapshot = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (open) =>
      Option.isSome(open) || d.snapshot === undefined
        ? sql.withTransaction(self)
        : sql.withTransaction(Effect.zipRight(run(d.snapshot), self))
    )
  /** A write transaction: the write lock first. */
  const writing = <A, E, R>(self: Effect.Effect<A, E, R>) => sql.withTransaction(Effect.zipRight(run(d.lock), self))

  const takeNext = Effect.map(run<{ readonly version: number | bigint | string }>(d.nextVersion), (rows) =>
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

  /** When the next entry expires. */
  const nextExpiry = Effect.map(run<{ readonly expires_at: number | bigint | string }>(d.nextExpiry), (rows) =>
    rows[0] === undefined ? undefined : Number(rows[0].expires_at)
  )
  /** The seq of the log's last record. */
  const readHead = Effect.map(run<{ readonly head: number | bigint | string }>(d.head), (rows) => Number(rows[0]!.head))
  const readOrigin = Effect.map(
    run<{ readonly seq: number | bigint | string; readonly version: number | bigint | string }>(d.origin),
    (rows) => [Number(rows[0]!.seq), Number(rows[0]!.version)] as const
  )
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
            for (const row of yield* run<{ readonly seq: number | bigint | string }>(d.logChanges(chunk))) {
              last = Math.max(last, Number(row.seq))
            }
          }
          if (dueForTrim(history, last - records.length + 1, last)) yield* trim(last, records[0]![1])
        })
  /** Trims the log (holding the write lock) when its head is `last` and the time is `now`, as far as it may. */
  const trim = (last: number, now: number): Effect.Effect<void, SqlError> =>
    Effect.gen(function* () {
      const [origin] = yield* readOrigin
      const cut = trimCandidate(history, origin, last)
      if (cut === undefined) return
      const at = (yield* run<{ readonly at: number | bigint | string }>(d.recordAt(cut)))[0]?.at
      if (!oldEnough(history, at === undefined ? undefined : Number(at), now)) return
      yield* run(d.trimBefore(cut))
      yield* run(d.makeOrigin(cut))
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
        removed.push(...(yield* run<KeyRow & Pick<EntryRow, "expires_at">>(d.deleteIn(store, chunk))))
      }
      if (removed.length === 0) return [[], 0] as const
      const taken = version ?? (yield* nextVersion)
      let live = 0
      const records = removed.map((row): ChangeRecord => {
        const kind = removalOf(expiryOf(row), now)
        if (kind === Kind.Remove) live++
        return [taken, now, kind, store, d.name(row.key), null]
      })
      return [records, live] as const
    })
  /** A setMany in a transaction of its own (or in the one open): the write lock, the rows, their records. */
  const setManyInTransaction = (
    store: string,
    rows: ReadonlyArray<Row>,
    now: number,
    expiresAt: number | null
  ): Effect.Effect<number, SqlError> =>
    writing(
      Effect.gen(function* () {
        const version = yield* nextVersion
        for (const chunk of chunks(rows)) yield* run(d.upsert(store, chunk, now, version, expiresAt))
        yield* record(rows.map(([key, text]): ChangeRecord => [version, now, Kind.Set, store, key, text]))
        return version
      })
    )
  /** A setMany as the engine's one statement; then, when the log is due for it, a trim in a transaction of its own. */
  const setManyAtOnce = (statement: Statement, now: number): Effect.Effect<number, SqlError> =>
    Effect.flatMap(
      run<{ readonly first: number | bigint | string; readonly last: number | bigint | string }>(statement),
      (rows) => {
        const first = Number(rows[0]!.first)
        const last = Number(rows[0]!.last)
        return dueForTrim(history, first, last) ? Effect.as(writing(trim(last, now)), first) : Effect.succeed(first)
      }
    )
  // Reads of the feed: each in one transaction, one snapshot.
  const changesOf = (after: number, since: number, store: string | undefined, limit: number) =>
    Effect.gen(function* () {
      const head = yield* readHead
      const rows = yield* run<
        {
          readonly seq: number | bigint | string
          readonly version: number | bigint | string
          readonly kind: number
          readonly store: unknown
          readonly key: unknown
        } & ValueColumns
      >(d.changes(after, head, since, store, limit))
      const origin = yield* readOrigin
      return {
        rows: rows.map(
          (row): ChangeRow => [
            Number(row.seq),
            Number(row.version),
            Number(row.kind) as Kind,
            d.name(row.store),
            row.key === null ? null : d.name(row.key),
            d.text(row)
          ]
        ),
        head,
        origin
      }
    })

  return {
    head: () => readHead.pipe(read("watch", undefined)),
    changes: (after, since, store, limit) => snapshot(changesOf(after, since, store, limit)).pipe(read("watch", store)),
    snapshot: (store, ranges, now) =>
      snapshot(
        Effect.gen(function* () {
          const rows: Array<VersionedRow> = []
          for (const range of ranges) {
            const found = yield* run<KeyValueRow & { readonly version: number | bigint | string }>(
              d.range("versioned", store, range, now)
            )
            for (const row of found) rows.push([d.name(row.key), textOf(row), Number(row.version)])
          }
          const head = yield* readHead
          return { rows, head }
        })
      ).pipe(read("watch", store)),
    get: (store, key, now) =>
      run<ValueColumns>(d.get(store, key, now)).pipe(
        Effect.map((rows) => (rows[0] === undefined ? undefined : textOf(rows[0]))),
        read("get", store)
      ),
    getMany: (store, keys, now) => {
      const select = Effect.forEach(chunks(keys), (chunk) => run<KeyValueRow>(d.selectIn(store, chunk, now)))
      // Several statements read in one transaction: one snapshot, never half of another writer's batch.
      return (keys.length > CHUNK ? snapshot(select) : select).pipe(
        Effect.map((results) => results.flatMap((rows) => rows.map((row): Row => [d.name(row.key), textOf(row)]))),
        read("getMany", store)
      )
    },
    has: (store, key, now) =>
      run(d.has(store, key, now)).pipe(
        Effect.map((rows) => rows.length > 0),
        read("has", store)
      ),
    getEntry: (store, key, now) =>
      run<EntryRow>(d.getEntry(store, key, now)).pipe(
        Effect.map((rows): MetaRow | undefined => {
          const row = rows[0]
          return row === undefined ? undefined : metaOf(row)
        }),
        read("getEntry", store)
      ),
    scanKeys: (store, range, now) =>
      run<KeyRow>(d.range("keys", store, range, now)).pipe(
        Effect.map((rows) => rows.map((row) => d.name(row.key))),
        read("keys", store)
      ),
    // A query returns all its rows at once: the byte budget is left to the caller's chunk sizes.
    scan: (store, range, _maxBytes, now) =>
      run<KeyValueRow>(d.range("entries", store, range, now)).pipe(
        Effect.map((rows) => rows.map((row): Row => [d.name(row.key), textOf(row)])),
        read("entries", store)
      ),
    scanMeta: (store, range, _maxBytes, now) =>
      run<EntryRow & KeyRow>(d.range("meta", store, range, now)).pipe(
        Effect.map((rows) => rows.map((row): ListedRow => [d.name(row.key), ...metaOf(row)])),
        read("entries", store)
      ),
    count: (store, range, now) =>
      run<{ readonly count: number | bigint | string }>(d.range("count", store, range, now)).pipe(
        Effect.map((rows) => Number(rows[0]?.count ?? 0)),
        read("count", store)
      ),
    size: (store, now) =>
      run<{ readonly size: number | bigint | string }>(d.size(store, now)).pipe(
        Effect.map((rows) => Number(rows[0]?.size ?? 0)),
        read("size", store)
      ),
    stores: (now) =>
      run<{
        readonly store: unknown
        readonly count: number | bigint | string
        readonly size: number | bigint | string
      }>(d.stores(now)).pipe(
        Effect.map((rows) => rows.map((row): StoreRow => [d.name(row.store), Number(row.count), Number(row.size)])),
        read("stores", undefined)
      ),
    setMany: (store, rows, now, expiresAt) =>
      Effect.flatMap(FiberRef.get(sharedVersion), (shared) =>
        shared === undefined && d.setManyAtOnce !== undefined
          ? setManyAtOnce(d.setManyAtOnce(store, rows, now, expiresAt), now)
          : setManyInTransaction(store, rows, now, expiresAt)
      ).pipe(write(rows.length === 1 ? "set" : "setMany", store)),
    deleteMany: (store, keys, now) =>
      writing(
        Effect.gen(function* () {
          const [records, live] = yield* removeKeys(store, keys, now)
          yield* record(records)
          return live
        })
      ).pipe(write(keys.length === 1 ? "remove" : "deleteMany", store)),
    clear: (store, now) =>
      writing(
        Effect.gen(function* () {
          if ((yield* run(d.anyKey(store))).length === 0) return
          yield* run(d.clear(store))
          yield* record([[yield* nextVersion, now, Kind.Clear, store, null, null]])
        })
      ).pipe(write("clear", store)),
    update: (store, key, f, now, expiresAt) =>
      writing(
        Effect.gen(function* () {
          const current = (yield* run<EntryRow>(d.getEntry(store, key, now)))[0]
          const text = f(current === undefined ? undefined : textOf(current))
          if (isStorageError(text)) return yield* Effect.fail(text)
          const version = yield* nextVersion
          const expiry = expiresAt === undefined ? (current === undefined ? null : expiryOf(current)) : expiresAt
          yield* run(d.upsert(store, [[key, text]], now, version, expiry))
          yield* record([[version, now, Kind.Set, store, key, text]])
          return text
        })
      ).pipe(write("update", store)),
    commit: (checks, writes, now) =>
      // The write lock first: the checks read what no other writer can change before the commit.
      writing(
        Effect.gen(function* () {
          for (const [store, key, expected] of checks) {
            const rows = yield* run<{ readonly version: number | bigint | string }>(d.versionOf(store, key, now))
            const current = rows[0] === undefined ? null : Number(rows[0].version)
            if (current !== expected) return undefined
          }
          const version = yield* nextVersion
          const records: Array<ChangeRecord> = []
          for (const [store, key, text, expiresAt] of writes) {
            if (text === undefined) {
              records.push(...(yield* removeKeys(store, [key], now, version))[0])
            } else {
              yield* run(d.upsert(store, [[key, text]], now, version, expiresAt))
              records.push([version, now, Kind.Set, store, key, text])
            }
          }
          // A commit that changed nothing still returns its version: a record that only holds it keeps it its own.
          if (records.length === 0) records.push([version, now, Kind.Origin, null, null, null])
          yield* record(records)
          return version
        })
      ).pipe(write("commit", undefined)),
    // A sweep takes the write lock only when something has expired.
    expire: (now, limit) =>
      Effect.gen(function* () {
        const next = yield* nextExpiry
        if (next === undefined || next > now) return { removed: 0, next }
        return yield* writing(
          Effect.gen(function* () {
            const removed = expiredInOrder(
              (yield* run<KeyRow & Pick<EntryRow, "expires_at"> & { readonly store: unknown }>(
                d.deleteExpired(now, limit)
              )).map((row) => [d.name(row.store), d.name(row.key), Number(row.expires_at)] as const)
            )
            if (removed.length > 0) {
              const version = yield* nextVersion
              yield* record(removed.map(([store, key]): ChangeRecord => [version, now, Kind.Expire, store, key, null]))
            }
            return { removed: removed.length, next: yield* nextExpiry }
          })
        ).pipe(write("expire", undefined))
      }).pipe(read("expire", undefined))
  }
}

/** The dialect of a client: SQLite's or PostgreSQL's, from the client itself, never from a flag. */
const dialectOf = (sql: SqlClient.SqlClient, options: SqlOptions | undefined): Effect.Effect<Dialect, DatabaseError> =>
  sql.onDialectOrElse({
    sqlite: () =>
      options?.schema === undefined
        ? Effect.succeed(sqliteDialect)
        : Effect.fail(new DatabaseError({ reason: "The schema option is PostgreSQL's: a SQLite database has none" })),
    pg: () => Effect.map(checkSchema(options?.schema), pgDialect),
    orElse: () =>
      Effect.fail(new DatabaseError({ reason: "layerSql takes a SQLite or PostgreSQL SqlClient; this one is neither" }))
  })

/**
 * A `Storage` on the application's `SqlClient`: a SQLite client (`@effect/sql-sqlite-node`, `-bun`, `-wasm`, libsql,
 * …) or a PostgreSQL one (`@effect/sql-pg`), told apart by the client itself. Building the layer runs this library's
 * migrations, in its own `runtime_storage_migrations` table (a no-op when already applied; on PostgreSQL, in the
 * schema the options name, created if missing, two instances starting at once migrating once), and fails with
 * `DatabaseError` when the database was migrated by a newer version.
 *
 * @since 0.1.0
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<Storage, DatabaseError, SqlClient.SqlClient> =>
  Layer.scoped(Storage, Effect.flatMap(makeSqlBackend(options), make))

/** A backend whose primitives are effects. */
export type EffectBackend = Extract<Backend, { readonly _tag: "Effect" }>

/**
 * The backend of {@link layerSql}, for the clients that run it themselves (the Promise API's client on PostgreSQL).
 *
 * @internal
 */
export const makeSqlBackend = (
  options: SqlOptions | undefined
): Effect.Effect<EffectBackend, DatabaseError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const history = yield* Effect.try({
      try: () => historyOf(options?.history),
      catch: (cause) => new DatabaseError({ reason: (cause as Error).message })
    })
    const sql = yield* SqlClient.SqlClient
    const d = yield* dialectOf(sql, options)
    const failed = (cause: unknown) => openFailure("Could not migrate the database", undefined, cause)
    if (d.engine === "pg") yield* checkEncoding(sql)
    yield* migrate(
      {
        query: (text, params = []) => sql.unsafe(text, params).pipe(Effect.mapError(failed)),
        writeTransaction: (self) =>
          sql
            .withTransaction(self)
            .pipe(Effect.mapError((error) => (error instanceof DatabaseError ? error : failed(error)))) as never
      },
      undefined,
      d.migrations
    ).pipe(Effect.catchAllDefect((cause) => Effect.fail(failed(cause))))
    const sharedVersion = FiberRef.unsafeMake<SharedVersion | undefined>(undefined)
    // Watchers listen on the engine's channel when it has one (PostgreSQL); otherwise (SQLite) they poll the log's
    // head through the client while they watch (waiting, like any query, while a transaction holds the connection).
    const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
    const feed =
      d.channel !== undefined
        ? new Notifier(undefined, pgListener(sql as PgLike, d.channel))
        : new Notifier(() => runPromise(primitives.head()))
    yield* Effect.addFinalizer(() => Effect.sync(() => feed.close()))
    const primitives = makePrimitives(sql, d, sharedVersion, history, feed)
    const backend: EffectBackend = {
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
            .withTransaction(
              parent === undefined ? Effect.zipRight(sql.unsafe(d.lock.text, d.lock.params), body) : body
            )
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
    }
    return backend
  })
