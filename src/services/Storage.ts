/**
 * The `Storage` service: persistent, isolated, typed-error key-value storage of JSON values.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { DatabaseError, ReadFailedError, StorageError, WriteFailedError } from "../errors/StorageError.js"
import {
  GenericError,
  HistoryTrimmedError,
  InvalidKeyError,
  isStorageError,
  NotFoundError,
  SerializationError
} from "../errors/StorageError.js"
import {
  type Backend,
  type ChangeRow,
  type Check,
  type EffectPrimitives,
  type ListedRow,
  type Primitives,
  type Row,
  type Stored,
  type SyncPrimitives,
  type Write,
  weigh
} from "../internal/backend.js"
import {
  checkExpireIn,
  expiresAtOf,
  SWEEP_BATCH,
  type SweepAlarm,
  type Swept,
  sweepDelay,
  WRITE_OPTIONS
} from "../internal/expiry.js"
import { checkWatch, matches, type Notifier, type WatchRequest, type WatchSelection } from "../internal/feed.js"
import { InvalidStoredJson, parse, serialize } from "../internal/json.js"
import { compareCodePoints } from "../internal/order.js"
import { quote } from "../internal/quote.js"
import { Kind } from "../internal/schema.js"
import {
  after,
  checkListOptions,
  encodeCursor,
  type Range,
  type Selection,
  select,
  selectPage
} from "../internal/selector.js"
import { nextTurn, pauseDue, SLICE_ROWS, Suspended, settleSliced, sliced } from "../internal/slices.js"
import { checkKey, entryPairs, keyItems, resolveStore } from "../internal/validate.js"
import { formatVersion, parseVersion } from "../internal/version.js"

/**
 * A JSON value.
 *
 * @since 0.3.0
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | ReadonlyArray<JsonValue>
  | { readonly [key: string]: JsonValue }

/**
 * What can be stored and what comes back: a JSON value, or bytes (a `Uint8Array`, stored as they are and read back
 * as a fresh `Uint8Array`). Bytes inside a JSON value are refused: store them under a key of their own.
 *
 * @since 0.1.0
 */
export type Json = JsonValue | Uint8Array

/**
 * The options every operation takes. `store` selects an isolated named store; `"default"` when absent.
 *
 * @since 0.1.0
 */
export interface StoreOptions {
  readonly store?: string | undefined
}

/**
 * The options of a write of values (`set`, `setMany`, an atomic `set`): its store, and `expireIn`, how long after
 * the write its entries expire (milliseconds, or an Effect `Duration` such as `"10 minutes"`; positive and finite).
 * An expired entry is absent to every read at once, and deleted in the background. A write without `expireIn`
 * stores entries that never expire (overwriting an expiring entry removes its expiry). Any other option name is
 * refused with `InvalidKey` (9004).
 *
 * @since 0.4.0
 */
export interface SetOptions extends StoreOptions {
  readonly expireIn?: Duration.DurationInput | undefined
}

/**
 * A key with its value, as listed by `entries`.
 *
 * @since 0.1.0
 */
export interface Entry<A = Json> {
  readonly key: string
  readonly value: A
}

/**
 * Which keys of a store a read selects. `prefix` keeps the keys that start with it, `start` is inclusive and `end`
 * exclusive, and all the bounds given apply together. Keys come in ascending code point order, descending with
 * `reverse: true`, at most `limit` of them (a positive integer). Any other option name, or a bound that is not a
 * string, is refused with `InvalidKey` (9004) before anything is read.
 *
 * @since 0.2.0
 */
export interface Selector extends StoreOptions {
  readonly prefix?: string | undefined
  readonly start?: string | undefined
  readonly end?: string | undefined
  readonly reverse?: boolean | undefined
  readonly limit?: number | undefined
}

/**
 * The options of `page`: a selector whose `limit` is the page size (default 100, at most 1000), and the `cursor` of
 * the previous page (none for the first page).
 *
 * @since 0.2.0
 */
export interface PageOptions extends Selector {
  readonly cursor?: string | undefined
}

/**
 * One page of entries, and the cursor that reads the next page: `null` when this page is the last one.
 *
 * @since 0.2.0
 */
export interface Page<A = Json> {
  readonly entries: ReadonlyArray<Entry<A>>
  readonly cursor: string | null
}

/**
 * A stored entry with its metadata, as `getEntry` reads it: when the key was first created (kept across
 * overwrites, until it is removed or expires) and last written, and when it expires (`null`: never), in
 * milliseconds since the epoch; and the `version` of its last write: an opaque string, the same for every entry one
 * call wrote, and greater (as a plain string) for every later write to the database, whichever process made it.
 *
 * @since 0.2.0
 */
export interface StoredEntry<A = Json> extends Entry<A> {
  readonly createdAt: number
  readonly updatedAt: number
  readonly version: string
  /** @since 0.4.0 */
  readonly expiresAt: number | null
}

/**
 * The options of `list`: `metadata: true` gives each entry with its metadata ({@link StoredEntry}); `json: true`
 * gives each value as its JSON text, exactly as stored and not parsed (a binary value stays a `Uint8Array`): what
 * a program that passes values on as JSON (an export, a server) would otherwise parse only to write again. Not
 * parsed means not checked: text that a program other than this library wrote into the database is given as it is
 * (a read that parses it fails with 9006 instead).
 *
 * @since 0.5.0
 */
export interface ListOptions {
  readonly metadata?: boolean | undefined
  readonly json?: boolean | undefined
}

/**
 * A value as `list` gives it with `{ json: true }`: its JSON text, or a binary value's bytes.
 *
 * @since 0.5.0
 */
export type JsonText = string | Uint8Array

/**
 * A store as `stores` lists it: its name, how many entries it holds, and their {@link StorageService.size}.
 *
 * @since 0.5.0
 */
export interface StoreSummary {
  readonly store: string
  readonly count: number
  readonly size: number
}

/**
 * Which changes a watch selects: those of one store (`"default"` when absent), of one `key`, of a list of `keys`, or
 * of the keys starting with `prefix` (at most one of the three; none: every key of the store). A `clear` of the
 * store is selected by every selector of that store.
 *
 * @since 0.3.0
 */
export interface WatchSelector extends StoreOptions {
  readonly key?: string | undefined
  readonly keys?: Iterable<string> | undefined
  readonly prefix?: string | undefined
}

/**
 * Where a watch starts: with the current entries (`initial: true`), after a version (`since`: every change made
 * after it, replayed in commit order), or (neither) with the changes committed from now on.
 *
 * @since 0.3.0
 */
export interface WatchOptions {
  readonly initial?: boolean | undefined
  readonly since?: string | undefined
}

/**
 * A change, as a watch gives it: a key set (with its new value), a key removed (`expired: true` when it was removed
 * because it had expired), or a store cleared (one change for all the keys it removed). `version` is the version of the write that made it: every change of one write call, atomic
 * commit or transaction has the same one, and later writes have greater ones. `last` marks the last change of its
 * write that the watch selects: a consumer that saves `version` when `last` is true and resumes with
 * `{ since: version }` never misses or repeats a change, even if it stopped in the middle of a write's changes.
 * With `initial: true`, a watch first gives the current entries, in key order, as `set` changes marked `initial`,
 * all with the version of the snapshot they were read from (the last of them marked `last`, so it is the version to
 * resume from); `getEntry` gives an entry's own version.
 *
 * @since 0.3.0
 */
export type Change<A = Json> =
  | {
      readonly type: "set"
      readonly store: string
      readonly key: string
      readonly value: A
      readonly version: string
      readonly last: boolean
      readonly initial?: boolean
    }
  | {
      readonly type: "remove"
      readonly store: string
      readonly key: string
      readonly version: string
      readonly last: boolean
      /** Present (and `true`) when the entry was removed because it had expired. */
      readonly expired?: true
    }
  | { readonly type: "clear"; readonly store: string; readonly version: string; readonly last: boolean }

