/**
 * The SQLite backend: one better-sqlite3 connection per layer, with its statements prepared once, for the life of
 * the connection. Each operation is one synchronous call into SQLite, so operations of concurrent fibers never
 * interleave, and a batch is one `BEGIN IMMEDIATE` transaction.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { DatabaseError, isStorageError, type StorageError } from "../errors/StorageError.js"
import {
  type ChangeBatch,
  type ChangeRecord,
  type ChangeRow,
  type Check,
  type ListedRow,
  type MetaRow,
  type Row,
  type Snapshot,
  type Stored,
  type StoreRow,
  type SyncPrimitives,
  type Transactions,
  type VersionedRow,
  type Write,
  weigh
} from "../internal/backend.js"
import { Checkpointer } from "../internal/checkpointer.js"
import { expiredInOrder, removalOf, SweepAlarm, type Swept } from "../internal/expiry.js"
import { openFailure, readFailure, sqliteCodeOf, writeFailure } from "../internal/failure.js"
import {
  dueForTrim,
  type History,
  type HistoryOptions,
  historyOf,
  Notifier,
  oldEnough,
  trimCandidate
} from "../internal/feed.js"
import { quote } from "../internal/quote.js"
import {
  CHUNK,
  chunks,
  Kind,
  type MigrationDriver,
  migrate,
  type RangeRead,
  rangeParameters,
  rangeSql,
  Sql
} from "../internal/schema.js"
import type { Range } from "../internal/selector.js"
import { make, Storage } from "../services/Storage.js"

/**
 * How durable a completed write is.
 * - `"relaxed"` (default): WAL with `synchronous=NORMAL`. A completed write survives any crash of the process;
 *   the last writes before a power loss or OS crash may be lost (the database stays consistent).
 * - `"strict"`: WAL with `synchronous=FULL`. A completed write also survives power loss.
 *
 * @since 0.1.0
 */
export type Durability = "relaxed" | "strict"

/**
 * Options of {@link layerSqlite}.
 *
 * @since 0.1.0
 */
export interface SqliteOptions {
  /** The database file (missing parent directories are created), or `":memory:"`. */
  readonly filename: string
  /** See {@link Durability}. Default `"relaxed"`. */
  readonly durability?: Durability | undefined
  /** How long to wait for another connection's lock before failing. Default 5 seconds. */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /**
   * How much history the change feed keeps: at least the last `changes` changes (default 100,000) and every change
   * younger than `maxAge` (default 7 days), whichever is more. A watch resuming from an older version fails.
   */
  readonly history?: HistoryOptions | undefined
}

/** Bytes the WAL file is truncated to when it is restarted: the size of one auto-checkpoint (1000 pages). */
const JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024

type Statement = Database.Statement<Array<unknown>, unknown>

const isFileBacked = (filename: string): boolean => filename !== ":memory:" && filename !== ""

const errnoOf = (cause: unknown): string => (cause as NodeJS.ErrnoException).code ?? "error"

/**
 * Creates the missing directories of the database with mode 0700, whatever the umask: this is the user's private
 * data. A missing database file is made whole before it appears under its name: it is created (mode 0600, which
 * SQLite gives its `-wal` and `-shm` files too) and initialized under a temporary name, closed cleanly (so it has
 * no `-wal`), and then linked to its name, which fails rather than replace a file another process created first.
 * So a crash never leaves an empty file under the database's name, and an empty file there is not ours.
 */
