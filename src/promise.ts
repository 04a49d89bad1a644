/**
 * The Promise API of runtime-storage: the `runtime:storage` module. No Effect in sight: every function returns a
 * Promise, and a rejection carries the library's coded error itself (`instanceof Error`, `code`, `_tag`).
 *
 * ```js
 * import { get, set } from "runtime:storage" // or "runtime-storage/promise"
 * await set("theme", "dark", { store: "settings" })
 * const theme = await get("theme", { store: "settings" }) // "dark", or null when absent
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { type DatabaseError, GenericError, InvalidKeyError } from "./errors/StorageError.js"
import type { SyncPrimitives } from "./internal/backend.js"
import { SWEEP_INTERVAL, sweepDelay } from "./internal/expiry.js"
import { resolveHistory } from "./internal/feed.js"
import { describeServer } from "./internal/pg.js"
import type { Suspended } from "./internal/slices.js"
import { checkKey, resolveStore } from "./internal/validate.js"
import { type Durability, makeSqlitePrimitives } from "./layers/Sqlite.js"
import { defaultDatabasePath, resolveDefaultFilename } from "./location.js"
import {
  answerFromMany,
  beginning,
  closedError,
  makeApi,
  notAFunction,
  refusedIterator,
  toError
} from "./promise/api.js"
import { openEffectClient } from "./promise/effect-client.js"
import { Lane } from "./promise/lane.js"
import { listen, type OnChangeOptions, WatchIterator } from "./promise/watch.js"
import {
  type Atomic,
  type AtomicOperation,
  type Begun,
  begin,
  type Change,
  type CommitResult,
  type Json,
  type JsonText,
  type ListOptions,
  makeAtomic,
  type PageOptions,
  type Selector,
  type SetManyEntries,
  type StoreOptions,
  transactionEnded,
  type WatchOptions,
  type WatchSelector,
  watchInTransaction
} from "./services/Storage.js"

export * from "./errors/StorageError.js"
export type { Durability } from "./layers/Sqlite.js"
export { defaultDatabasePath, type PlatformInfo } from "./location.js"
export type { OnChangeOptions } from "./promise/watch.js"
export type {
  Atomic,
  Change,
  CommitResult,
  Json,
  JsonText,
  JsonValue,
  ListOptions,
  PageOptions,
  Selector,
  SetManyEntries,
  StoreOptions,
  WatchOptions,
  WatchSelector
} from "./services/Storage.js"

/**
 * A key with its value.
 *
 * @since 0.2.0
 */
export interface Entry<T = Json> {
  key: string
  value: T
}

/**
 * One page of entries and the cursor of the next page (`null` after the last page).
 *
 * @since 0.2.0
 */
export interface Page<T = Json> {
  entries: Array<Entry<T>>
  cursor: string | null
}

/**
 * An entry with its metadata: when its key was created (kept across overwrites) and last written, and when it
 * expires (`null`: never), in milliseconds since the epoch; and the version of its last write (an opaque string;
 * later writes have greater versions).
 *
 * @since 0.2.0
 */
export interface StoredEntry<T = Json> extends Entry<T> {
  createdAt: number
  updatedAt: number
  version: string
  /** @since 0.4.0 */
  expiresAt: number | null
}

/**
 * A store as `stores` lists it: its name, how many entries it holds, and their size in bytes (as `size` counts).
 *
 * @since 0.5.0
 */
export interface StoreSummary {
  store: string
  count: number
  size: number
}

/**
 * The options of `set` and `setMany`: the store, and `expireIn`, the milliseconds after which the written entries
 * expire (a positive, finite number). An expired entry reads as absent at once and is deleted in the background. A
 * write without `expireIn` stores entries that never expire (overwriting an expiring entry removes its expiry).
 * Any other option name (a `ttl`, say) is refused with 9004.
 *
 * @since 0.4.0
 */
export interface SetOptions extends StoreOptions {
  readonly expireIn?: number | undefined
}

/**
 * Where a client keeps its data. Give `app` (the database is then at the platform's default location, see
 * `defaultDatabasePath`) or `filename`, or (since 0.6.0) the `url` of a PostgreSQL server.
 *
 * @since 0.1.0
 */
