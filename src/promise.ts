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
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import {
  type DatabaseError,
  GenericError,
  InvalidKeyError,
  isStorageError,
  type StorageError
} from "./errors/StorageError.js"
import { checkKey, resolveStore } from "./internal/validate.js"
import { type Durability, makeSqlitePrimitives } from "./layers/Sqlite.js"
import { defaultDatabasePath, resolveDefaultFilename } from "./location.js"
import { type Json, makeSync, type SetManyEntries, type StoreOptions, type SyncStorage } from "./services/Storage.js"

export * from "./errors/StorageError.js"
export type { Durability } from "./layers/Sqlite.js"
export { defaultDatabasePath, type PlatformInfo } from "./location.js"
export type { Json, SetManyEntries, StoreOptions } from "./services/Storage.js"

/**
 * Where a client keeps its data. Give `app` (the database is then at the platform's default location, see
 * `defaultDatabasePath`) or `filename`.
 *
 * @since 0.1.0
 */
export interface OpenOptions {
  /** The application's name: the database is `<platform data directory>/<app>/storage.db`. */
  readonly app?: string | undefined
  /** The database file, instead of the default location (or `":memory:"`). */
  readonly filename?: string | undefined
  /** `"relaxed"` (default) or `"strict"`: see `Durability`. */
  readonly durability?: Durability | undefined
  /** Milliseconds to wait for another process's lock before failing. Default 5000. */
  readonly busyTimeout?: number | undefined
}

/**
 * The operations of the Promise API. A missing key reads as `null`.
 *
 * @since 0.1.0
 */
export interface StorageApi {
  get<T = Json>(key: string, options?: StoreOptions): Promise<T | null>
  set<T>(key: string, value: T, options?: StoreOptions): Promise<void>
  remove(key: string, options?: StoreOptions): Promise<boolean>
  clear(options?: StoreOptions): Promise<void>
  keys(options?: StoreOptions): Promise<Array<string>>
  has(key: string, options?: StoreOptions): Promise<boolean>
  entries<T = Json>(options?: StoreOptions): Promise<Array<{ key: string; value: T }>>
  getMany<T = Json>(keys: Iterable<string>, options?: StoreOptions): Promise<Map<string, T>>
  setMany(entries: SetManyEntries, options?: StoreOptions): Promise<void>
  deleteMany(keys: Iterable<string>, options?: StoreOptions): Promise<number>
  size(options?: StoreOptions): Promise<number>
  /**
   * Atomically replaces a value with `f(current)` and returns the new value; across processes too. An absent key
   * rejects with `NotFound` (9001) unless `options.default` is given.
   */
  update<T = Json>(key: string, f: (current: T) => T, options?: UpdateOptions<T>): Promise<T>
}

/**
 * The options of `update`: the store, and the value `f` receives when the key is absent.
 *
 * @since 0.1.0
 */
export interface UpdateOptions<T = Json> extends StoreOptions {
  readonly default?: T
}

/**
 * A client of one database, from {@link open}: one runtime and one connection, opened on first use and closed
 * by `close()` (or `await using`).
 *
 * @since 0.1.0
 */
export interface StorageClient extends StorageApi, AsyncDisposable {
  /** The database file of this client. */
  readonly filename: string
  /** Closes the database. Later calls reject with `GenericError` (9000); closing again does nothing. */
  close(): Promise<void>
}

/** Turns a failed exit into the error to reject with: the library's own error, never a FiberFailure. */
const toError = (cause: Cause.Cause<StorageError>): Error => {
  const error = Cause.squash(cause)
  if (isStorageError(error)) return error
  if (Cause.isInterruptedOnly(cause)) {
    return new GenericError({ reason: "The operation was interrupted because the storage was closed", cause: error })
  }
  return new GenericError({ reason: "Unexpected failure in runtime-storage", cause: error })
}

const closedError = (filename: string): GenericError =>
  new GenericError({ reason: `The storage client of ${JSON.stringify(filename)} is closed` })

/**
 * Builds the Promise API over a way to run service operations.
 */