const createPrivately = (filename: string): void => {
  const directory = path.dirname(filename)
  try {
    const created = fs.mkdirSync(directory, { recursive: true, mode: 0o700 })
    if (created !== undefined) fs.chmodSync(directory, 0o700)
  } catch (cause) {
    throw new DatabaseError({
      reason: `Could not create the directory of the database (${errnoOf(cause)}): ${quote(directory)}`,
      filename,
      cause
    })
  }
  if (fs.existsSync(filename)) return
  const temporary = `${filename}.${process.pid}-${randomBytes(6).toString("hex")}.creating`
  try {
    const fd = fs.openSync(temporary, "wx", 0o600)
    try {
      fs.fchmodSync(fd, 0o600)
    } finally {
      fs.closeSync(fd)
    }
    const db = new Database(temporary)
    try {
      db.pragma("journal_mode = WAL")
    } finally {
      db.close()
    }
    const fd2 = fs.openSync(temporary, "r+")
    try {
      fs.fsyncSync(fd2)
    } finally {
      fs.closeSync(fd2)
    }
    try {
      fs.linkSync(temporary, filename)
    } catch (cause) {
      const code = errnoOf(cause)
      // Another process created it first: use theirs.
      if (code === "EEXIST") return
      // A file system without hard links: copy, still refusing to replace an existing file.
      if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") {
        try {
          fs.copyFileSync(temporary, filename, fs.constants.COPYFILE_EXCL)
        } catch (copyCause) {
          if (errnoOf(copyCause) !== "EEXIST") throw copyCause
        }
        return
      }
      throw cause
    }
  } catch (cause) {
    throw new DatabaseError({ reason: `Could not create the database file (${errnoOf(cause)})`, filename, cause })
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${temporary}${suffix}`, { force: true })
  }
}

/** An existing database file of 0 bytes (with no `-wal` holding its content) is refused, never overwritten. */
const refuseEmptyFile = (filename: string): void => {
  const size = (suffix: string): number => {
    try {
      return fs.statSync(`${filename}${suffix}`).size
    } catch {
      return -1
    }
  }
  if (size("") === 0 && size("-wal") <= 0) {
    throw new DatabaseError({
      reason:
        "The database file is empty (0 bytes): it was not written by runtime-storage, which never leaves an empty " +
        "file behind, so it is left untouched. Move it away to start with a new database",
      filename,
      sqliteCode: "SQLITE_NOTADB"
    })
  }
}

/** Opens the connection with its pragmas set. @internal */
export const openDatabase = (options: SqliteOptions): Database.Database => {
  const { filename } = options
  if (isFileBacked(filename)) {
    createPrivately(filename)
    refuseEmptyFile(filename)
  }
  try {
    return configure(new Database(filename), options)
  } catch (cause) {
    // A database the process may read but not write (a read-only file or directory, where SQLite cannot create the
    // -shm file) is opened read-only: reads work, writes fail with SQLITE_READONLY.
    const code = sqliteCodeOf(cause)
    if (isFileBacked(filename) && code !== undefined && /^SQLITE_(READONLY|CANTOPEN)/.test(code)) {
      return configure(new Database(filename, { readonly: true, fileMustExist: true }), options)
    }
    throw cause
  }
}

const configure = (db: Database.Database, options: SqliteOptions): Database.Database => {
  try {
    const busyTimeout = Math.max(0, Math.round(Duration.toMillis(options.busyTimeout ?? Duration.seconds(5))))
    db.pragma(`busy_timeout = ${busyTimeout}`)
    // Reading the header first makes a file that is not a database fail here, before anything is written to it.
    db.pragma("schema_version")
    if (!db.readonly) db.pragma("journal_mode = WAL")
    db.pragma(`synchronous = ${options.durability === "strict" ? "FULL" : "NORMAL"}`)
    db.pragma("trusted_schema = OFF")
    // After a checkpoint restarts the WAL, truncate it to this size: a burst of writes while a reader held an old
    // snapshot does not leave a large WAL file behind.
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`)
    return db
  } catch (cause) {
    db.close()
    throw cause
  }
}

const migrationDriver = (db: Database.Database, filename: string): MigrationDriver<DatabaseError> => {
  const exec = (sql: string): Effect.Effect<void, DatabaseError> =>
    Effect.try({
      try: () => {
        db.exec(sql)
      },
      catch: (cause) => openFailure("Could not migrate the database", filename, cause)
    })
  return {
    query: (sql, params = []) =>
      Effect.try({
        try: () => {
          const statement = db.prepare(sql) as Statement
          if (statement.reader) return statement.all(...params)
          statement.run(...params)
          return []
        },
        catch: (cause) => openFailure("Could not migrate the database", filename, cause)
      }),
    writeTransaction: (self) =>
      Effect.acquireUseRelease(
        exec("BEGIN IMMEDIATE"),
        () => Effect.zipLeft(self, exec("COMMIT")),
        () => (db.inTransaction ? Effect.ignore(exec("ROLLBACK")) : Effect.void)
      )
  }
}