export interface OpenOptions {
  /**
   * A PostgreSQL server, `postgres://user:password@host:port/database`, instead of a SQLite file: the same API and
   * semantics, shared by every process and machine that opens the same URL (and schema). The password never
   * appears in an error or in the client's `filename`. Durability is the server's: `durability` and `busyTimeout`
   * are SQLite's and are refused with it.
   *
   * @since 0.6.0
   */
  readonly url?: string | undefined
  /** With `url`: the schema the tables live in (default `public`), created when missing. @since 0.6.0 */
  readonly schema?: string | undefined
  /** With `url`: the most connections the client's pool opens (default 10). @since 0.6.0 */
  readonly maxConnections?: number | undefined
  /** The application's name: the database is `<platform data directory>/<app>/storage.db`. */
  readonly app?: string | undefined
  /** The database file, instead of the default location (or `":memory:"`). */
  readonly filename?: string | undefined
  /** `"relaxed"` (default) or `"strict"`: see `Durability`. */
  readonly durability?: Durability | undefined
  /** Milliseconds to wait for another process's lock before failing. Default 5000. */
  readonly busyTimeout?: number | undefined
  /**
   * How much history the change feed keeps: at least the last `changes` changes (default 100,000) and every change
   * of the last `maxAge` milliseconds (default 7 days), whichever is more.
   */
  readonly history?: { readonly changes?: number | undefined; readonly maxAge?: number | undefined } | undefined
}

/**
 * The operations of the Promise API. A missing key reads as `null`.
 *
 * @since 0.1.0
 */
export interface StorageApi {
  get<T = Json>(key: string, options?: StoreOptions): Promise<T | null>
  /** Stores a value; with `{ expireIn: ms }` it expires that long after the write. */
  set<T>(key: string, value: T, options?: SetOptions): Promise<void>
  remove(key: string, options?: StoreOptions): Promise<boolean>
  clear(options?: StoreOptions): Promise<void>
  /** The keys of a store, or of the keys a selector selects, in code point order. */
  keys(selector?: Selector): Promise<Array<string>>
  has(key: string, options?: StoreOptions): Promise<boolean>
  /** The entries of a store, or of the keys a selector selects, in code point order of the key. */
  entries<T = Json>(selector?: Selector): Promise<Array<Entry<T>>>
  /**
   * The selected entries as an async iterable (`for await (const { key, value } of list({ prefix: "draft:" }))`),
   * read in bounded chunks as the loop goes: memory stays bounded however large the store, and breaking out of the
   * loop releases everything. Each chunk is read when the loop reaches it; other calls keep working meanwhile. A key
   * that exists, unchanged, for the whole loop is seen exactly once, in order; one written or removed meanwhile may
   * or may not be seen, and never twice. A refused selector rejects the first step of the loop with 9004. With
   * `{ metadata: true }`, each entry comes with its metadata, as `getEntry` gives it; with `{ json: true }`, each
   * value as its JSON text, exactly as stored and not parsed (a binary value as a `Uint8Array`) (since 0.5.0).
   */
  list(
    selector: Selector | undefined,
    options: { readonly metadata: true; readonly json: true }
  ): AsyncIterableIterator<StoredEntry<JsonText>>
  list(selector: Selector | undefined, options: { readonly json: true }): AsyncIterableIterator<Entry<JsonText>>
  list<T = Json>(
    selector: Selector | undefined,
    options: { readonly metadata: true }
  ): AsyncIterableIterator<StoredEntry<T>>
  list<T = Json>(selector?: Selector, options?: ListOptions): AsyncIterableIterator<Entry<T>>
  /**
   * One page of the selected entries (`limit`: the page size, default 100, at most 1000) and the `cursor` of the
   * next page, `null` after the last one. Pass the cursor back with the same selector for the next page.
   */
  page<T = Json>(options?: PageOptions): Promise<Page<T>>
  /** How many keys a selector selects (at most its `limit`). */
  count(selector?: Selector): Promise<number>
  /** The value of a key with its metadata, or `null` when the key is absent. */
  getEntry<T = Json>(key: string, options?: StoreOptions): Promise<StoredEntry<T> | null>
  /**
   * Begins an atomic commit: `.check(key, version | null)`, `.set(key, value)` and `.remove(key)` on any stores, then
   * `.commit()`, which resolves to `{ ok: true, version }`, or `{ ok: false }` (nothing written) when a check failed.
   * A refused key, version or value rejects the commit with its coded error, and nothing is written.
   */
  atomic(): Atomic<Promise<CommitResult>>
  /**
   * Runs `f` in one transaction across all stores, holding the write lock from its start: `tx` has every operation
   * of this API, bound to the transaction. It commits when `f`'s promise resolves (and resolves with its value), and
   * rolls back when it rejects. Other calls on this client made meanwhile wait until it ends (so do not await them
   * inside `f`: use `tx`); other processes' writers wait up to their busy timeout. Every write inside takes the
   * transaction's one version. `tx.transaction(g)` is a savepoint: when `g` rejects, its writes are undone and the
   * rejection goes on to `f`, which may catch it and go on. Using `tx` after `f` has settled rejects with 9000.
   */
  transaction<A>(f: (tx: StorageApi) => Promise<A>): Promise<A>
  /**
   * The changes of the selected keys (`{ store?, key? | keys? | prefix? }`) as an async iterable, ended by `break`
   * or `return()`: `for await (const change of watch({ store: "settings" }))`. With `{ initial: true }` the current
   * entries come first (as `set` changes marked `initial`), with `{ since: version }` every change after that version
   * (in commit order), then the live changes, with no gap and no repeat; without options the changes from now on.
   * Changes by other clients and processes arrive too (polled every 10 ms while something watches; no timer
   * otherwise, and none that keeps the process alive). A `since` older than the kept history rejects with
   * `HistoryTrimmed` (9001). A transaction's `tx.watch` rejects with 9000.
   */
  watch<T = Json>(selector?: WatchSelector, options?: WatchOptions): AsyncIterableIterator<Change<T>>
  /**
   * Calls `listener` with each change of the selected keys, one at a time (an async listener is awaited before the
   * next change), until the returned function is called. See `watch` and `OnChangeOptions`.
   */
  onChange<T = Json>(
    selector: WatchSelector | undefined,
    listener: (change: Change<T>) => unknown,
    options?: OnChangeOptions
  ): () => void
  getMany<T = Json>(keys: Iterable<string>, options?: StoreOptions): Promise<Map<string, T>>
  setMany(entries: SetManyEntries, options?: SetOptions): Promise<void>
  deleteMany(keys: Iterable<string>, options?: StoreOptions): Promise<number>
  size(options?: StoreOptions): Promise<number>
  /** Every store that holds an entry, in code point order, with its entry count and size. @since 0.5.0 */
  stores(): Promise<Array<StoreSummary>>
  /**
   * Atomically replaces a value with `f(current)` and returns the new value; across processes too. An absent (or
   * expired) key rejects with `NotFound` (9001) unless `options.default` is given. The entry keeps its expiry unless
   * `expireIn` gives a new one.
   */
  update<T = Json>(key: string, f: (current: T) => T, options?: UpdateOptions<T>): Promise<T>
}

