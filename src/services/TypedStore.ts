/**
 * Schema-typed stores: a view of one store of the `Storage` service whose values are a `Schema`'s `Type`, encoded
 * with the schema before they are stored and decoded after they are read, as Effect's `KeyValueStore.forSchema`.
 *
 * @since 0.3.0
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { GenericError, SerializationError } from "../errors/StorageError.js"
import {
  type Change,
  type Entry,
  type Page,
  type PageOptions,
  type ReadError,
  type ReadValueError,
  type RemoveError,
  type Selector,
  type SetOptions,
  Storage,
  type StorageService,
  type StoredEntry,
  type UpdateError,
  type WatchError,
  type WatchOptions,
  type WatchSelector,
  type WriteError
} from "./Storage.js"

/**
 * The operations of a typed store: those of the `Storage` service, on its one store (selectors and options take no
 * `store`), with values of type `A`. A value that the schema refuses to encode (before anything is written) or a
 * stored value it refuses to decode fails with `SerializationError` (9006), whose `path` and `reason` are Schema's
 * own (`$.items[1].price`, "Expected number, actual \"x\"").
 *
 * @since 0.3.0
 */
export interface TypedStore<A> {
  /** The store this view reads and writes. */
  readonly store: string
  readonly get: (key: string) => Effect.Effect<Option.Option<A>, ReadValueError>
  readonly set: (key: string, value: A, options?: Omit<SetOptions, "store">) => Effect.Effect<void, WriteError>
  readonly remove: (key: string) => Effect.Effect<boolean, RemoveError>
  readonly clear: Effect.Effect<void, RemoveError>
  readonly has: (key: string) => Effect.Effect<boolean, ReadError>
  readonly keys: (selector?: Omit<Selector, "store">) => Effect.Effect<ReadonlyArray<string>, ReadError>
  readonly count: (selector?: Omit<Selector, "store">) => Effect.Effect<number, ReadError>
  readonly size: Effect.Effect<number, ReadError>
  readonly entries: (selector?: Omit<Selector, "store">) => Effect.Effect<ReadonlyArray<Entry<A>>, ReadValueError>
  readonly list: (selector?: Omit<Selector, "store">) => Stream.Stream<Entry<A>, ReadValueError>
  readonly page: (options?: Omit<PageOptions, "store">) => Effect.Effect<Page<A>, ReadValueError>
  readonly getEntry: (key: string) => Effect.Effect<Option.Option<StoredEntry<A>>, ReadValueError>
  readonly getMany: (keys: Iterable<string>) => Effect.Effect<ReadonlyMap<string, A>, ReadValueError>
  /** Stores many values, all or none: one refused by the schema refuses the batch before anything is written. */
  readonly setMany: (
    entries: Iterable<readonly [string, A]> | Readonly<Record<string, A>>,
    options?: Omit<SetOptions, "store">
  ) => Effect.Effect<void, WriteError>
  readonly deleteMany: (keys: Iterable<string>) => Effect.Effect<number, RemoveError>
  /** Atomically replaces a value with `f(current)` (decoded, then encoded, inside the write's transaction). */
  readonly update: (
    key: string,
    f: (current: A) => A,
    options?: { readonly default?: A; readonly expireIn?: SetOptions["expireIn"] }
  ) => Effect.Effect<A, UpdateError>
  /** The store's changes with decoded values; see `StorageService.watch`. */
  readonly watch: (
    selector?: Omit<WatchSelector, "store">,
    options?: WatchOptions
  ) => Stream.Stream<Change<A>, WatchError>
}

/** A Schema failure as the library's error: where (Schema's path, as `$.a[0]`) and what (Schema's message). */
const refusal = (store: string, key: string, error: ParseResult.ParseError, what: string): SerializationError => {
  const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const path = `$${(first?.path ?? []).map((part) => (typeof part === "number" ? `[${part}]` : `.${String(part)}`)).join("")}`
  return new SerializationError({
    key,
    store,
    path,
    reason: `${what}: ${first?.message ?? ParseResult.TreeFormatter.formatErrorSync(error)}`,
    cause: error
  })
}

/**
 * A typed view of one store (`"default"` when none is given) of a `Storage` service. The schema must need no
 * context and be synchronous (its encoding runs inside `update`'s transaction).
 *
 * @since 0.3.0
 */