/**
 * How a watch can fail: as a read of values, or with `HistoryTrimmed` (9001) when it resumes from a version whose
 * later changes are no longer all kept.
 *
 * @since 0.3.0
 */
export type WatchError = ReadValueError | HistoryTrimmedError

/**
 * The entries of `setMany`: a plain record, or an iterable (an array, a `Map`) of `[key, value]` pairs.
 *
 * @since 0.1.0
 */
export type SetManyEntries = Readonly<Record<string, unknown>> | Iterable<readonly [string, unknown]>

/**
 * How a read can fail: a refused key or store name, SQLite failing to read, or a database that is unusable;
 * `Generic` (9000) only for what nothing else names (an object of the caller's that throws when it is read).
 *
 * @since 0.1.0
 */
export type ReadError = InvalidKeyError | ReadFailedError | DatabaseError | GenericError

/**
 * How a read of values can fail: as any read, or because a stored value is not valid JSON.
 *
 * @since 0.1.0
 */
export type ReadValueError = ReadError | SerializationError

/**
 * How a removal can fail: a refused key or store name, SQLite failing to write, or an unusable database;
 * `Generic` (9000) as for reads.
 *
 * @since 0.1.0
 */
export type RemoveError = InvalidKeyError | WriteFailedError | DatabaseError | GenericError

/**
 * How a write of values can fail: as a removal, or because a value cannot be stored as JSON exactly.
 *
 * @since 0.1.0
 */
export type WriteError = RemoveError | SerializationError

/**
 * The options of `update`.
 *
 * @since 0.1.0
 */
export interface UpdateOptions extends SetOptions {
  /** The value the update function receives when the key is absent. Without it, an absent key is `NotFound`. */
  readonly default?: unknown
}

/**
 * How an update can fail: as a read or a write, with `NotFound` (9001) for an absent key without a default, or
 * `Generic` (9000) when the update function throws.
 *
 * @since 0.1.0
 */
export type UpdateError = WriteError | ReadValueError | NotFoundError

/**
 * The result of an atomic commit: `ok`, with the version every entry it wrote now has, or not `ok` when one of its
 * checks failed, and then nothing was written.
 *
 * @since 0.2.0
 */
export type CommitResult = { readonly ok: true; readonly version: string } | { readonly ok: false }

/**
 * An atomic commit being built: checks and writes on keys of any stores, committed together, or not at all, by
 * `commit()`. Each method returns a new builder (the one it is called on is unchanged), so a builder can be kept and
 * committed again. A value is serialized when `set` is called; a refused key, store name, version or value fails
 * the commit with its coded error before anything is written.
 *
 * @since 0.2.0
 */
export interface Atomic<Commit> {
  /**
   * The commit goes through only if the key's version is `version` when it commits (`null`: only if the key is
   * absent). A version is a string that `getEntry` or a commit returned.
   */
  readonly check: (key: string, version: string | null, options?: StoreOptions) => Atomic<Commit>
  /** Stores a value (inserting or overwriting) when the commit goes through; `expireIn` as for `set`. */
  readonly set: (key: string, value: unknown, options?: SetOptions) => Atomic<Commit>
  /** Removes a key when the commit goes through. */
  readonly remove: (key: string, options?: StoreOptions) => Atomic<Commit>
  /** Commits: in one transaction, every check, then (when they all pass) every write, in the order given. */
  readonly commit: () => Commit
}

/**
 * The operations of the `Storage` service. Every operation works on exactly one store and requires nothing.
 * Keys are non-empty, well-formed strings of at most 2048 UTF-8 bytes; store names the same with at most 256.
 * `keys`, `entries` and `getMany` list in ascending Unicode code point order of the key.
 *
 * @since 0.1.0
 */