/**
 * The options of `update`: the store, the value `f` receives when the key is absent, and a new `expireIn`.
 *
 * @since 0.1.0
 */
export interface UpdateOptions<T = Json> extends SetOptions {
  readonly default?: T
}

/**
 * A client of one database, from {@link open}: one runtime and one connection, opened on first use and closed
 * by `close()` (or `await using`).
 *
 * @since 0.1.0
 */
export interface StorageClient extends StorageApi, AsyncDisposable {
  /** The database file of this client (on PostgreSQL: the server's URL, without its password). */
  readonly filename: string
  /** Closes the database. Later calls reject with `GenericError` (9000); closing again does nothing. */
  close(): Promise<void>
}

interface PendingGet {
  readonly key: unknown
  readonly options: unknown
  readonly resolve: (value: Json | null) => void
  readonly reject: (error: unknown) => void
}

/** Runs a begun operation on a lane's connection and settles a promise with it (holding the lane if it pauses). */
const settle = <A>(
  lane: Lane,
  begun: Begun<A>,
  primitives: SyncPrimitives,
  resolve: (value: A) => void,
  reject: (error: unknown) => void
): void => {
  let result: A | Suspended<A>
  try {
    result = begun.resume(primitives)
  } catch (error) {
    reject(error)
    return
  }
  lane.settle(result, resolve, reject)
}

/**
 * Collects the gets made in one tick after the first and answers them together, when the microtasks run: one
 * `getMany` per store (read as one snapshot), and each get on its own when its key or store is invalid (so it
 * rejects with its own error), when its key is asked twice (each caller gets a fresh value), or when the
 * `getMany` fails (so only the get whose value is bad fails). Each answer is a call of the lane: it waits for what
 * holds the connection, and a large batch lets the event loop turn as any large call does.
 */