const makeApi = (run: <A>(f: (storage: SyncStorage) => A) => Promise<A>): StorageApi => ({
  get: <T>(key: string, options?: StoreOptions) =>
    run((storage) => Option.getOrNull(storage.get(key, options)) as T | null),
  set: (key, value, options) => run((storage) => storage.set(key, value, options)),
  remove: (key, options) => run((storage) => storage.remove(key, options)),
  clear: (options) => run((storage) => storage.clear(options)),
  keys: (options) => run((storage) => storage.keys(options) as Array<string>),
  has: (key, options) => run((storage) => storage.has(key, options)),
  entries: <T>(options?: StoreOptions) =>
    run((storage) => storage.entries(options) as Array<{ key: string; value: T }>),
  getMany: <T>(keys: Iterable<string>, options?: StoreOptions) =>
    run((storage) => storage.getMany(keys, options) as Map<string, T>),
  setMany: (entries, options) => run((storage) => storage.setMany(entries, options)),
  deleteMany: (keys, options) => run((storage) => storage.deleteMany(keys, options)),
  size: (options) => run((storage) => storage.size(options)),
  update: <T>(key: string, f: (current: T) => T, options?: UpdateOptions<T>) =>
    run((storage) => storage.update(key, f as (current: Json) => unknown, options) as T)
})

interface PendingGet {
  readonly key: unknown
  readonly options: unknown
  readonly resolve: (value: Json | null) => void
  readonly reject: (error: unknown) => void
}

/**
 * Collects the gets made in one tick and answers them together, when the microtasks run: one `getMany` per store
 * (one snapshot, so they agree with each other), and each get on its own when there is just one, when its key or
 * store is invalid (so it rejects with its own error), when its key is asked twice (each caller gets a fresh
 * value), or when the `getMany` fails (so only the get whose value is bad fails).
 */