export interface StorageService {
  /** The value of a key, or `None` when the key is absent. */
  readonly get: (key: string, options?: StoreOptions) => Effect.Effect<Option.Option<Json>, ReadValueError>
  /**
   * Stores a value, inserting or overwriting. The value must be JSON that survives a round trip exactly (`-0`
   * included), or bytes (a `Uint8Array`, as a whole value); anything else (`undefined`, `NaN`, a `Date`, a cycle,
   * bytes inside a JSON value, …) fails with `SerializationError` and writes nothing. With `expireIn`, the entry
   * expires that long after the write (see {@link SetOptions}).
   */
  readonly set: (key: string, value: unknown, options?: SetOptions) => Effect.Effect<void, WriteError>
  /** Removes a key; `true` when it existed. */
  readonly remove: (key: string, options?: StoreOptions) => Effect.Effect<boolean, RemoveError>
  /** Removes every key of the store, and of no other store. */
  readonly clear: (options?: StoreOptions) => Effect.Effect<void, RemoveError>
  /** The keys of the store (or of the selected range), in ascending code point order. */
  readonly keys: (selector?: Selector) => Effect.Effect<ReadonlyArray<string>, ReadError>
  /** Whether the key exists. */
  readonly has: (key: string, options?: StoreOptions) => Effect.Effect<boolean, ReadError>
  /** The keys and values of the store (or of the selected range), in ascending code point order of the key. */
  readonly entries: (selector?: Selector) => Effect.Effect<ReadonlyArray<Entry>, ReadValueError>
  /**
   * The entries of the selected range as a stream, read in bounded chunks (each one query; nothing is held open
   * between chunks), so memory stays bounded however large the store, and interrupting the stream releases
   * everything at once. A key that exists, unchanged, for the whole stream is seen exactly once, in order; a key
   * written or removed while the stream runs may or may not be seen, and is never seen twice. With
   * `{ metadata: true }`, each entry comes with its metadata, as `getEntry` gives it; with `{ json: true }`, each
   * value as its stored JSON text (since 0.5.0).
   */
  readonly list: {
    (
      selector: Selector | undefined,
      options: ListOptions & { readonly metadata: true; readonly json: true }
    ): Stream.Stream<StoredEntry<JsonText>, ReadError>
    (
      selector: Selector | undefined,
      options: ListOptions & { readonly json: true }
    ): Stream.Stream<Entry<JsonText>, ReadError>
    (
      selector: Selector | undefined,
      options: ListOptions & { readonly metadata: true }
    ): Stream.Stream<StoredEntry, ReadValueError>
    (selector?: Selector, options?: ListOptions): Stream.Stream<Entry, ReadValueError>
  }
  /**
   * One page of the selected range, with the cursor of the next page (`null` after the last page). A cursor is an
   * opaque string that outlives the process; one that is malformed, altered, or made for another selector is
   * refused with `InvalidKey` (9004).
   */
  readonly page: (options?: PageOptions) => Effect.Effect<Page, ReadValueError>
  /** How many keys the selector selects (at most its `limit`). */
  readonly count: (selector?: Selector) => Effect.Effect<number, ReadError>
  /** The value of a key with its metadata, or `None` when the key is absent. */
  readonly getEntry: (key: string, options?: StoreOptions) => Effect.Effect<Option.Option<StoredEntry>, ReadValueError>
  /** The values of the keys that exist, in ascending code point order of the key. */
  readonly getMany: (
    keys: Iterable<string>,
    options?: StoreOptions
  ) => Effect.Effect<ReadonlyMap<string, Json>, ReadValueError>
  /**
   * Stores many values at once: all of them, or (when any key or value is refused, or SQLite fails) none. With
   * `expireIn`, every entry written expires that long after the write. A large batch works in slices of a few
   * milliseconds and lets the event loop turn between them (other fibers' operations wait for it; it stays one
   * transaction); it reads and serializes its entries in slices too, before writing any, so do not change them
   * until it completes. So do `getMany`, `deleteMany`, `entries`, `keys` and `clear` of many entries.
   */
  readonly setMany: (entries: SetManyEntries, options?: SetOptions) => Effect.Effect<void, WriteError>
  /** Removes many keys at once, all or none; returns how many existed. */
  readonly deleteMany: (keys: Iterable<string>, options?: StoreOptions) => Effect.Effect<number, RemoveError>
  /** Total size in bytes of the stored values of the store, as UTF-8 JSON text. */
  readonly size: (options?: StoreOptions) => Effect.Effect<number, ReadError>
  /**
   * Every store that holds an entry, in code point order of their names, with its entry count and size: a store
   * exists while it holds an entry.
   *
   * @since 0.5.0
   */
  readonly stores: () => Effect.Effect<ReadonlyArray<StoreSummary>, ReadError>
  /**
   * Atomically replaces the value of a key with `f(current)` and returns the new value: the read and the write
   * happen in one transaction that holds the write lock from its start, so concurrent updates from other fibers
   * or processes are never lost. An absent (or expired) key fails with `NotFound` (9001) unless `options.default` is
   * given; when `f` throws, or returns what JSON cannot carry, nothing is written. The entry keeps its expiry (as
   * Redis's `INCR` keeps a key's TTL) unless `expireIn` gives a new one; a key created by the update never expires
   * unless `expireIn` is given.
   */
  readonly update: (
    key: string,
    f: (current: Json) => unknown,
    options?: UpdateOptions
  ) => Effect.Effect<Json, UpdateError>
  /**
   * Begins an atomic commit: `.check(key, version | null)`, `.set(key, value)` and `.remove(key)` on any stores,
   * then `.commit()`, which gives `{ ok: true, version }`, or `{ ok: false }` (nothing written) when a check failed.
   */
  readonly atomic: () => Atomic<Effect.Effect<CommitResult, WriteError>>
  /**
   * Runs `f` in one transaction across all stores, which holds the write lock from its start: `tx` has the
   * operations of the service, bound to the transaction. It commits when the effect succeeds and rolls back when it
   * fails, dies or is interrupted. Other fibers' operations on this layer wait until it ends; other processes'
   * writers wait up to their busy timeout. Every write inside takes the transaction's one version. A transaction
   * inside a transaction (`tx.transaction`, or this service's own inside `f`) is a savepoint: when its effect fails,
   * its writes are undone and the failure goes on to the enclosing transaction, which may catch it and go on. Using
   * `tx` after the transaction ended fails with `GenericError` (9000).
   */
  readonly transaction: <A, E, R>(
    f: (tx: StorageService) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | WriteError, R>
  /**
   * The changes of the selected keys as a stream: with `{ initial: true }` the current entries first, then every
   * change committed after them; with `{ since: version }` every change after that version first (in commit order),
   * then the live ones; without options the changes committed from now on. No change is missed, repeated or
   * reordered between those parts. Changes made by other connections and processes arrive too (their head is polled
   * every 10 ms while something watches; this connection's own writes wake watchers at once). A `since` older than
   * the kept history fails with `HistoryTrimmed` (9001), never skipping changes; list the entries again
   * (`initial: true`) instead. A transaction's `tx.watch` fails with `GenericError` (9000): its changes only exist once
   * it commits.
   */
  readonly watch: (selector?: WatchSelector, options?: WatchOptions) => Stream.Stream<Change, WatchError>
}

/**
 * The `Storage` service tag. Provide it with `layerSqlite`, `layerSql` or `layerMemory`.
 *
 * @since 0.1.0
 */
export class Storage extends Context.Tag("runtime-storage/Storage")<Storage, StorageService>() {}

const invalidStored = (store: string, key: string, invalid: InvalidStoredJson): SerializationError =>
  new SerializationError({
    key,
    store,
    path: "$",
    reason: "is stored as text that is not valid JSON (it was not written by runtime-storage)",
    cause: invalid.cause
  })

// The operations are written once, as programs: plain synchronous validation, serialization and decoding around
// the backend primitives they yield. A refusal is thrown (always one of the library's errors); a sync backend
// runs a program in one call, an effectful one step by step.

/** A request for one backend primitive, or (`now`) for the current time from the runner's clock. */
class Call {
  constructor(
    readonly name: keyof Primitives | "now" | "expiring" | "pause",
    readonly args: ReadonlyArray<unknown>
  ) {}
}

type Program<A> = Generator<Call, A, unknown>

function* call<K extends keyof Primitives>(
  name: K,
  ...args: Parameters<Primitives[K]>
): Generator<Call, ReturnType<Primitives[K]>, unknown> {
  return (yield new Call(name, args)) as ReturnType<Primitives[K]>
}

const NOW = new Call("now", [])
const PAUSE = new Call("pause", [])

/**
 * Lets the event loop turn when the library has held it for a slice (see `slices.ts`); the rest of the program runs
 * after, on the same connection. Loops over many values call it every {@link BREATH} items.
 */
function* breathe(): Generator<Call, void, unknown> {
  if (pauseDue()) yield PAUSE
}

/** How many values a loop handles between two checks of its slice: a few dozen microseconds of work. */
const BREATH = 64

/**
 * Tells the runner that the write just made stores entries expiring at `at` (`null`: none), so that it wakes the
 * backend's sweeper when that is before its next run.
 */
function* expiring(at: number | null): Generator<Call, void, unknown> {
  if (at !== null) yield new Call("expiring", [at])
}

/**
 * The current time in ms since the epoch, from the clock of whoever runs the program: Effect's `Clock` in the Effect
 * API (so `TestClock` drives expiry), the system's in the Promise API. A program asks once, after its checks, and
 * gives the same time to every primitive it calls.
 */
function* time(): Generator<Call, number, unknown> {
  return (yield NOW) as number
}

/**
 * Where a runner takes the time from: Effect's `Clock` is one.
 *
 * @internal
 */
export interface TimeSource {
  readonly unsafeCurrentTimeMillis: () => number
}

/**
 * The system's clock, as the Promise API runs on it.
 *
 * @internal
 */
export const systemClock: TimeSource = { unsafeCurrentTimeMillis: () => Date.now() }

const storeOf = (options: unknown): string => {
  const store = resolveStore(options)
  if (typeof store !== "string") throw store
  return store
}

const requireKey = (key: unknown): string => {
  const invalid = checkKey(key)
  if (invalid !== undefined) throw invalid
  return key as string
}

/** The distinct keys of a list, each checked (throwing the first problem); a long list lets the loop turn. */
function* requireKeys(keys: unknown): Generator<Call, ReadonlyArray<string>, unknown> {
  const unique = new Set<string>()
  let walked = 0
  for (const key of keyItems(keys)) {
    unique.add(key)
    if (++walked % BREATH === 0) yield* breathe()
  }
  return Array.from(unique)
}

const encode = (store: string, key: string, value: unknown): Stored | SerializationError => {
  // Bytes are stored as they are, copied now: changing the caller's array later changes nothing stored.
  if (value instanceof Uint8Array) return Buffer.from(value)
  const text = serialize(value)
  return typeof text === "string"
    ? text
    : new SerializationError({ key, store, path: text.path, reason: text.reason, cause: text.cause })
}

/**
 * The value of a stored row; throws `SerializationError` when its text is not JSON.
 *
 * @internal
 */
export const decode = (store: string, key: string, text: Stored): Json => {
  if (typeof text !== "string") return new Uint8Array(text)
  const value = parse(text)
  if (value instanceof InvalidStoredJson) throw invalidStored(store, key, value)
  return value as Json
}

/**
 * The entry of a row a list read: with its metadata when the row has it; its value parsed, or (`json`) its JSON
 * text as stored (bytes copied, as `decode` copies them).
 *
 * @internal
 */
export const entryOf = (store: string, row: Row | ListedRow, json: boolean): Entry<Json | JsonText> | StoredEntry => {
  const key = row[0]
  const text = row[1]
  const value = json ? (typeof text === "string" ? text : new Uint8Array(text)) : decode(store, key, text)
  if (row.length === 2) return { key, value }
  return { key, value, createdAt: row[2], updatedAt: row[3], version: formatVersion(row[4]), expiresAt: row[5] }
}

function* decodeRows(store: string, rows: ReadonlyArray<Row | ListedRow>): Generator<Call, Array<Entry>, unknown> {
  const entries: Array<Entry> = new Array(rows.length)
  for (let index = 0; index < rows.length; index++) {
    entries[index] = entryOf(store, rows[index]!, false) as Entry
    if (index % BREATH === BREATH - 1) yield* breathe()
  }
  return entries
}

const programs = {
  *get(key: string, options?: StoreOptions): Program<Option.Option<Json>> {
    const store = storeOf(options)
    requireKey(key)
    const text = yield* call("get", store, key, yield* time())
    return text === undefined ? Option.none() : Option.some(decode(store, key, text))
  },
  *set(key: string, value: unknown, options?: SetOptions): Program<void> {
    const store = storeOf(options)
    const expireIn = checkExpireIn(options, WRITE_OPTIONS)
    const text = encode(store, requireKey(key), value)
    if (isStorageError(text)) throw text
    const now = yield* time()
    const expiresAt = expiresAtOf(now, expireIn)
    yield* call("setMany", store, [[key, text]], now, expiresAt)
    yield* expiring(expiresAt)
  },
  *remove(key: string, options?: StoreOptions): Program<boolean> {
    const store = storeOf(options)
    requireKey(key)
    return (yield* call("deleteMany", store, [key], yield* time())) > 0
  },
  *clear(options?: StoreOptions): Program<void> {
    const store = storeOf(options)
    yield* call("clear", store, yield* time())
  },
  *keys(selector?: Selector): Program<ReadonlyArray<string>> {
    const { store, range, empty } = select(selector)
    return empty ? [] : yield* call("scanKeys", store, range, yield* time())
  },
  *has(key: string, options?: StoreOptions): Program<boolean> {
    const store = storeOf(options)
    requireKey(key)
    return yield* call("has", store, key, yield* time())
  },
  *entries(selector?: Selector): Program<ReadonlyArray<Entry>> {
    const { store, range, empty } = select(selector)
    if (empty) return []
    return yield* decodeRows(store, yield* call("scan", store, range, Number.POSITIVE_INFINITY, yield* time()))
  },
  *page(options?: PageOptions): Program<Page> {
    const { selection, range, size } = selectPage(options)
    if (selection.empty) return { entries: [], cursor: null }
    const rows = yield* call("scan", selection.store, range, Number.POSITIVE_INFINITY, yield* time())
    // One row more than the page holds was read: it tells whether there is a next page.
    const entries = yield* decodeRows(selection.store, rows.length > size ? rows.slice(0, size) : rows)
    return { entries, cursor: rows.length > size ? encodeCursor(selection, entries[size - 1]!.key) : null }
  },
  *count(selector?: Selector): Program<number> {
    const { store, range, empty } = select(selector)
    return empty ? 0 : yield* call("count", store, range, yield* time())
  },
  *getEntry(key: string, options?: StoreOptions): Program<Option.Option<StoredEntry>> {
    const store = storeOf(options)
    requireKey(key)
    const row = yield* call("getEntry", store, key, yield* time())
    if (row === undefined) return Option.none()
    const [text, createdAt, updatedAt, version, expiresAt] = row
    return Option.some({
      key,
      value: decode(store, key, text),
      createdAt,
      updatedAt,
      version: formatVersion(version),
      expiresAt
    })
  },
  *getMany(keys: Iterable<string>, options?: StoreOptions): Program<ReadonlyMap<string, Json>> {
    const checked = yield* requireKeys(keys)
    const store = storeOf(options)
    if (checked.length === 0) return new Map()
    const found = yield* call("getMany", store, checked, yield* time())
    const rows = [...found].sort((a, b) => compareCodePoints(a[0], b[0]))
    const values = new Map<string, Json>()
    for (let index = 0; index < rows.length; index++) {
      const [key, text] = rows[index]!
      values.set(key, decode(store, key, text))
      if (index % BREATH === BREATH - 1) yield* breathe()
    }
    return values
  },
  *setMany(entries: SetManyEntries, options?: SetOptions): Program<void> {
    const store = storeOf(options)
    const expireIn = checkExpireIn(options, WRITE_OPTIONS)
    // Every value is checked, even one that a later pair for the same key replaces: a refused value anywhere
    // refuses the batch. The last value of a repeated key is the one written. A large batch lets the event loop
    // turn while it is read and serialized, before anything is written.
    const rows: Array<Row> = []
    const positions = new Map<string, number>()
    let walked = 0
    for (const [key, value] of entryPairs(entries)) {
      const text = encode(store, key, value)
      if (isStorageError(text)) throw text
      const position = positions.get(key)
      if (position === undefined) {
        positions.set(key, rows.length)
        rows.push([key, text])
      } else {
        rows[position] = [key, text]
      }
      if (++walked % BREATH === 0) yield* breathe()
    }
    if (rows.length === 0) return
    const now = yield* time()
    const expiresAt = expiresAtOf(now, expireIn)
    yield* call("setMany", store, rows, now, expiresAt)
    yield* expiring(expiresAt)
  },
  *deleteMany(keys: Iterable<string>, options?: StoreOptions): Program<number> {
    const checked = yield* requireKeys(keys)
    const store = storeOf(options)
    return checked.length === 0 ? 0 : yield* call("deleteMany", store, checked, yield* time())
  },
  *size(options?: StoreOptions): Program<number> {
    const store = storeOf(options)
    return yield* call("size", store, yield* time())
  },
  *stores(): Program<ReadonlyArray<StoreSummary>> {
    const rows = yield* call("stores", yield* time())
    return rows.map(([store, count, size]) => ({ store, count, size }))
  },
  *update(key: string, f: (current: Json) => unknown, options?: UpdateOptions): Program<Json> {
    const store = storeOf(options)
    requireKey(key)
    const expireIn = checkExpireIn(options, UPDATE_OPTIONS)
    if (typeof f !== "function") {
      throw new InvalidKeyError({ reason: `update needs a function of the current value, got ${typeof f}` })
    }
    const hasDefault = typeof options === "object" && options !== null && Object.hasOwn(options, "default")
    const next = (text: Stored | undefined): Stored | StorageError => {
      let current: unknown
      if (text === undefined) {
        if (!hasDefault) return new NotFoundError({ key, store })
        current = options?.default
      } else if (typeof text !== "string") {
        current = new Uint8Array(text)
      } else {
        current = parse(text)
        if (current instanceof InvalidStoredJson) return invalidStored(store, key, current)
      }
      let value: unknown
      try {
        value = f(current as Json)
      } catch (cause) {
        return new GenericError({ reason: `The update function of key ${quote(key)} threw`, cause })
      }
      return encode(store, key, value)
    }
    const now = yield* time()
    // Without expireIn, the entry keeps its own expiry (`undefined`).
    const expiresAt = expiresAtOf(now, expireIn) ?? undefined
    const written = yield* call("update", store, key, next, now, expiresAt)
    yield* expiring(expiresAt ?? null)
    return decode(store, key, written)
  }
}

const UPDATE_OPTIONS = [...WRITE_OPTIONS, "default"]

/**
 * Where a list stands: what is left of its range (its limit: how many entries it may still give) and how many rows
 * its next chunk reads.
 *
 * @internal
 */
export interface ListState {
  readonly store: string
  readonly range: Range
  readonly chunk: number
  /** Whether its rows carry their metadata. */
  readonly metadata: boolean
  /** Whether its values are given as stored JSON text. */
  readonly json: boolean
}

/**
 * The first chunk of a list reads few rows, so a caller who stops early reads little; chunks then grow to this.
 * Small chunks keep what a list holds between two queries small: it is live through every garbage collection
 * while the caller walks it, and copying it in each young-generation collection cost more (1.7x raw iterate() at
 * 1,000,000 entries, chunks of 1,024 decoded entries) than the extra queries do.
 */
const FIRST_CHUNK = 32
const MAX_CHUNK = 256
/** What a chunk of a list aims to weigh at most (see `weigh`): large values are read a few at a time. */
const CHUNK_BYTES = 256 * 1024

/**
 * Checks the selector of a list and gives its first state, or `undefined` when it selects nothing. Throws the
 * library's error when the selector is refused.
 *
 * @internal
 */
export const startList = (selector: unknown, options?: unknown): ListState | undefined => {
  const selection: Selection = select(selector)
  const { metadata, json } = checkListOptions(options)
  return selection.empty
    ? undefined
    : { store: selection.store, range: selection.range, chunk: FIRST_CHUNK, metadata, json }
}

/**
 * One operation of an atomic commit as its builder recorded it: arguments unchecked (the commit checks them), the
 * value of a `set` already serialized (or the error that refused it).
 *
 * @internal
 */
export type AtomicOperation =
  | { readonly _tag: "check"; readonly key: unknown; readonly version: unknown; readonly options: unknown }
  | {
      readonly _tag: "set"
      readonly key: unknown
      /** The serialized value and the milliseconds it expires after the commit, or the error that refused them. */
      readonly text: readonly [text: Stored, expireIn: number | undefined] | StorageError
      readonly options: unknown
    }
  | { readonly _tag: "remove"; readonly key: unknown; readonly options: unknown }

/**
 * Serializes the value of an atomic `set` and checks its options when it is called, so that what it will write is
 * fixed then.
 */
const encodeForCommit = (
  key: unknown,
  value: unknown,
  options: unknown
): readonly [Stored, number | undefined] | StorageError => {
  try {
    const store = storeOf(options)
    const expireIn = checkExpireIn(options, WRITE_OPTIONS)
    const text = encode(store, requireKey(key), value)
    return isStorageError(text) ? text : [text, expireIn]
  } catch (thrown) {
    return asStorageError(thrown)
  }
}

/**
 * A builder of atomic commits over `commit`, which runs the recorded operations (the Effect API and the Promise
 * API give their own).
 *
 * @internal
 */
export const makeAtomic = <Commit>(
  commit: (operations: ReadonlyArray<AtomicOperation>) => Commit,
  operations: ReadonlyArray<AtomicOperation> = []
): Atomic<Commit> => ({
  check: (key, version, options) => makeAtomic(commit, [...operations, { _tag: "check", key, version, options }]),
  set: (key, value, options) =>
    makeAtomic(commit, [...operations, { _tag: "set", key, text: encodeForCommit(key, value, options), options }]),
  remove: (key, options) => makeAtomic(commit, [...operations, { _tag: "remove", key, options }]),
  commit: () => commit(operations)
})

/**
 * Where a watch stands: what it selects, the seq of the last change record it has read, the version its changes
 * must be newer than (the one it resumed after), and the last selected record read, held back until it is known
 * whether it is the last selected change of its write.
 *
 * @internal
 */
export interface WatchState {
  readonly selection: WatchSelection
  readonly cursor: number
  readonly since: number
  readonly held: ChangeRow | undefined
}

/**
 * One read of a watch: the selected changes it found, where the watch stands after it, and whether more records are
 * already waiting (else the watch waits for the log to move).
 *
 * @internal
 */
export interface WatchStep {
  readonly changes: ReadonlyArray<Change>
  readonly state: WatchState
  readonly more: boolean
}

/** Change records one read of a watch takes at most. */
const WATCH_CHUNK = 256

const changeOf = (row: ChangeRow, last: boolean): Change => {
  const [, version, kind, store, key, text] = row
  const at = formatVersion(version)
  if (kind === Kind.Set) return { type: "set", store, key: key!, value: decode(store, key!, text!), version: at, last }
  if (kind === Kind.Remove) return { type: "remove", store, key: key!, version: at, last }
  if (kind === Kind.Expire) return { type: "remove", store, key: key!, version: at, last, expired: true }
  return { type: "clear", store, version: at, last }
}

/** The programs behind `atomic().commit()`, the chunks of `list` and the reads of `watch`: no operations of their own. */
const internalPrograms = {
  *commitAtomic(operations: ReadonlyArray<AtomicOperation>): Program<CommitResult> {
    const checks: Array<Check> = []
    const sets: Array<readonly [store: string, key: string, text: Stored | undefined, expireIn: number | undefined]> =
      []
    for (const operation of operations) {
      const store = storeOf(operation.options)
      const key = requireKey(operation.key)
      if (operation._tag === "check") checks.push([store, key, parseVersion(operation.version)])
      else if (operation._tag === "remove") sets.push([store, key, undefined, undefined])
      else if (isStorageError(operation.text)) throw operation.text
      else sets.push([store, key, operation.text[0], operation.text[1]])
    }
    const now = yield* time()
    const writes = sets.map(
      ([store, key, text, expireIn]): Write => [
        store,
        key,
        text,
        text === undefined ? null : expiresAtOf(now, expireIn)
      ]
    )
    const version = yield* call("commit", checks, writes, now)
    if (version !== undefined) {
      for (const [, , , expiresAt] of writes) yield* expiring(expiresAt)
    }
    return version === undefined ? { ok: false } : { ok: true, version: formatVersion(version) }
  },
  /**
   * Starts a watch: the current entries when it asked for them (as of one snapshot, whose version they carry), and
   * where it stands.
   */
  *watchStart(request: WatchRequest): Program<readonly [ReadonlyArray<Change>, WatchState]> {
    const { selection } = request
    if (request.initial) {
      const { rows, head } = yield* call("snapshot", selection.store, selection.ranges, yield* time())
      const version = formatVersion(head)
      const changes = rows.map(
        ([key, text], index): Change => ({
          type: "set",
          store: selection.store,
          key,
          value: decode(selection.store, key, text),
          version,
          last: index === rows.length - 1,
          initial: true
        })
      )
      return [changes, { selection, cursor: head, since: head, held: undefined }]
    }
    const head = yield* call("head")
    if (request.since === undefined) return [[], { selection, cursor: head, since: head, held: undefined }]
    if (request.since > head) {
      throw new InvalidKeyError({
        reason: `The version ${formatVersion(request.since)} to watch since is newer than every write of this database (the last is ${formatVersion(head)}): it was not made by this database`
      })
    }
    return [[], { selection, cursor: request.since, since: request.since, held: undefined }]
  },
  /**
   * One read of a watch: the next change records after its cursor, at most a bounded number. The last selected
   * change of each write is marked `last`: a selected change is held back until a record of another write shows
   * that its write ended (or the read reached the head of the log, where every write is whole).
   */
  /** One sweep of expired entries: a bounded batch deleted, and when the next one expires. */
  *sweep(): Program<Swept> {
    return yield* call("expire", yield* time(), SWEEP_BATCH)
  },
  *watchChunk(state: WatchState): Program<WatchStep> {
    const { selection, cursor, since } = state
    const batch = yield* call("changes", cursor, since, selection.store, WATCH_CHUNK)
    const [originSeq, originVersion] = batch.origin
    // Records after the cursor were trimmed, and some of them were of writes the watch has not seen.
    if (cursor < originSeq && originVersion > since) {
      throw new HistoryTrimmedError({ since: formatVersion(since), oldest: formatVersion(originVersion) })
    }
    const changes: Array<Change> = []
    let held = state.held
    for (const row of batch.rows) {
      if (held !== undefined && row[1] !== held[1]) {
        changes.push(changeOf(held, true))
        held = undefined
      }
      if (!matches(selection, row[3], row[4] ?? undefined)) continue
      if (held !== undefined) changes.push(changeOf(held, false))
      held = row
    }
    const more = batch.rows.length === WATCH_CHUNK
    if (!more && held !== undefined) {
      changes.push(changeOf(held, true))
      held = undefined
    }
    return { changes, state: { selection, cursor: more ? batch.rows.at(-1)![0] : batch.head, since, held }, more }
  },
  /**
   * One chunk of a list: one bounded query, with the state of the next chunk (`undefined` at the end). The rows come
   * undecoded: a caller decodes each as it reaches it (`decode`), so a parsed value lives only as long as the caller
   * keeps it.
   */
  *listChunk(state: ListState): Program<readonly [ReadonlyArray<Row | ListedRow>, ListState | undefined]> {
    const { store, range, chunk, metadata, json } = state
    const want = range.limit === undefined ? chunk : Math.min(chunk, range.limit)
    const bounded = { ...range, limit: want }
    const rows: ReadonlyArray<Row | ListedRow> = metadata
      ? yield* call("scanMeta", store, bounded, CHUNK_BYTES, yield* time())
      : yield* call("scan", store, bounded, CHUNK_BYTES, yield* time())
    let bytes = 0
    for (const row of rows) bytes += weigh(row)
    // Fewer rows than asked for, without reaching the byte budget, means the range has no more.
    if (rows.length === 0 || (rows.length < want && bytes < CHUNK_BYTES) || rows.length === range.limit) {
      return [rows, undefined]
    }
    const rest = after(range, rows[rows.length - 1]![0])
    return [
      rows,
      {
        store,
        metadata,
        json,
        range: { ...rest, limit: range.limit === undefined ? undefined : range.limit - rows.length },
        // Light chunks grow; heavy ones shrink toward the byte budget (an effectful backend reads whole limits).
        chunk:
          bytes >= CHUNK_BYTES
            ? Math.max(1, Math.floor((rows.length * CHUNK_BYTES) / bytes))
            : Math.min(MAX_CHUNK, chunk * 4)
      }
    ]
  }
}

/**
 * Runs the rest of a program on synchronous primitives, from its first step: its result, or it throws. The time
 * comes from `clock`; an expiring write rings `alarm`. When the program pauses, or calls a primitive large enough
 * to be cut into pieces (see `slices.ts`), what is left is given back as `Suspended` once its first slice has run:
 * whoever runs it lets the event loop turn between its steps, holding the connection for it meanwhile.
 */
const finishSync = <A>(
  primitives: SyncPrimitives,
  program: Program<A>,
  first: IteratorResult<Call, A>,
  clock: TimeSource,
  alarm: SweepAlarm | undefined
): A | Suspended<A> => {
  let step = first
  while (!step.done) {
    const { name, args } = step.value
    if (name === "expiring") {
      alarm?.expiring(args[0] as number)
      step = program.next(undefined)
      continue
    }
    if (name === "now") {
      step = program.next(clock.unsafeCurrentTimeMillis())
      continue
    }
    const split = name === "pause" ? undefined : sliced(primitives, name, args)
    if (name === "pause" || split !== undefined) {
      return new Suspended(runSliced(primitives, program, step, clock, alarm, split), asStorageError).step()
    }
    step = program.next((primitives[name] as (...args: ReadonlyArray<unknown>) => unknown)(...args))
  }
  return step.value
}

/** {@link finishSync} from a pause or a large primitive on: its generator yields wherever it lets the loop turn. */
function* runSliced<A>(
  primitives: SyncPrimitives,
  program: Program<A>,
  from: IteratorResult<Call, A>,
  clock: TimeSource,
  alarm: SweepAlarm | undefined,
  split: Generator<undefined, unknown, undefined> | undefined
): Generator<undefined, A, undefined> {
  let step = from
  if (split !== undefined) step = program.next(yield* split)
  while (!step.done) {
    const { name, args } = step.value
    let input: unknown
    if (name === "pause") {
      yield
    } else if (name === "expiring") {
      alarm?.expiring(args[0] as number)
    } else if (name === "now") {
      input = clock.unsafeCurrentTimeMillis()
    } else {
      const pieces = sliced(primitives, name, args)
      input =
        pieces === undefined
          ? (primitives[name] as (...args: ReadonlyArray<unknown>) => unknown)(...args)
          : yield* pieces
    }
    step = program.next(input)
  }
  return step.value
}

/**
 * What a thrown value fails with: the library's errors as they are; anything else (a bug, or something thrown by
 * the caller's own objects that no check caught) as a `Generic` error (9000) carrying it as `cause`, never a
 * defect or a bare error.
 */
const asStorageError = (thrown: unknown): StorageError =>
  isStorageError(thrown)
    ? thrown
    : new GenericError({
        reason: `Unexpected failure in runtime-storage${thrown instanceof Error ? `: ${thrown.message}` : ""}`,
        cause: thrown
      })

/**
 * Runs a program on effectful primitives, one primitive at a time (from its first step when it was already taken);
 * an expiring write rings `alarm`.
 */
const runEffect = <A>(
  primitives: EffectPrimitives,
  alarm: SweepAlarm,
  program: Program<A>,
  first?: IteratorResult<Call, A>
): Effect.Effect<A, StorageError> => {
  const next = (input: unknown): Effect.Effect<A, StorageError> => {
    let step: IteratorResult<Call, A>
    try {
      step = program.next(input)
    } catch (thrown) {
      return Effect.fail(asStorageError(thrown))
    }
    return handle(step)
  }
  const handle = (step: IteratorResult<Call, A>): Effect.Effect<A, StorageError> => {
    if (step.done) return Effect.succeed(step.value)
    const { name, args } = step.value
    if (name === "now") return Effect.flatMap(Clock.currentTimeMillis, next)
    if (name === "pause") return Effect.flatMap(nextTurn, next)
    if (name === "expiring") {
      alarm.expiring(args[0] as number)
      return next(undefined)
    }
    return Effect.flatMap(
      (primitives[name] as (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, StorageError>)(...args),
      next
    )
  }
  return first === undefined ? next(undefined) : handle(first)
}

type Programs = typeof programs & typeof internalPrograms
const operations: Programs = { ...programs, ...internalPrograms }
type Result<K extends keyof Programs> = ReturnType<Programs[K]> extends Program<infer A> ? A : never

/**
 * An operation begun on no connection yet: its arguments are checked and its values serialized (throwing the
 * library's error when they are refused), so what it will do is fixed at the moment it is called (a large batch,
 * which lets the event loop turn while it reads and serializes its entries, before it settles). `resume` runs
 * the rest on a connection's primitives.
 *
 * @internal
 */
export interface Begun<A> {
  /**
   * Runs the rest on a synchronous connection: its result, or (it paused) the rest of it, to run step by step with
   * the connection held for it meanwhile (see `settleSliced`). Throws the library's error.
   */
  readonly resume: (primitives: SyncPrimitives) => A | Suspended<A>
  /** Runs the rest on an effectful backend's connection. */
  readonly resumeEffect: (connection: EffectConnection) => Effect.Effect<A, StorageError>
}

/**
 * What an operation begun by the Promise API runs on when the backend is effectful: its primitives, the alarm of
 * its sweeper and the notifier of its watchers.
 *
 * @internal
 */
export interface EffectConnection {
  readonly primitives: EffectPrimitives
  readonly alarm: SweepAlarm
  readonly feed: Notifier
}

/**
 * Begins an operation: what the Promise API does when it is called, before (or without) waiting for a connection.
 *
 * @internal
 */
export const begin = <K extends keyof Programs>(name: K, ...args: Parameters<Programs[K]>): Begun<Result<K>> => {
  const program = (operations[name] as (...args: Parameters<Programs[K]>) => Program<Result<K>>)(...args)
  let first: IteratorResult<Call, Result<K>>
  try {
    first = program.next()
  } catch (thrown) {
    throw asStorageError(thrown)
  }
  return new BegunProgram(program, first)
}

/** A begun program: its methods live on the prototype, so beginning a call allocates no closures for them. */
class BegunProgram<A> implements Begun<A> {
  constructor(
    private readonly program: Program<A>,
    private readonly first: IteratorResult<Call, A>
  ) {}

  resume(primitives: SyncPrimitives): A | Suspended<A> {
    try {
      return finishSync(primitives, this.program, this.first, systemClock, primitives.alarm)
    } catch (thrown) {
      throw asStorageError(thrown)
    }
  }

  resumeEffect(connection: EffectConnection): Effect.Effect<A, StorageError> {
    return runEffect(connection.primitives, connection.alarm, this.program, this.first)
  }
}

/**
 * Builds the service from a backend's primitives, with the sweeper that deletes its expired entries in the
 * background for as long as the scope lasts. Validation, serialization, decoding, ranges and the order of `getMany`
 * live in the programs above, once, so every backend behaves the same by construction.
 *
 * @internal
 */
export const make = (backend: Backend): Effect.Effect<StorageService, never, Scope.Scope> =>
  Effect.suspend(() => {
    const [service, run] = build(backend)
    const alarm = backend._tag === "Sync" ? backend.primitives.alarm : backend.alarm
    return Effect.as(Effect.forkScoped(sweeper(run, alarm)), service)
  })

/**
 * Deletes expired entries in the background, forever: a bounded batch per sweep (each its own short transaction,
 * run as any operation is, so it waits for a transaction in progress), the next one at once when the batch was
 * full, else when the next known entry expires, and at least every `SWEEP_INTERVAL` (entries written by other
 * processes). Time is the `Clock`'s: a `TestClock` drives it. A failed sweep (a busy or read-only database) is tried
 * again later; reads never depend on it, since they skip expired entries themselves.
 */
const sweeper = (run: Runner, alarm: SweepAlarm): Effect.Effect<never> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    while (true) {
      alarm.clear()
      const swept = yield* Effect.orElseSucceed(
        run(() => internalPrograms.sweep()),
        (): Swept => ({ removed: 0, next: undefined })
      )
      const now = clock.unsafeCurrentTimeMillis()
      const delay = sweepDelay(swept, now)
      if (delay === 0) {
        yield* Effect.yieldNow()
        continue
      }
      const sleep = clock === liveClock ? unrefSleep(delay) : clock.sleep(Duration.millis(delay))
      const rung = Effect.async<void>((resume) => {
        alarm.set(now + delay, () => resume(Effect.void))
        return Effect.sync(() => alarm.clear())
      })
      yield* Effect.race(sleep, rung)
    }
  })