const makeReadBatcher = (lane: Lane) => {
  let queue: Array<PendingGet> = []
  const one = (pending: PendingGet): void => {
    let begun: Begun<Option.Option<Json>>
    try {
      begun = begin("get", pending.key as string, pending.options as StoreOptions)
    } catch (error) {
      pending.reject(error)
      return
    }
    lane.schedule(
      (primitives) =>
        settle(lane, begun, primitives, (value) => pending.resolve(Option.getOrNull(value)), pending.reject),
      pending.reject
    )
  }
  const flush = (): void => {
    const batch = queue
    if (batch.length === 0) return
    queue = []
    if (batch.length === 1) {
      one(batch[0]!)
      return
    }
    const byStore = new Map<string, Array<PendingGet>>()
    for (const pending of batch) {
      const store = resolveStore(pending.options)
      if (typeof store !== "string" || checkKey(pending.key) !== undefined) {
        one(pending)
        continue
      }
      const group = byStore.get(store)
      if (group === undefined) byStore.set(store, [pending])
      else group.push(pending)
    }
    for (const [store, group] of byStore) {
      const failGroup = (error: unknown) => {
        for (const pending of group) pending.reject(error)
      }
      lane.schedule((primitives) => {
        let result: ReadonlyMap<string, Json> | Suspended<ReadonlyMap<string, Json>>
        try {
          result = begin(
            "getMany",
            group.map((pending) => pending.key as string),
            { store }
          ).resume(primitives)
        } catch {
          for (const pending of group) one(pending)
          return
        }
        lane.settle(
          result,
          (values) => {
            for (const pending of answerFromMany(group, values)) one(pending)
          },
          () => {
            for (const pending of group) one(pending)
          }
        )
      }, failGroup)
    }
  }
  // The first get of a tick runs at once (a lone get, or sequential awaited gets, wait for nothing); the gets that
  // follow it in the same tick are queued and answered together when the microtasks run.
  let tickOpen = false
  const endTick = (): void => {
    tickOpen = false
    flush()
  }
  return {
    get: (key: unknown, options: unknown): Promise<Json | null> =>
      new Promise((resolve, reject) => {
        if (!tickOpen) {
          const primitives = lane.now()
          if (primitives !== undefined) {
            tickOpen = true
            queueMicrotask(endTick)
            let begun: Begun<Option.Option<Json>>
            try {
              begun = begin("get", key as string, options as StoreOptions)
            } catch (error) {
              reject(error)
              return
            }
            settle(lane, begun, primitives, (value) => resolve(Option.getOrNull(value)), reject)
            return
          }
        }
        queue.push({ key, options, resolve, reject })
        if (queue.length === 1 && !tickOpen) queueMicrotask(flush)
      }),
    /** Answers the gets made so far, before another operation runs: calls take effect in the order they are made. */
    flush
  }
}

/**
 * Runs one level of a transaction on a connection that no other call uses meanwhile: begun (a savepoint when one is
 * open), then committed when `f`'s promise resolves and rolled back when it rejects (or `f` throws). The calls of
 * `tx` run in the order they are made, on a lane of their own; `tx` rejects every call once `f` has settled.
 */
const runTransaction = async <A>(primitives: SyncPrimitives, f: (tx: StorageApi) => Promise<A>): Promise<A> => {
  const { transactions } = primitives
  transactions.begin()
  const scope = { open: true }
  const lane = new Lane(() => primitives)
  const txRun = <B>(start: () => Begun<B>): Promise<B> =>
    beginning(
      scope.open ? undefined : transactionEnded(),
      start,
      (begun) =>
        new Promise((resolve, reject) =>
          lane.schedule((connection) => settle(lane, begun, connection, resolve, reject), reject)
        )
    )
  const tx: StorageApi = makeApi(
    txRun,
    <B>(g: (inner: StorageApi) => Promise<B>) => {
      if (!scope.open) return Promise.reject(transactionEnded())
      if (typeof g !== "function") return Promise.reject(notAFunction(g))
      return new Promise<B>((resolve, reject) =>
        lane.schedule((connection) => {
          lane.hold()
          runTransaction(connection, g)
            .then(resolve, reject)
            .finally(() => lane.release())
        }, reject)
      )
    },
    () => refusedIterator(watchInTransaction())
  )
  let value: A
  try {
    value = await f(tx)
    // Calls made by `f` and not awaited end before the transaction does.
    if (!lane.isIdle) await lane.whenIdle()
  } catch (error) {
    scope.open = false
    if (!lane.isIdle) await lane.whenIdle()
    transactions.rollback()
    throw error
  }
  scope.open = false
  try {
    transactions.commit()
  } catch (error) {
    transactions.rollback()
    throw error
  }
  return value
}