const makeReadBatcher = (filename: string, connection: () => SyncStorage | undefined) => {
  let queue: Array<PendingGet> = []
  const one = (storage: SyncStorage, pending: PendingGet): void => {
    try {
      pending.resolve(Option.getOrNull(storage.get(pending.key as string, pending.options as StoreOptions)))
    } catch (error) {
      pending.reject(error)
    }
  }
  const flush = (): void => {
    const batch = queue
    if (batch.length === 0) return
    queue = []
    const storage = connection()
    if (storage === undefined) {
      for (const pending of batch) pending.reject(closedError(filename))
      return
    }
    if (batch.length === 1) {
      one(storage, batch[0]!)
      return
    }
    const byStore = new Map<string, Array<PendingGet>>()
    const alone: Array<PendingGet> = []
    for (const pending of batch) {
      const store = resolveStore(pending.options)
      if (typeof store !== "string" || checkKey(pending.key) !== undefined) {
        alone.push(pending)
        continue
      }
      const group = byStore.get(store)
      if (group === undefined) byStore.set(store, [pending])
      else group.push(pending)
    }
    for (const [store, group] of byStore) {
      let values: ReadonlyMap<string, Json>
      try {
        values = storage.getMany(
          group.map((pending) => pending.key as string),
          { store }
        )
      } catch {
        alone.push(...group)
        continue
      }
      const answered = new Set<unknown>()
      for (const pending of group) {
        if (answered.has(pending.key)) {
          alone.push(pending)
          continue
        }
        answered.add(pending.key)
        pending.resolve(values.get(pending.key as string) ?? null)
      }
    }
    for (const pending of alone) one(storage, pending)
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
          const storage = connection()
          if (storage !== undefined) {
            tickOpen = true
            queueMicrotask(endTick)
            one(storage, { key, options, resolve, reject })
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

/** The synchronous operations of one connection, for the clients of this module. */
class Connection extends Context.Tag("runtime-storage/promise/Connection")<Connection, SyncStorage>() {}

const filenameOf = (options: OpenOptions): string => {
  if (options === null || typeof options !== "object") {
    throw new InvalidKeyError({
      reason: 'open() takes an options object: { app: "my-app" } or { filename: "/path/storage.db" }'
    })
  }
  if (options.app !== undefined) return defaultDatabasePath(options.app)
  if (typeof options.filename === "string" && options.filename !== "") return options.filename
  throw new InvalidKeyError({
    reason: 'open() needs { app: "my-app" } (for the platform\'s default location) or { filename: "/path/storage.db" }'
  })
}

/**
 * Opens a client on a database file. Throws `InvalidKeyError` (9004) for options naming no valid app or file. Nothing touches the disk until the first call, which opens the database
 * once for the life of the client.
 *
 * @since 0.1.0
 */
export const open = (options: OpenOptions): StorageClient => {
  const filename = filenameOf(options)
  // The same programs as the Effect service, run synchronously on the connection: no fiber per call.
  const layer = Layer.scoped(
    Connection,
    Effect.map(
      makeSqlitePrimitives({ filename, durability: options.durability, busyTimeout: options.busyTimeout ?? 5000 }),
      makeSync
    )
  )
  type Connected = {
    readonly runtime: ManagedRuntime.ManagedRuntime<Connection, DatabaseError>
    readonly storage: SyncStorage
  }
  let connected: Promise<Connected> | undefined
  let closed: Promise<void> | undefined
  const connect = (): Promise<Connected> => {
    if (connected === undefined) {
      const runtime = ManagedRuntime.make(layer)
      const attempt: Promise<Connected> = runtime.runPromiseExit(Connection).then((exit) => {
        if (Exit.isSuccess(exit)) {
          ready = exit.value
          return { runtime, storage: exit.value }
        }
        // A failed open is not kept: the next call tries again (the lock may be gone, the disk freed).
        if (connected === attempt) connected = undefined
        void runtime.dispose()
        throw toError(exit.cause)
      })
      connected = attempt
    }
    return connected
  }
  // Once connected, a call runs at once: a rejection is what the operation threw, always a coded error.
  let ready: SyncStorage | undefined
  const attempt = <A>(storage: SyncStorage, f: (storage: SyncStorage) => A): Promise<A> => {
    try {
      return Promise.resolve(f(storage))
    } catch (error) {
      return Promise.reject(error)
    }
  }
  const run = <A>(f: (storage: SyncStorage) => A): Promise<A> => {
    if (closed !== undefined) return Promise.reject(closedError(filename))
    if (ready !== undefined) {
      reads.flush()
      return attempt(ready, f)
    }
    return connect().then((connection) => {
      if (closed !== undefined) throw closedError(filename)
      return f(connection.storage)
    })
  }
  const reads = makeReadBatcher(filename, () => (closed === undefined ? ready : undefined))
  const close = (): Promise<void> => {
    reads.flush()
    ready = undefined
    closed ??= (connected ?? Promise.resolve(undefined)).then(
      (open) => open?.runtime.dispose(),
      () => undefined
    )
    return closed
  }
  const api = makeApi(run)
  return {
    ...api,
    // Gets made in the same tick are answered by one getMany per store: concurrent reads cost about one query.
    get: <T>(key: string, options?: StoreOptions) =>
      ready === undefined || closed !== undefined
        ? api.get<T>(key, options)
        : (reads.get(key, options) as Promise<T | null>),
    filename,
    close,
    [Symbol.asyncDispose]: close
  }
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
  if (defaultClient !== undefined && !defaultClosed) {
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
export const databasePath = (): string => defaultClient?.filename ?? resolveDefaultFilename(defaultOptions)

const withDefault = <A>(f: (client: StorageApi) => Promise<A>): Promise<A> => {
  if (defaultClient === undefined) {
    if (defaultClosed) return Promise.reject(new GenericError({ reason: "The default storage instance is closed" }))
    try {
      defaultClient = open({ ...defaultOptions, app: undefined, filename: resolveDefaultFilename(defaultOptions) })
    } catch (error) {
      return Promise.reject(error)
    }
  }
  return f(defaultClient)
}

/** The value of a key, or `null` when it is absent. @since 0.1.0 */
export function get<T = Json>(key: string, options?: StoreOptions): Promise<T | null> {
  return withDefault((client) => client.get<T>(key, options))
}
/** Stores a JSON value, inserting or overwriting. @since 0.1.0 */
export function set<T>(key: string, value: T, options?: StoreOptions): Promise<void> {
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
/** The keys of a store, in ascending code point order. @since 0.1.0 */
export function keys(options?: StoreOptions): Promise<Array<string>> {
  return withDefault((client) => client.keys(options))
}
/** Whether a key exists. @since 0.1.0 */
export function has(key: string, options?: StoreOptions): Promise<boolean> {
  return withDefault((client) => client.has(key, options))
}
/** The keys and values of a store, in ascending code point order of the key. @since 0.1.0 */
export function entries<T = Json>(options?: StoreOptions): Promise<Array<{ key: string; value: T }>> {
  return withDefault((client) => client.entries<T>(options))
}
/** The values of the keys that exist. @since 0.1.0 */
export function getMany<T = Json>(keys: Iterable<string>, options?: StoreOptions): Promise<Map<string, T>> {
  return withDefault((client) => client.getMany<T>(keys, options))
}
/** Stores many values: all of them or none. @since 0.1.0 */
export function setMany(entries: SetManyEntries, options?: StoreOptions): Promise<void> {
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
/** Atomically replaces a value with `f(current)`; see `StorageApi.update`. @since 0.1.0 */
export function update<T = Json>(key: string, f: (current: T) => T, options?: UpdateOptions<T>): Promise<T> {
  return withDefault((client) => client.update<T>(key, f, options))
}