/** Effect's own clock, which every program runs on unless it provides another (a `TestClock`). */
const liveClock = Effect.runSync(Effect.clock)

/**
 * Waits on a timer that does not keep the process alive: the sweeper, like the change feed's poll, must never be
 * the reason a process that has nothing else to do keeps running.
 */
const unrefSleep = (millis: number): Effect.Effect<void> =>
  Effect.async((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    timer.unref()
    return Effect.sync(() => clearTimeout(timer))
  })

const build = (backend: Backend): readonly [StorageService, Runner] => {
  if (backend._tag === "Effect") {
    const runNow: Runner = (start) => Effect.suspend(() => runEffect(backend.primitives, backend.alarm, start()))
    // The client's own transactions: one at a time on its connection, nested ones savepoints, and this library's
    // operations inside one join it (the client keeps the transaction in a FiberRef).
    const transaction = <A, E, R>(f: (tx: StorageService) => Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        const scope = { open: true }
        const tx = buildService(
          guarded(scope, runNow),
          (g) => Effect.suspend(() => (scope.open ? backend.withTransaction(g(tx)) : Effect.fail(transactionEnded()))),
          undefined
        )
        return backend.withTransaction(f(tx)).pipe(Effect.ensuring(Effect.sync(() => (scope.open = false))))
      })
    return [buildService(runNow, transaction, backend.feed), runNow]
  }
  // A synchronous backend has one connection: while a transaction holds it, operations of other fibers wait for it
  // (on the lock the transaction holds); those of the transaction's own fiber, and of fibers it forks, join it.
  // An operation that lets the event loop turn midway (see `slices.ts`) holds it too, until it ends: `paused`.
  const { primitives } = backend
  const { transactions } = primitives
  const lock = Effect.unsafeMakeSemaphore(1)
  let held: { open: boolean } | undefined
  let paused = false
  let waitingForPaused: Array<() => void> = []
  const pausedEnded: Effect.Effect<void> = Effect.async((resume) => {
    const wake = () => resume(Effect.void)
    waitingForPaused.push(wake)
    return Effect.sync(() => {
      waitingForPaused = waitingForPaused.filter((waiting) => waiting !== wake)
    })
  })
  /** `effect`, once no paused operation holds the connection. */
  const unpaused = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => (paused ? Effect.zipRight(pausedEnded, unpaused(effect)) : effect))
  /** Runs the rest of an operation that paused, step by step, the event loop turning between them. */
  const finishPaused = <A>(rest: Suspended<A>): Effect.Effect<A, StorageError> => {
    // Outside a transaction, the operation holds the connection itself (inside one, the transaction holds it).
    const own = held === undefined
    if (own) paused = true
    const end = () => {
      if (!own) return
      paused = false
      const waiting = waitingForPaused
      waitingForPaused = []
      for (const wake of waiting) wake()
    }
    return Effect.uninterruptible(
      Effect.async<A, StorageError>((resume) =>
        settleSliced(
          rest,
          (value) => {
            end()
            resume(Effect.succeed(value))
          },
          (error) => {
            end()
            resume(Effect.fail(asStorageError(error)))
          }
        )
      )
    )
  }
  const runNow: Runner = <A>(start: () => Program<A>): Effect.Effect<A, StorageError> =>
    Effect.clockWith((clock) => {
      // A long run of operations (a loop of awaited calls) lets the event loop turn too.
      if (pauseDue()) return Effect.zipRight(nextTurn, runNow(start))
      const program = start()
      let result: A | Suspended<A>
      try {
        result = finishSync(primitives, program, program.next(), clock, primitives.alarm)
      } catch (thrown) {
        return Effect.fail(asStorageError(thrown))
      }
      return result instanceof Suspended ? finishPaused(result) : Effect.succeed(result)
    })
  const inside = FiberRef.unsafeMake<{ open: boolean } | undefined>(undefined)
  const run: Runner = (start) =>
    Effect.suspend(() => {
      if (paused) return unpaused(run(start))
      return held === undefined
        ? runNow(start)
        : Effect.flatMap(FiberRef.get(inside), (scope) =>
            scope !== undefined && scope === held ? runNow(start) : lock.withPermits(1)(unpaused(runNow(start)))
          )
    })
  const step = (f: () => void): Effect.Effect<void, StorageError> =>
    Effect.try({ try: f, catch: (thrown) => asStorageError(thrown) })
  /** One level of a transaction: begun, then committed when `body` succeeds, rolled back otherwise. */
  const level = <A, E, R>(body: Effect.Effect<A, E, R>, onEnd: () => void) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const begun = yield* Effect.exit(step(transactions.begin))
        if (Exit.isFailure(begun)) {
          onEnd()
          return yield* Effect.failCause(begun.cause)
        }
        const exit = yield* Effect.exit(restore(body))
        const ended = Exit.isSuccess(exit) ? yield* Effect.exit(step(transactions.commit)) : Exit.void
        if (Exit.isFailure(exit) || Exit.isFailure(ended)) yield* Effect.ignore(step(transactions.rollback))
        onEnd()
        if (Exit.isFailure(ended)) return yield* Effect.failCause(ended.cause)
        return yield* exit
      })
    )
  const nested = <A, E, R>(scope: { open: boolean }, f: (tx: StorageService) => Effect.Effect<A, E, R>) =>
    Effect.suspend(() => (scope.open ? level(f(txOf(scope)), () => undefined) : Effect.fail(transactionEnded())))
  const txOf = (scope: { open: boolean }): StorageService =>
    buildService(guarded(scope, runNow), (f) => nested(scope, f), undefined)
  const transaction = <A, E, R>(f: (tx: StorageService) => Effect.Effect<A, E, R>) =>
    Effect.flatMap(FiberRef.get(inside), (current) => {
      if (current !== undefined && current === held) return nested(current, f)
      return lock.withPermits(1)(
        unpaused(
          Effect.suspend(() => {
            const scope = { open: true }
            held = scope
            return level(Effect.locally(f(txOf(scope)), inside, scope), () => {
              scope.open = false
              held = undefined
            })
          })
        )
      )
    })
  const service = buildService(run, transaction, primitives.feed)
  const gets = makeGetBatcher(primitives, run, () => held !== undefined || paused)
  return [{ ...service, get: gets }, run]
}