/** The primitives of one connection, for the clients of this module. */
class Connection extends Context.Tag("runtime-storage/promise/Connection")<Connection, SyncPrimitives>() {}

const DURABILITIES: ReadonlyArray<unknown> = [undefined, "relaxed", "strict"]

const filenameOf = (options: OpenOptions): string => {
  if (options === null || typeof options !== "object") {
    throw new InvalidKeyError({
      reason: 'open() takes an options object: { app: "my-app" } or { filename: "/path/storage.db" }'
    })
  }
  if (!DURABILITIES.includes(options.durability)) {
    throw new InvalidKeyError({
      reason: `durability must be "relaxed" or "strict", got ${JSON.stringify(String(options.durability))}`
    })
  }
  resolveHistory(options.history)
  if (options.app !== undefined) return defaultDatabasePath(options.app)
  if (typeof options.filename === "string" && options.filename !== "") return options.filename
  throw new InvalidKeyError({
    reason: 'open() needs { app: "my-app" } (for the platform\'s default location) or { filename: "/path/storage.db" }'
  })
}

const PG_OPTIONS = ["url", "schema", "maxConnections", "history"]

/** A client on a PostgreSQL server; the driver is loaded by the first call, so SQLite apps never load it. */
const openPg = (options: OpenOptions): StorageClient => {
  if (typeof options.url !== "string" || options.url === "") {
    throw new InvalidKeyError({ reason: `open()'s url must be a postgres:// URL string, got ${typeof options.url}` })
  }
  const other = Object.keys(options).filter(
    (name) => !PG_OPTIONS.includes(name) && (options as Record<string, unknown>)[name] !== undefined
  )
  if (other.length > 0) {
    throw new InvalidKeyError({
      reason: `open() with a url takes ${PG_OPTIONS.join(", ")}; ${other.join(", ")} ${other.length === 1 ? "is" : "are"} SQLite's`
    })
  }
  const history = resolveHistory(options.history)
  const {
    client,
    inUse: used,
    run
  } = openEffectClient(
    describeServer(options),
    Effect.flatMap(
      Effect.promise(() => import("./layers/Pg.js")),
      ({ pgBackend }) =>
        pgBackend({
          url: options.url,
          schema: options.schema,
          maxConnections: options.maxConnections,
          history: { changes: history.changes, maxAge: history.maxAge }
        })
    )
  )
  inUse.set(client, used)
  committers.set(client, (operations) => run(() => begin("commitAtomic", operations)))
  return client
}

/** Whether a client is open or opening (a first call whose open failed leaves it neither). */
const inUse = new WeakMap<StorageApi, () => boolean>()
/** How a client commits the operations of an atomic builder (for the builders of the module-level `atomic()`). */
const committers = new WeakMap<StorageApi, (operations: ReadonlyArray<AtomicOperation>) => Promise<CommitResult>>()

/**
 * Opens a client on a database file. Throws `InvalidKeyError` (9004) for options naming no valid app or file, or
 * an unknown durability. Nothing touches the disk until the first call, which opens the database once for the
 * life of the client.
 *
 * Every call takes effect in the order it is made. Its arguments are checked and its values serialized when it is
 * made (so changing an object after passing it to `set` changes nothing), and it rejects with a coded error. A large
 * call (a `setMany` of thousands of entries, say) holds the event loop for a few milliseconds at a time: it works
 * in slices and lets the loop turn between them, holding its connection meanwhile (calls made in the meantime wait
 * for it, and it stays one transaction). Its commit is one step of SQLite that cannot be cut (about 1 ms per MB the
 * batch wrote: ~30-70 ms for 100,000 small entries). Such a call reads and serializes its entries in slices too,
 * before it writes any: do not change what you passed to it until it settles.
 *
 * @since 0.1.0
 */
