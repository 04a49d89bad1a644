/**
 * What a backend provides: the few primitives every operation of the service is derived from. A backend sees
 * only validated keys and store names and the JSON text made by the serializer; it never validates, serializes
 * or orders results of `getMany` itself, so these rules cannot differ between backends.
 *
 * A backend is synchronous (its primitives return values and throw the library's errors: better-sqlite3 and
 * memory) or effectful (its primitives are effects: any `SqlClient`). The operations are written once, as programs
 * over these primitives, and run by either kind.
 */
import type * as Effect from "effect/Effect"
import type { StorageError } from "../errors/StorageError.js"
import type { SweepAlarm, Swept } from "./expiry.js"
import type { Notifier } from "./feed.js"
import type { Kind } from "./schema.js"
import type { Range } from "./selector.js"

/**
 * What a backend stores for a value: its JSON text, or (a binary value) its bytes, stored as a BLOB.
 */
export type Stored = string | Uint8Array

/** A stored key with its JSON text (or bytes). */
export type Row = readonly [key: string, text: Stored]

/**
 * A stored value with its metadata: its JSON text, when it was created and last written (ms since the epoch), the
 * version of its last write, and when it expires (`null`: never).
 */
export type MetaRow = readonly [
  text: Stored,
  createdAt: number,
  updatedAt: number,
  version: number,
  expiresAt: number | null
]

/**
 * What a row weighs against the byte budget of a `scan`: the length of its key and text. Every backend and the
 * service count the same way, so the service can tell a scan cut short by its budget from one that ran out of rows.
 */
export const weigh = (row: Row | ListedRow): number => row[0].length + row[1].length

/** A stored key with its JSON text (or bytes) and its metadata (see {@link MetaRow}), as a list with metadata reads it. */
export type ListedRow = readonly [
  key: string,
  text: Stored,
  createdAt: number,
  updatedAt: number,
  version: number,
  expiresAt: number | null
]

/** A store with how many live entries it holds and their total size in bytes. */
export type StoreRow = readonly [store: string, count: number, size: number]

/** A check of an atomic commit: the key's version must be this one (`null`: the key must be absent). */
export type Check = readonly [store: string, key: string, version: number | null]

/**
 * A write of an atomic commit: the JSON text to store (with when it expires, `null`: never), or `undefined` to remove
 * the key.
 */
export type Write = readonly [store: string, key: string, text: Stored | undefined, expiresAt: number | null]

/**
 * A record of the change log: its place in the log, the version of the write that made it, what it records, and
 * the key (`null` for a clear) and JSON text (a set's only) it is about.
 */
export type ChangeRow = readonly [
  seq: number,
  version: number,
  kind: Kind,
  store: string,
  key: string | null,
  text: Stored | null
]

/**
 * Change records read after a place in the log: at most the limit asked for, all of them up to `head` (the last
 * record when they were read) otherwise; with the origin of the log (its first record's seq and version) read after
 * them, which tells whether records that the read needed were trimmed.
 */
export interface ChangeBatch {
  readonly rows: ReadonlyArray<ChangeRow>
  readonly head: number
  readonly origin: readonly [seq: number, version: number]
}

/**
 * A record as a write appends it to the change log (its seq is the log's next): the version of the write, when (ms
 * since the epoch), what it records, and the store, key and JSON text it is about (`null` where it has none).
 */
export type ChangeRecord = readonly [
  version: number,
  at: number,
  kind: Kind,
  store: string | null,
  key: string | null,
  text: Stored | null
]

/** A stored key with its JSON text and version. */
export type VersionedRow = readonly [key: string, text: Stored, version: number]

/** Entries and the head of the log, read as one snapshot. */
export interface Snapshot {
  readonly rows: ReadonlyArray<VersionedRow>
  readonly head: number
}

/**
 * The primitives, in their synchronous form. They throw `ReadFailed`, `WriteFailed` or `DatabaseError`.
 *
 * `now` is the current time (ms since the epoch, from the caller's clock): the time a write records, and the time
 * that tells which entries have expired. An expired entry is absent to every primitive, whether or not it has been
 * deleted yet; a write that meets one deletes it (overwriting it creates the key anew).
 */