type Runner = <A>(start: () => Program<A>) => Effect.Effect<A, StorageError>

/** A get waiting for the batch of its tick. */
interface PendingGet {
  readonly key: unknown
  readonly options: unknown
  readonly clock: TimeSource
  readonly resume: (effect: Effect.Effect<Option.Option<Json>, StorageError>) => void
}

/**
 * The gets of a synchronous backend's service, batched across fibers as the Promise API batches them across
 * callers: the first get of a tick runs at once, and so do the later ones of the same fiber (a loop of gets waits for
 * nothing); gets of other fibers in the same tick wait for the tick's microtasks and are answered together, one
 * `getMany` per store (one query, one snapshot), each then succeeding or failing on its own (a refused key or store,
 * a stored value that is not JSON). While a transaction holds the connection, they run one by one, each waiting for
 * it as any operation does. A batch is answered {@link SLICE_ROWS} gets at a time, letting the event loop turn
 * between two when the slice has run out.
 */
const makeGetBatcher = (primitives: Primitives, run: Runner, transactionHeld: () => boolean) => {
  let queue: Array<PendingGet> = []
  let opener: FiberId.FiberId | undefined
  const one = (pending: PendingGet) =>
    pending.resume(run(() => programs.get(pending.key as string, pending.options as StoreOptions)))
  const flush = (): void => {
    opener = undefined
    const batch = queue.length > SLICE_ROWS ? queue.splice(0, SLICE_ROWS) : queue
    queue = batch === queue ? [] : queue
    if (queue.length > 0) {
      if (pauseDue()) setImmediate(flush)
      else queueMicrotask(flush)
    }
    if (transactionHeld() || batch.length === 1) {
      for (const pending of batch) one(pending)
      return
    }
    const byStore = new Map<string, Array<PendingGet>>()
    for (const pending of batch) {
      const store = resolveStore(pending.options)
      const invalid = typeof store === "string" ? checkKey(pending.key) : store
      if (invalid !== undefined) {
        pending.resume(Effect.fail(invalid))
        continue
      }
      const group = byStore.get(store as string)
      if (group === undefined) byStore.set(store as string, [pending])
      else group.push(pending)
    }
    for (const [store, group] of byStore) {
      const keys = [...new Set(group.map((pending) => pending.key as string))]
      let texts: Map<string, Stored>
      try {
        texts = new Map(primitives.getMany(store, keys, group[0]!.clock.unsafeCurrentTimeMillis()))
      } catch (thrown) {
        for (const pending of group) pending.resume(Effect.fail(asStorageError(thrown)))
        continue
      }
      for (const pending of group) {
        const text = texts.get(pending.key as string)
        if (text === undefined) {
          pending.resume(Effect.succeed(Option.none()))
          continue
        }
        // Decoded for each get: two gets of one key are given values of their own.
        try {
          pending.resume(Effect.succeed(Option.some(decode(store, pending.key as string, text))))
        } catch (thrown) {
          pending.resume(Effect.fail(asStorageError(thrown)))
        }
      }
    }
  }
  const get = (key: string, options?: StoreOptions): Effect.Effect<Option.Option<Json>, StorageError> =>
    Effect.withFiberRuntime((fiber) => {
      const id = fiber.id()
      if (opener === undefined) {
        opener = id
        queueMicrotask(flush)
      }
      if (opener === id) return run(() => programs.get(key, options))
      return Effect.clockWith((clock) =>
        Effect.async<Option.Option<Json>, StorageError>((resume) => {
          queue.push({ key, options, clock, resume })
        })
      )
    })
  return get as StorageService["get"]
}