export const open = (options: OpenOptions): StorageClient => {
  if (options !== null && typeof options === "object" && options.url !== undefined) return openPg(options)
  const filename = filenameOf(options)
  const layer = Layer.scoped(
    Connection,
    makeSqlitePrimitives({
      filename,
      durability: options.durability,
      busyTimeout: options.busyTimeout ?? 5000,
      history: options.history
    })
  )
  type Connected = ManagedRuntime.ManagedRuntime<Connection, DatabaseError>
  let connected: Promise<Connected> | undefined
  let ready: SyncPrimitives | undefined
  let closed: Promise<void> | undefined
  let whenIdle: (() => void) | undefined
  // The calls that cannot run yet wait in line: the connection is still opening, a transaction holds it, or a call
  // paused midway to let the event loop turn. They run as soon as it is free, before any later call.
  const lane = new Lane(
    () => ready,
    () => connect(),
    () => whenIdle?.()
  )
  const connect = (): void => {
    if (connected !== undefined) return
    const runtime = ManagedRuntime.make(layer)
    const attempt: Promise<Connected> = runtime.runPromiseExit(Connection).then((exit) => {
      if (Exit.isSuccess(exit)) {
        ready = exit.value
        lane.drain()
        sweepAfter(0)
        return runtime
      }
      // A failed open is not kept: the next call tries again (the lock may be gone, the disk freed).
      if (connected === attempt) connected = undefined
      void runtime.dispose()
      const error = toError(exit.cause)
      lane.failAll(error)
      throw error
    })
    connected = attempt
    attempt.catch(() => undefined)
  }
  /** Runs `run` now when the connection is free and nothing waits, else after the calls before it. */
  const schedule = (run: (primitives: SyncPrimitives) => void, fail: (error: unknown) => void): void => {
    reads.flush()
    lane.schedule(run, fail)
  }
  const run = <A>(start: () => Begun<A>): Promise<A> =>
    beginning(
      closed === undefined ? undefined : closedError(filename),
      start,
      (begun) =>
        new Promise((resolve, reject) =>
          schedule((primitives) => settle(lane, begun, primitives, resolve, reject), reject)
        )
    )
  const transaction = <A>(f: (tx: StorageApi) => Promise<A>): Promise<A> => {
    if (closed !== undefined) return Promise.reject(closedError(filename))
    if (typeof f !== "function") return Promise.reject(notAFunction(f))
    return new Promise<A>((resolve, reject) =>
      schedule((primitives) => {
        lane.hold()
        runTransaction(primitives, f)
          .then(resolve, reject)
          .finally(() => lane.release())
      }, reject)
    )
  }
  const reads = makeReadBatcher(lane)
  // The sweeper of expired entries, as the Effect layers run it (see `sweepDelay`), on a timer that never keeps the
  // process alive. Each sweep is a call like any other: it waits for a transaction in progress.
  // A write of entries that expire before the next sweep brings it forward (the connection's SweepAlarm).
  let sweepTimer: ReturnType<typeof setTimeout> | undefined
  const sweepAfter = (delay: number): void => {
    if (closed !== undefined) return
    sweepTimer = setTimeout(sweep, delay)
    sweepTimer.unref()
    ready?.alarm.set(Date.now() + delay, () => {
      clearTimeout(sweepTimer)
      sweepAfter(0)
    })
  }
  const sweep = (): void => {
    sweepTimer = undefined
    ready?.alarm.clear()
    if (closed !== undefined) return
    run(() => begin("sweep")).then(
      (swept) => sweepAfter(sweepDelay(swept, Date.now())),
      () => sweepAfter(SWEEP_INTERVAL)
    )
  }
  // The watches of this client: ended when it closes.
  const watches = new Set<WatchIterator<unknown>>()
  const watch = <T>(selector?: WatchSelector, options?: WatchOptions): AsyncIterableIterator<Change<T>> => {
    if (closed !== undefined) return refusedIterator(closedError(filename))
    const iterator = new WatchIterator<T>(run, selector, options, (ended) => {
      watches.delete(ended as WatchIterator<unknown>)
    })
    watches.add(iterator as WatchIterator<unknown>)
    return iterator
  }
  const close = (): Promise<void> => {
    if (closed !== undefined) return closed
    clearTimeout(sweepTimer)
    ready?.alarm.clear()
    for (const iterator of [...watches]) void iterator.return()
    // Calls made before close() complete: gets already batched are answered now, calls still waiting for the
    // connection (or for a transaction) run when it is free, a transaction runs to its end, and only then is the
    // connection closed.
    reads.flush()
    closed = (connected ?? Promise.resolve(undefined)).then(
      (runtime) =>
        new Promise<void>((idle) => {
          whenIdle = idle
          if (lane.isIdle) idle()
        }).then(() => {
          ready = undefined
          return runtime?.dispose()
        }),
      () => undefined
    )
    return closed
  }
  const api = makeApi(run, transaction, watch)
  const client: StorageClient = {
    ...api,
    // Gets made in the same tick are answered by one getMany per store: concurrent reads cost about one query.
    get: <T>(key: string, options?: StoreOptions) =>
      closed !== undefined ? api.get<T>(key, options) : (reads.get(key, options) as Promise<T | null>),
    filename,
    close,
    [Symbol.asyncDispose]: close
  }
  inUse.set(client, () => ready !== undefined || connected !== undefined)
  committers.set(client, (operations) => run(() => begin("commitAtomic", operations)))
  return client
}