export interface Primitives {
  /** The JSON text of a key, or `undefined`. */
  readonly get: (store: string, key: string, now: number) => Stored | undefined
  /** The rows of the given (distinct) keys that exist, in any order. */
  readonly getMany: (store: string, keys: ReadonlyArray<string>, now: number) => ReadonlyArray<Row>
  readonly has: (store: string, key: string, now: number) => boolean
  /** The JSON text of a key with its metadata, or `undefined`. */
  readonly getEntry: (store: string, key: string, now: number) => MetaRow | undefined
  /** The keys of the range, in its order, at most its limit. */
  readonly scanKeys: (store: string, range: Range, now: number) => ReadonlyArray<string>
  /**
   * The rows of the range, in its order, at most its limit. A synchronous backend also stops after the row that
   * brings the summed {@link weigh}t to `maxBytes` or more (an effectful one may return the whole limit).
   */
  readonly scan: (store: string, range: Range, maxBytes: number, now: number) => ReadonlyArray<Row>
  /** {@link Primitives.scan}, each row with its metadata. */
  readonly scanMeta: (store: string, range: Range, maxBytes: number, now: number) => ReadonlyArray<ListedRow>
  /** How many keys the range holds (at most its limit). */
  readonly count: (store: string, range: Range, now: number) => number
  /** Total UTF-8 bytes of the stored JSON texts of the store. */
  readonly size: (store: string, now: number) => number
  /** Every store holding a live entry, with its entry count and {@link Primitives.size}, in code point order. */
  readonly stores: (now: number) => ReadonlyArray<StoreRow>
  /**
   * Inserts or overwrites the rows (distinct keys), expiring at `expiresAt` (`null`: never): all of them or, on
   * failure, none, in one transaction that gives them all the next version (which it returns), and records each
   * change in the change log.
   */
  readonly setMany: (store: string, rows: ReadonlyArray<Row>, now: number, expiresAt: number | null) => number
  /**
   * Removes the (distinct) keys, all or none, and returns how many existed. The keys that existed take the next
   * version in the change log (none is taken when no key existed); expired ones are recorded as expired.
   */
  readonly deleteMany: (store: string, keys: ReadonlyArray<string>, now: number) => number
  readonly clear: (store: string, now: number) => void
  /**
   * Reads a key and writes what `f` makes of its text, in one transaction that holds the write lock from its start,
   * so no other writer can come in between, and gives the row the next version. The row expires at `expiresAt`, or
   * (`undefined`) keeps its own expiry (a row the update creates never expires). When `f` returns an error instead
   * of a text, nothing is written (and no version is taken) and the error is the failure. Returns the written text.
   */
  readonly update: (
    store: string,
    key: string,
    f: (text: Stored | undefined) => Stored | StorageError,
    now: number,
    expiresAt: number | undefined
  ) => Stored
  /**
   * An atomic commit, in one transaction that holds the write lock from its start: when every check holds, the
   * writes (in order) with the next version, which it returns; otherwise nothing, and `undefined`.
   */
  readonly commit: (checks: ReadonlyArray<Check>, writes: ReadonlyArray<Write>, now: number) => number | undefined
  /**
   * Deletes at most `limit` entries (of any store) that have expired at `now`, the longest expired first, recording
   * each in the change log, in one short transaction (none when nothing has expired); returns how many it deleted
   * and when the next remaining entry expires.
   */
  readonly expire: (now: number, limit: number) => Swept
  /** The seq of the last record of the change log: it moves whenever any connection commits a change. */
  readonly head: () => number
  /**
   * The change records after the seq `after` made by writes with a version above `since`, in commit order, at most
   * `limit` of them, of one store (or of all when `undefined`); see {@link ChangeBatch}.
   */
  readonly changes: (after: number, since: number, store: string | undefined, limit: number) => ChangeBatch
  /** The entries of the ranges of a store (each in its order, with its limit) and the log's head, as one snapshot. */
  readonly snapshot: (store: string, ranges: ReadonlyArray<Range>, now: number) => Snapshot
}

/**
 * The transactions of a synchronous backend, nested as levels: the first `begin` opens a transaction that holds the
 * write lock from its start (`BEGIN IMMEDIATE`), each further one a savepoint inside it. `commit` and `rollback` end
 * the innermost level. While a transaction is open, every write joins it, and all of them take one version (the
 * first write's); undoing the level that took it gives it back.
 */
export interface Transactions {
  /**
   * Opens a level. `read`: a level that only reads (one snapshot of the database for its reads): outermost, it takes
   * no write lock, so other processes keep writing meanwhile.
   */
  readonly begin: (read?: boolean) => void
  readonly commit: () => void
  readonly rollback: () => void
}

/**
 * A synchronous backend's primitives with its transactions, the notifier that wakes its watchers, and the alarm that
 * wakes its sweeper.
 */
export interface SyncPrimitives extends Primitives {
  readonly transactions: Transactions
  /**
   * `clear` in pieces, for a backend whose clear costs by the entry (SQLite): deletes at most `limit` entries of the
   * store, in a transaction already open, and, when it leaves the store empty, records the clear if it deleted any
   * entry or `cleared` (earlier pieces did). Returns how many it deleted. A backend whose clear costs nothing per
   * entry (memory) leaves it out.
   */
  readonly clearSome?: (store: string, now: number, limit: number, cleared: boolean) => number
  readonly feed: Notifier
  readonly alarm: SweepAlarm
}

/** The primitives as effects. */
export type EffectPrimitives = {
  readonly [K in keyof Primitives]: (
    ...args: Parameters<Primitives[K]>
  ) => Effect.Effect<ReturnType<Primitives[K]>, StorageError>
}

/** A backend: synchronous or effectful primitives. */
export type Backend =
  | { readonly _tag: "Sync"; readonly primitives: SyncPrimitives }
  | {
      readonly _tag: "Effect"
      readonly primitives: EffectPrimitives
      /** Wakes the watchers of this backend: notified after each of its commits, polling while watched. */
      readonly feed: Notifier
      /** Wakes the sweeper of this backend when a write stores an entry that expires before its next run. */
      readonly alarm: SweepAlarm
      /**
       * Runs an effect in a transaction that holds the write lock from its start (a savepoint when one is already
       * open in this fiber): committed when the effect succeeds, rolled back when it fails, dies or is interrupted.
       * Every write inside takes the transaction's one version.
       */
      readonly withTransaction: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
    }