export const forSchema = <A, I>(
  storage: StorageService,
  schema: Schema.Schema<A, I>,
  options?: { readonly store?: string | undefined }
): TypedStore<A> => {
  const store = options?.store ?? "default"
  const at = { store }
  const encodeSync = Schema.encodeSync(schema)
  const decodeSync = Schema.decodeUnknownSync(schema)
  const encode = (key: string, value: A): Effect.Effect<I, SerializationError> =>
    Effect.mapError(Schema.encode(schema)(value), (error) => refusal(store, key, error, "is refused by the schema"))
  const decode = (key: string, value: unknown): Effect.Effect<A, SerializationError> =>
    Effect.mapError(Schema.decodeUnknown(schema)(value), (error) =>
      refusal(store, key, error, "is stored as a value the schema cannot decode")
    )
  const decodeEntry = <E extends { readonly key: string; readonly value: unknown }>(entry: E) =>
    Effect.map(decode(entry.key, entry.value), (value) => ({ ...entry, value }))
  const decodeEntries = (entries: ReadonlyArray<Entry>) => Effect.forEach(entries, decodeEntry)
  const decodeChange = (change: Change): Effect.Effect<Change<A>, SerializationError> =>
    change.type === "set" ? decodeEntry(change) : Effect.succeed(change)
  return {
    store,
    get: (key) =>
      Effect.flatMap(storage.get(key, at), (found) =>
        Option.isNone(found) ? Effect.succeedNone : Effect.asSome(decode(key, found.value))
      ),
    set: (key, value, options) =>
      Effect.flatMap(encode(key, value), (encoded) => storage.set(key, encoded, { ...options, ...at })),
    remove: (key) => storage.remove(key, at),
    clear: storage.clear(at),
    has: (key) => storage.has(key, at),
    keys: (selector) => storage.keys({ ...selector, ...at }),
    count: (selector) => storage.count({ ...selector, ...at }),
    size: storage.size(at),
    entries: (selector) => Effect.flatMap(storage.entries({ ...selector, ...at }), decodeEntries),
    list: (selector) => Stream.mapEffect(storage.list({ ...selector, ...at }), decodeEntry),
    page: (options) =>
      Effect.flatMap(storage.page({ ...options, ...at }), (page) =>
        Effect.map(decodeEntries(page.entries), (entries) => ({ entries, cursor: page.cursor }))
      ),
    getEntry: (key) =>
      Effect.flatMap(storage.getEntry(key, at), (found) =>
        Option.isNone(found) ? Effect.succeedNone : Effect.asSome(decodeEntry(found.value))
      ),
    getMany: (keys) =>
      Effect.flatMap(storage.getMany(keys, at), (values) =>
        Effect.map(
          Effect.forEach(values, ([key, value]) =>
            Effect.map(decode(key, value), (decoded) => [key, decoded] as const)
          ),
          (pairs) => new Map(pairs)
        )
      ),
    setMany: (entries, options) =>
      Effect.flatMap(
        Effect.forEach(
          Symbol.iterator in entries
            ? (entries as Iterable<readonly [string, A]>)
            : Object.entries(entries as Readonly<Record<string, A>>),
          ([key, value]) => Effect.map(encode(key, value), (encoded) => [key, encoded] as const)
        ),
        (encoded) => storage.setMany(encoded, { ...options, ...at })
      ),
    deleteMany: (keys) => storage.deleteMany(keys, at),
    update: (key, f, options) => {
      // The function runs inside the write's transaction: a schema failure there is kept, and becomes the
      // operation's SerializationError (nothing is written).
      let refused: SerializationError | undefined
      const step = (current: unknown): unknown => {
        try {
          return encodeSync(f(decodeSync(current)))
        } catch (cause) {
          if (ParseResult.isParseError(cause)) refused = refusal(store, key, cause, "is refused by the schema")
          throw cause
        }
      }
      const expiry = options?.expireIn === undefined ? {} : { expireIn: options.expireIn }
      const updateOptions =
        options !== undefined && Object.hasOwn(options, "default")
          ? Effect.map(encode(key, options.default as A), (encoded) => ({ ...at, ...expiry, default: encoded }))
          : Effect.succeed({ ...at, ...expiry })
      return Effect.flatMap(updateOptions, (resolved) =>
        storage.update(key, step, resolved).pipe(
          Effect.mapError((error) => (refused !== undefined && error instanceof GenericError ? refused : error)),
          Effect.flatMap((stored) => decode(key, stored))
        )
      )
    },
    watch: (selector, options) => Stream.mapEffect(storage.watch({ ...selector, ...at }, options), decodeChange)
  }
}

/**
 * A layer that provides a typed store as its own service, for apps that inject it:
 *
 * ```ts
 * class Settings extends Context.Tag("app/Settings")<Settings, TypedStore<AppSettings>>() {}
 * const SettingsLive = layerTyped(Settings, AppSettings, { store: "settings" }) // Layer<Settings, never, Storage>
 * ```
 *
 * @since 0.3.0
 */
export const layerTyped = <Id, A, I>(
  tag: Context.Tag<Id, TypedStore<A>>,
  schema: Schema.Schema<A, I>,
  options?: { readonly store?: string | undefined }
): Layer.Layer<Id, never, Storage> =>
  Layer.effect(
    tag,
    Effect.map(Storage, (storage) => forSchema(storage, schema, options))
  )