let defaultOptions: OpenOptions = {}
let defaultClient: StorageClient | undefined
let defaultClosed = false

/**
 * Sets the options of the default instance (the one behind the module-level functions) before its first use.
 * Without it, the app name comes from the `RUNTIME_STORAGE_APP` environment variable, else from the `name` of the
 * nearest `package.json`. Throws `GenericError` (9000) once the default instance is open: `close()` it first.
 *
 * @since 0.1.0
 */
export const configure = (options: OpenOptions): void => {
  if (defaultClient !== undefined && !defaultClosed && inUse.get(defaultClient)?.() === true) {
    throw new GenericError({
      reason: `configure() must be called before the first use of runtime:storage: the default instance is already open on ${JSON.stringify(defaultClient.filename)}. Call close() first to reopen it with other options`
    })
  }
  if (options !== undefined && options !== null && typeof options === "object" && options.app !== undefined) {
    defaultDatabasePath(options.app)
  }
  defaultOptions = { ...options }
  defaultClient = undefined
  defaultClosed = false
}

/**
 * Closes the default instance. Later calls reject with `GenericError` (9000) until `configure()` is called again.
 *
 * @since 0.1.0
 */
export const close = (): Promise<void> => {
  defaultClosed = true
  return defaultClient === undefined ? Promise.resolve() : defaultClient.close()
}

/**
 * The database file of the default instance, resolved as its first call will resolve it.
 *
 * @since 0.1.0
 */
export const databasePath = (): string =>
  defaultClient?.filename ??
  (defaultOptions.url !== undefined ? describeServer(defaultOptions) : resolveDefaultFilename(defaultOptions))

/** The default instance, opened (as a client: nothing touches the disk yet) on first use; throws when it cannot be. */
const defaultInstance = (): StorageClient => {
  if (defaultClient === undefined) {
    if (defaultClosed) throw new GenericError({ reason: "The default storage instance is closed" })
    defaultClient =
      defaultOptions.url !== undefined
        ? open(defaultOptions)
        : open({ ...defaultOptions, app: undefined, filename: resolveDefaultFilename(defaultOptions) })
  }
  return defaultClient
}

const withDefault = <A>(f: (client: StorageApi) => Promise<A>): Promise<A> => {
  let client: StorageClient
  try {
    client = defaultInstance()
  } catch (error) {
    return Promise.reject(error)
  }
  return f(client)
}