const makePrimitives = (
  db: Database.Database,
  history: History,
  checkpointer: Checkpointer | undefined
): SyncPrimitives => {
  const prepare = (sql: string): Statement => db.prepare(sql) as Statement
  const get = prepare(Sql.get).pluck()
  const has = prepare(Sql.has).pluck()
  const getEntry = prepare(Sql.getEntry).raw()
  const size = prepare(Sql.size).pluck()
  const stores = prepare(Sql.stores).raw()
  const clear = prepare(Sql.clear)
  const upsert = prepare(Sql.upsert(1))
  const nextVersion = prepare(Sql.nextVersion).pluck()
  const versionOf = prepare(Sql.versionOf).pluck()
  const logChange = prepare(Sql.logChanges(1))
  const head = prepare(Sql.head).pluck()
  const origin = prepare(Sql.origin).raw()
  const recordAt = prepare(Sql.recordAt).pluck()
  const nextExpiry = prepare(Sql.nextExpiry).pluck()
  const deleteExpired = prepare(Sql.deleteExpired).raw()
  const trimBefore = prepare(Sql.trimBefore)
  const makeOrigin = prepare(Sql.makeOrigin)
  const changesOf = [prepare(Sql.changes.all).raw(), prepare(Sql.changes.byStore).raw()] as const
  // Statements of a list of keys (IN lists) or of rows (multi-row writes) are prepared once per length and kept:
  // lengths are at most CHUNK.
  const sizedStatements = new Map<string, Statement>()
  const sized = (kind: "selectIn" | "deleteIn" | "upsert" | "logChanges", length: number): Statement => {
    const id = `${kind}:${length}`
    let statement = sizedStatements.get(id)
    if (statement === undefined) {
      statement = prepare(Sql[kind](length))
      if (kind === "selectIn" || kind === "deleteIn") statement.raw()
      sizedStatements.set(id, statement)
    }
    return statement
  }
  // Range statements are prepared once per shape (which bounds, which direction) and kept: at most 32 of them.
  const ranges = new Map<string, Statement>()
  const rangeStatement = (read: RangeRead, range: Range): Statement => {
    const sql = rangeSql(read, range)
    let statement = ranges.get(sql)
    if (statement === undefined) {
      statement = prepare(sql)
      if (read === "entries" || read === "versioned" || read === "meta") statement.raw()
      else statement.pluck()
      ranges.set(sql, statement)
    }
    return statement
  }
  /** Rows of a range; with a byte budget, read one at a time and stopped once the budget is reached. */
  const scan = <R extends Row | ListedRow>(
    read: "entries" | "meta",
    store: string,
    range: Range,
    maxBytes: number,
    now: number
  ): Array<R> => {
    const statement = rangeStatement(read, range)
    const parameters = rangeParameters(store, range, read, now)
    if (maxBytes === Number.POSITIVE_INFINITY) return statement.all(...parameters) as Array<R>
    const rows: Array<R> = []
    let bytes = 0
    // Leaving the loop early closes the iterator: no statement stays open after this call.
    for (const row of statement.iterate(...parameters) as IterableIterator<R>) {
      rows.push(row)
      bytes += weigh(row)
      if (bytes >= maxBytes) break
    }
    return rows
  }
  const feed = new Notifier(() => head.get())
  // The levels of the open transaction (0: none), and the version its writes share once one of them took it, with
  // the level that took it (undoing that level gives the version back, as SQLite undoes its records).
  let depth = 0
  let sharedVersion: number | undefined
  let versionDepth = 0
  /** The version of a write: the next one, or inside a transaction the one its writes share. */
  const takeVersion = (): number => {
    if (depth === 0) return nextVersion.get() as number
    if (sharedVersion === undefined) {
      sharedVersion = nextVersion.get() as number
      versionDepth = depth
    }
    return sharedVersion
  }
  // The records one write call appends: the first and last seq, so the call can tell whether the log is due for a
  // trim once it has written them, and the time of the write.
  let firstSeq = 0
  let lastSeq = 0
  let writtenAt = 0
  // About how many bytes the open transaction wrote (each key and value twice: entry and record), for the
  // checkpointer to count the WAL's pages by.
  let written = 0
  const record = (...values: ChangeRecord) => {
    written += 64 + 2 * ((values[4]?.length ?? 0) + (values[5]?.length ?? 0))
    lastSeq = Number(logChange.run(...values).lastInsertRowid)
    if (firstSeq === 0) firstSeq = lastSeq
    writtenAt = values[1]
  }
  /** Runs a write call's body, then trims the log in the same transaction when its records made it due. */
  const logged = <A extends ReadonlyArray<unknown>, B>(body: (...args: A) => B) =>
    db.transaction((...args: A): B => {
      firstSeq = 0
      const result = body(...args)
      if (firstSeq !== 0 && dueForTrim(history, firstSeq, lastSeq)) {
        const [originSeq] = origin.get() as [number, number]
        const cut = trimCandidate(history, originSeq, lastSeq)
        if (cut !== undefined && oldEnough(history, recordAt.get(cut) as number | undefined, writtenAt)) {
          trimBefore.run(cut)
          makeOrigin.run(cut)
        }
      }
      return result
    })
  const beginStatement = prepare("BEGIN IMMEDIATE")
  const beginRead = prepare("BEGIN")
  // Whether the open transaction only reads: its end wakes no watcher.
  let reading = false
  const commitStatement = prepare("COMMIT")
  const rollbackStatement = prepare("ROLLBACK")
  const transactions: Transactions = {
    begin: (read = false) =>
      write("transaction", undefined, () => {
        if (depth === 0) {
          ;(read ? beginRead : beginStatement).run()
          reading = read
        } else {
          db.exec(`SAVEPOINT runtime_storage_${depth}`)
        }
        depth++
      }),
    commit: () =>
      write("transaction", undefined, () => {
        if (depth === 1) commitStatement.run()
        else db.exec(`RELEASE runtime_storage_${depth - 1}`)
        depth--
        if (depth === 0) sharedVersion = undefined
        else if (versionDepth > depth) versionDepth = depth
      }),
    rollback: () =>
      write("transaction", undefined, () => {
        depth--
        if (versionDepth > depth) sharedVersion = undefined
        if (depth === 0) {
          if (db.inTransaction) rollbackStatement.run()
        } else {
          db.exec(`ROLLBACK TO runtime_storage_${depth}; RELEASE runtime_storage_${depth}`)
        }
      })
  }

  // Every write records its changes in the log, in its own transaction; a write that changes nothing records
  // nothing and takes no version.
  // A batch is written with multi-row statements (one per CHUNK rows, prepared once per length): SQLite's cost per
  // statement, paid once per chunk instead of once per row, was most of what the change log added to a setMany.
  const writeRows = logged((store: string, rows: ReadonlyArray<Row>, now: number, expiresAt: number | null) => {
    const version = takeVersion()
    if (rows.length === 1) {
      const [key, text] = rows[0]!
      upsert.run(store, key, text, now, now, version, expiresAt)
      record(version, now, Kind.Set, store, key, text)
      return version
    }
    for (const chunk of chunks(rows)) {
      const upserts: Array<unknown> = []
      const records: Array<unknown> = []
      for (const [key, text] of chunk) {
        upserts.push(store, key, text, now, now, version, expiresAt)
        records.push(version, now, Kind.Set, store, key, text)
      }
      sized("upsert", chunk.length).run(...upserts)
      lastSeq = Number(sized("logChanges", chunk.length).run(...records).lastInsertRowid)
      for (const [key, text] of chunk) written += 64 + 2 * (key.length + text.length)
      if (firstSeq === 0) firstSeq = lastSeq - chunk.length + 1
      writtenAt = now
    }
    return version
  })
  /**
   * Removes keys and records the removal of those that existed (as expiries for those that had expired); how many
   * existed and had not expired.
   */
  const removeKeys = (store: string, keys: ReadonlyArray<string>, now: number, version?: number): number => {
    let removed = 0
    for (const chunk of chunks(keys)) {
      for (const [key, expiresAt] of sized("deleteIn", chunk.length).all(store, ...chunk) as Array<
        [string, number | null]
      >) {
        version ??= takeVersion()
        const kind = removalOf(expiresAt, now)
        record(version, now, kind, store, key, null)
        if (kind === Kind.Remove) removed++
      }
    }
    return removed
  }
  const deleteKeys = logged((store: string, keys: ReadonlyArray<string>, now: number) => removeKeys(store, keys, now))
  const clearStore = logged((store: string, now: number) => {
    const removed = clear.run(store).changes
    // A clear writes pages for every entry it deletes, though it records one change.
    written += 64 * removed
    if (removed > 0) record(takeVersion(), now, Kind.Clear, store, null, null)
  })
  const clearSome = prepare(Sql.clearSome)
  const clearPiece = logged((store: string, now: number, limit: number, cleared: boolean): number => {
    const removed = clearSome.run(store, limit).changes
    written += 64 * removed
    if (removed < limit && (removed > 0 || cleared)) record(takeVersion(), now, Kind.Clear, store, null, null)
    return removed
  })
  const expireEntries = logged((now: number, limit: number): Swept => {
    const rows = expiredInOrder(deleteExpired.all(now, limit) as Array<[string, string, number]>)
    if (rows.length > 0) {
      const version = takeVersion()
      for (const [store, key] of rows) record(version, now, Kind.Expire, store, key, null)
    }
    return { removed: rows.length, next: (nextExpiry.get() as number | undefined) ?? undefined }
  })

  // More keys than one statement takes are read in one (deferred) transaction: one snapshot, so a batch another
  // process writes meanwhile is seen whole or not at all.
  const readChunks = db.transaction((store: string, keys: ReadonlyArray<string>, now: number) => {
    const rows: Array<Row> = []
    for (const chunk of chunks(keys)) {
      for (const row of sized("selectIn", chunk.length).all(store, now, ...chunk)) rows.push(row as Row)
    }
    return rows
  })
  const updateKey = logged(
    (
      store: string,
      key: string,
      f: (text: Stored | undefined) => Stored | StorageError,
      now: number,
      expiresAt: number | undefined
    ) => {
      const current = getEntry.get(store, key, now) as MetaRow | undefined
      const text = f(current?.[0])
      // Thrown inside the transaction: it rolls back (nothing was written) and the error is the failure.
      if (isStorageError(text)) throw text
      const version = takeVersion()
      upsert.run(store, key, text, now, now, version, expiresAt === undefined ? (current?.[4] ?? null) : expiresAt)
      record(version, now, Kind.Set, store, key, text)
      return text
    }
  )

  const commitAtomic = logged((checks: ReadonlyArray<Check>, writes: ReadonlyArray<Write>, now: number) => {
    for (const [store, key, expected] of checks) {
      if (((versionOf.get(store, key, now) as number | undefined) ?? null) !== expected) return undefined
    }
    const version = takeVersion()
    for (const [store, key, text, expiresAt] of writes) {
      if (text === undefined) {
        removeKeys(store, [key], now, version)
      } else {
        upsert.run(store, key, text, now, now, version, expiresAt)
        record(version, now, Kind.Set, store, key, text)
      }
    }
    // A commit that changed nothing still returns its version: a record that only holds it keeps it its own.
    if (firstSeq === 0) record(version, now, Kind.Origin, null, null, null)
    return version
  })

  // Reads of the feed: each one snapshot.
  const readChanges = db.transaction(
    (after: number, since: number, store: string | undefined, limit: number): ChangeBatch => {
      const last = head.get() as number
      const rows = (
        store === undefined
          ? changesOf[0].all(after, last, since, limit)
          : changesOf[1].all(after, last, since, store, limit)
      ) as Array<ChangeRow>
      return { rows, head: last, origin: origin.get() as [number, number] }
    }
  )
  const readSnapshot = db.transaction((store: string, selected: ReadonlyArray<Range>, now: number): Snapshot => {
    const rows: Array<VersionedRow> = []
    for (const range of selected) {
      for (const row of rangeStatement("versioned", range).all(...rangeParameters(store, range, "versioned", now))) {
        rows.push(row as VersionedRow)
      }
    }
    return { rows, head: head.get() as number }
  })

  // Every primitive is one synchronous call into SQLite, its failure mapped by what was being done. A write that
  // commits (outside a transaction) wakes this connection's watchers.
  const read = <A>(operation: string, store: string | undefined, f: () => A): A => {
    try {
      return f()
    } catch (cause) {
      throw readFailure(operation, store, cause)
    }
  }
  const write = <A>(operation: string, store: string | undefined, f: () => A): A => {
    let result: A
    try {
      result = f()
    } catch (cause) {
      throw isStorageError(cause) ? cause : writeFailure(operation, store, cause)
    }
    if (depth === 0) {
      if (reading) {
        reading = false
      } else {
        feed.notify()
        checkpointer?.committed(written)
        written = 0
      }
    }
    return result
  }

  return {
    transactions,
    feed,
    alarm: new SweepAlarm(),
    get: (store, key, now) => read("get", store, () => get.get(store, key, now) as Stored | undefined),
    getMany: (store, keys, now) =>
      read("getMany", store, () =>
        keys.length <= CHUNK
          ? (sized("selectIn", keys.length).all(store, now, ...keys) as Array<Row>)
          : readChunks(store, keys, now)
      ),
    has: (store, key, now) => read("has", store, () => has.get(store, key, now, store, key) !== undefined),
    getEntry: (store, key, now) => read("getEntry", store, () => getEntry.get(store, key, now) as MetaRow | undefined),
    scanKeys: (store, range, now) =>
      read(
        "keys",
        store,
        () => rangeStatement("keys", range).all(...rangeParameters(store, range, "keys", now)) as Array<string>
      ),
    scan: (store, range, maxBytes, now) =>
      read("entries", store, () => scan<Row>("entries", store, range, maxBytes, now)),
    scanMeta: (store, range, maxBytes, now) =>
      read("entries", store, () => scan<ListedRow>("meta", store, range, maxBytes, now)),
    count: (store, range, now) =>
      read("count", store, () =>
        Number(rangeStatement("count", range).get(...rangeParameters(store, range, "count", now)))
      ),
    size: (store, now) => read("size", store, () => Number(size.get(store, now))),
    stores: (now) => read("stores", undefined, () => stores.all(now) as Array<StoreRow>),
    setMany: (store, rows, now, expiresAt) =>
      write(rows.length === 1 ? "set" : "setMany", store, () => writeRows.immediate(store, rows, now, expiresAt)),
    deleteMany: (store, keys, now) =>
      write(keys.length === 1 ? "remove" : "deleteMany", store, () => deleteKeys.immediate(store, keys, now)),
    clear: (store, now) => write("clear", store, () => clearStore.immediate(store, now)),
    clearSome: (store, now, limit, cleared) =>
      write("clear", store, () => clearPiece.immediate(store, now, limit, cleared)),
    update: (store, key, f, now, expiresAt) =>
      write("update", store, () => updateKey.immediate(store, key, f, now, expiresAt)),
    commit: (checks, writes, now) => write("commit", undefined, () => commitAtomic.immediate(checks, writes, now)),
    // A sweep takes the write lock only when something has expired.
    expire: (now, limit) => {
      const next = read("expire", undefined, () => nextExpiry.get() as number | undefined)
      if (next === undefined || next > now) return { removed: 0, next }
      return write("expire", undefined, () => expireEntries.immediate(now, limit))
    },
    head: () => read("watch", undefined, () => head.get() as number),
    changes: (after, since, store, limit) => read("watch", store, () => readChanges(after, since, store, limit)),
    snapshot: (store, selected, now) => read("watch", store, () => readSnapshot(store, selected, now))
  }
}