/**
 * What an operation of a transaction that has ended fails with, in both APIs.
 *
 * @internal
 */
export const transactionEnded = (): GenericError =>
  new GenericError({
    reason: "The transaction has ended: its operations can only be used until its function has finished"
  })

/** A runner that refuses to run once the transaction of `scope` has ended. */
const guarded =
  (scope: { readonly open: boolean }, run: Runner): Runner =>
  (start) =>
    Effect.suspend(() => (scope.open ? run(start) : Effect.fail(transactionEnded())))

/** Waits until the notifier's generation is past `generation`. */
const moved = (feed: Notifier, generation: number): Effect.Effect<void> =>
  Effect.async((resume) => {
    const cancel = feed.wait(generation, () => resume(Effect.void))
    return Effect.sync(cancel)
  })

/**
 * What a transaction's `watch` fails with, in both APIs: a transaction's changes only exist once it commits, so
 * watching from inside it could only wait for itself.
 *
 * @internal
 */
export const watchInTransaction = (): GenericError =>
  new GenericError({
    reason: "watch cannot be used inside a transaction: its changes are committed when it ends; watch outside it"
  })

/**
 * The service over a way to run programs, a way to run transactions, and the notifier of its watchers (none for a
 * transaction's service).
 */
const buildService = (
  run: Runner,
  transaction: <A, E, R>(f: (tx: StorageService) => Effect.Effect<A, E, R>) => Effect.Effect<A, unknown, R>,
  feed: Notifier | undefined
): StorageService => {
  const service = {} as Record<keyof typeof programs, unknown>
  for (const name of Object.keys(programs) as Array<keyof typeof programs>) {
    const program = programs[name] as (...args: ReadonlyArray<unknown>) => Program<unknown>
    service[name] = (...args: ReadonlyArray<unknown>) => run(() => program(...args))
  }
  const list = (selector?: Selector, options?: ListOptions): Stream.Stream<Entry, StorageError> =>
    Stream.suspend(() => {
      let state: ListState | undefined
      try {
        state = startList(selector, options)
      } catch (thrown) {
        return Stream.fail(asStorageError(thrown))
      }
      if (state === undefined) return Stream.empty
      return Stream.paginateChunkEffect(state, (current) =>
        Effect.flatMap(
          run(() => internalPrograms.listChunk(current)),
          ([rows, next]) => {
            try {
              return Effect.succeed([
                Chunk.unsafeFromArray(rows.map((row) => entryOf(current.store, row, current.json) as Entry)),
                Option.fromNullable(next)
              ] as const)
            } catch (thrown) {
              return Effect.fail(asStorageError(thrown))
            }
          }
        )
      )
    })
  const atomic = () => makeAtomic((operations) => run(() => internalPrograms.commitAtomic(operations)))
  const watch = (selector?: WatchSelector, options?: WatchOptions): Stream.Stream<Change, StorageError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        if (feed === undefined) return yield* Effect.fail(watchInTransaction())
        const request = yield* Effect.try({
          try: () => checkWatch(selector, options),
          catch: (thrown) => asStorageError(thrown)
        })
        // Registered before the first read: a write by another process from then on is polled for.
        yield* Effect.acquireRelease(
          Effect.sync(() => feed.watch()),
          (unregister) => Effect.sync(unregister)
        )
        const [initial, start] = yield* run(() => internalPrograms.watchStart(request))
        const step = (state: WatchState) =>
          Effect.gen(function* () {
            let current = state
            while (true) {
              const generation = feed.generation
              const { changes, state: next, more } = yield* run(() => internalPrograms.watchChunk(current))
              current = next
              if (changes.length > 0) return [Chunk.unsafeFromArray(changes), Option.some(current)] as const
              if (!more) yield* moved(feed, generation)
            }
          })
        return Stream.concat(Stream.fromIterable(initial), Stream.paginateChunkEffect(start, step))
      })
    )
  return { ...service, list, atomic, transaction, watch } as unknown as StorageService
}