/** The value of a key, or `null` when it is absent. @since 0.1.0 */
export function get<T = Json>(key: string, options?: StoreOptions): Promise<T | null> {
  return withDefault((client) => client.get<T>(key, options))
}
/** Stores a JSON value, inserting or overwriting. @since 0.1.0 */
export function set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
  return withDefault((client) => client.set(key, value, options))
}
/** Removes a key; `true` when it existed. @since 0.1.0 */
export function remove(key: string, options?: StoreOptions): Promise<boolean> {
  return withDefault((client) => client.remove(key, options))
}
/** Removes every key of one store. @since 0.1.0 */
export function clear(options?: StoreOptions): Promise<void> {
  return withDefault((client) => client.clear(options))
}
/** The keys of a store (or those a selector selects), in ascending code point order. @since 0.1.0 */
export function keys(selector?: Selector): Promise<Array<string>> {
  return withDefault((client) => client.keys(selector))
}
/** Whether a key exists. @since 0.1.0 */
export function has(key: string, options?: StoreOptions): Promise<boolean> {
  return withDefault((client) => client.has(key, options))
}
/** The entries of a store (or those a selector selects), in ascending code point order of the key. @since 0.1.0 */
export function entries<T = Json>(selector?: Selector): Promise<Array<Entry<T>>> {
  return withDefault((client) => client.entries<T>(selector))
}
/** The selected entries as an async iterable, read in bounded chunks; see `StorageApi.list`. @since 0.2.0 */
export function list(
  selector: Selector | undefined,
  options: { readonly metadata: true; readonly json: true }
): AsyncIterableIterator<StoredEntry<JsonText>>
export function list(
  selector: Selector | undefined,
  options: { readonly json: true }
): AsyncIterableIterator<Entry<JsonText>>
export function list<T = Json>(
  selector: Selector | undefined,
  options: { readonly metadata: true }
): AsyncIterableIterator<StoredEntry<T>>
export function list<T = Json>(selector?: Selector, options?: ListOptions): AsyncIterableIterator<Entry<T>>
export function list<T = Json>(selector?: Selector, options?: ListOptions): AsyncIterableIterator<Entry<T>> {
  if (defaultClient === undefined) {
    // The default instance opens at the first step of the loop, as any other call would open it.
    return (async function* () {
      yield* await withDefault((client) => Promise.resolve(client.list<T>(selector, options)))
    })()
  }
  return defaultClient.list<T>(selector, options)
}
/** The changes of the selected keys as an async iterable; see `StorageApi.watch`. @since 0.3.0 */
export function watch<T = Json>(selector?: WatchSelector, options?: WatchOptions): AsyncIterableIterator<Change<T>> {
  // The watch starts now, as any other call would (opening the default instance).
  let client: StorageClient
  try {
    client = defaultInstance()
  } catch (error) {
    return refusedIterator(error)
  }
  return client.watch<T>(selector, options)
}
/** Calls `listener` with each change of the selected keys until the returned function is called. @since 0.3.0 */
export function onChange<T = Json>(
  selector: WatchSelector | undefined,
  listener: (change: Change<T>) => unknown,
  options?: OnChangeOptions
): () => void {
  const { onError, ...watchOptions } = options ?? {}
  return listen(watch<T>(selector, watchOptions), listener, onError)
}
/** One page of the selected entries and the cursor of the next; see `StorageApi.page`. @since 0.2.0 */
export function page<T = Json>(options?: PageOptions): Promise<Page<T>> {
  return withDefault((client) => client.page<T>(options))
}
/** How many keys a selector selects. @since 0.2.0 */
export function count(selector?: Selector): Promise<number> {
  return withDefault((client) => client.count(selector))
}
/** Begins an atomic commit of checks and writes; see `StorageApi.atomic`. @since 0.2.0 */
export function atomic(): Atomic<Promise<CommitResult>> {
  return makeAtomic((operations) => withDefault((client) => committers.get(client)!(operations)))
}
/** Runs `f` in one transaction; see `StorageApi.transaction`. @since 0.2.0 */
export function transaction<A>(f: (tx: StorageApi) => Promise<A>): Promise<A> {
  return withDefault((client) => client.transaction(f))
}
/** The value of a key with its metadata, or `null` when absent. @since 0.2.0 */
export function getEntry<T = Json>(key: string, options?: StoreOptions): Promise<StoredEntry<T> | null> {
  return withDefault((client) => client.getEntry<T>(key, options))
}
/** The values of the keys that exist. @since 0.1.0 */
export function getMany<T = Json>(keys: Iterable<string>, options?: StoreOptions): Promise<Map<string, T>> {
  return withDefault((client) => client.getMany<T>(keys, options))
}
/** Stores many values: all of them or none. @since 0.1.0 */
export function setMany(entries: SetManyEntries, options?: SetOptions): Promise<void> {
  return withDefault((client) => client.setMany(entries, options))
}
/** Removes many keys, all or none; returns how many existed. @since 0.1.0 */
export function deleteMany(keys: Iterable<string>, options?: StoreOptions): Promise<number> {
  return withDefault((client) => client.deleteMany(keys, options))
}
/** Total UTF-8 bytes of the stored values of a store. @since 0.1.0 */
export function size(options?: StoreOptions): Promise<number> {
  return withDefault((client) => client.size(options))
}

/** Every store that holds an entry, in code point order, with its entry count and size. @since 0.5.0 */
export function stores(): Promise<Array<StoreSummary>> {
  return withDefault((client) => client.stores())
}
/** Atomically replaces a value with `f(current)`; see `StorageApi.update`. @since 0.1.0 */
export function update<T = Json>(key: string, f: (current: T) => T, options?: UpdateOptions<T>): Promise<T> {
  return withDefault((client) => client.update<T>(key, f, options))
}