/**
 * Opens the database, sets its pragmas, migrates it and prepares its statements; closes it when the scope closes.
 *
 * @internal
 */
export const makeSqlitePrimitives = (
  options: SqliteOptions
): Effect.Effect<SyncPrimitives, DatabaseError, Scope.Scope> =>
  Effect.gen(function* () {
    const { filename } = options
    if (options.durability !== undefined && options.durability !== "relaxed" && options.durability !== "strict") {
      // An unknown durability must not quietly become "relaxed": a caller asking for more safety would get less.
      return yield* Effect.fail(
        new DatabaseError({
          reason: `Invalid durability ${JSON.stringify(String(options.durability))}: use "relaxed" or "strict"`,
          filename
        })
      )
    }
    const history = yield* Effect.try({
      try: () => historyOf(options.history),
      catch: (cause) => new DatabaseError({ reason: (cause as Error).message, filename })
    })
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openDatabase(options),
        catch: (cause) =>
          cause instanceof DatabaseError ? cause : openFailure("Could not open the database", filename, cause)
      }),
      (db) => Effect.sync(() => db.close())
    )
    yield* migrate(migrationDriver(db, filename), filename)
    // Checkpoints run on a worker thread (see checkpointer.ts), closed before the connection is.
    const checkpointer =
      isFileBacked(filename) && !db.readonly
        ? yield* Effect.acquireRelease(
            Effect.sync(() => {
              const checkpointer = new Checkpointer(filename, () => db.pragma("wal_autocheckpoint = 1000"))
              db.pragma("wal_autocheckpoint = 0")
              return checkpointer
            }),
            (checkpointer) => Effect.promise(() => checkpointer.close())
          )
        : undefined
    return yield* Effect.try({
      try: () => makePrimitives(db, history, checkpointer),
      catch: (cause) => openFailure("Could not prepare the database", filename, cause)
    })
  })

/**
 * A `Storage` on a SQLite database file that this layer opens (creating it and its parent directories when
 * missing), migrates, and closes when the layer is released. Every open sets `journal_mode=WAL`, `synchronous`
 * from `durability`, `busy_timeout` and `trusted_schema=OFF` explicitly.
 *
 * @since 0.1.0
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<Storage, DatabaseError> =>
  Layer.scoped(
    Storage,
    Effect.flatMap(makeSqlitePrimitives(options), (primitives) => make({ _tag: "Sync", primitives }))
  )
