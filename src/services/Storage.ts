/**
 * The `Storage` service: persistent, isolated, typed-error key-value storage of JSON values.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { DatabaseError, InvalidKeyError, ReadFailedError, WriteFailedError } from "../errors/StorageError.js"
import { GenericError, NotFoundError, SerializationError } from "../errors/StorageError.js"
import type { Backend, Row } from "../internal/backend.js"
import { InvalidStoredJson, parse, serialize } from "../internal/json.js"
import { compareCodePoints } from "../internal/order.js"
import { quote } from "../internal/quote.js"
import { checkEntries, checkKey, checkKeyList, resolveStore } from "../internal/validate.js"

/**
 * A JSON value: what can be stored and what comes back.
 *
 * @since 0.1.0
 */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/**
 * The options every operation takes. `store` selects an isolated named store; `"default"` when absent.
 *
 * @since 0.1.0
 */
export interface StoreOptions {
  readonly store?: string | undefined
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
 * The entries of `setMany`: a plain record, or an iterable (an array, a `Map`) of `[key, value]` pairs.
 *
 * @since 0.1.0
 */
export type SetManyEntries = Readonly<Record<string, unknown>> | Iterable<readonly [string, unknown]>

/**
 * How a read can fail: a refused key or store name, SQLite failing to read, or a database that is unusable.
 *
 * @since 0.1.0
 */
export type ReadError = InvalidKeyError | ReadFailedError | DatabaseError

/**
 * How a read of values can fail: as any read, or because a stored value is not valid JSON.
 *
 * @since 0.1.0
 */
export type ReadValueError = ReadError | SerializationError

/**
 * How a removal can fail: a refused key or store name, SQLite failing to write, or an unusable database.
 *
 * @since 0.1.0
 */
export type RemoveError = InvalidKeyError | WriteFailedError | DatabaseError

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
export interface UpdateOptions extends StoreOptions {
  /** The value the update function receives when the key is absent. Without it, an absent key is `NotFound`. */
  readonly default?: unknown
}

/**
 * How an update can fail: as a read or a write, with `NotFound` (9001) for an absent key without a default, or
 * `Generic` (9000) when the update function throws.
 *
 * @since 0.1.0
 */
export type UpdateError = WriteError | ReadValueError | NotFoundError | GenericError

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
   * included); anything else (`undefined`, `NaN`, a `Date`, a cycle, …) fails with `SerializationError` and
   * writes nothing.
   */
  readonly set: (key: string, value: unknown, options?: StoreOptions) => Effect.Effect<void, WriteError>
  /** Removes a key; `true` when it existed. */
  readonly remove: (key: string, options?: StoreOptions) => Effect.Effect<boolean, RemoveError>
  /** Removes every key of the store, and of no other store. */
  readonly clear: (options?: StoreOptions) => Effect.Effect<void, RemoveError>
  /** The keys of the store, in ascending code point order. */
  readonly keys: (options?: StoreOptions) => Effect.Effect<ReadonlyArray<string>, ReadError>
  /** Whether the key exists. */
  readonly has: (key: string, options?: StoreOptions) => Effect.Effect<boolean, ReadError>
  /** The keys and values of the store, in ascending code point order of the key. */
  readonly entries: (options?: StoreOptions) => Effect.Effect<ReadonlyArray<Entry>, ReadValueError>
  /** The values of the keys that exist, in ascending code point order of the key. */
  readonly getMany: (
    keys: Iterable<string>,
    options?: StoreOptions
  ) => Effect.Effect<ReadonlyMap<string, Json>, ReadValueError>
  /** Stores many values at once: all of them, or (when any key or value is refused, or SQLite fails) none. */
  readonly setMany: (entries: SetManyEntries, options?: StoreOptions) => Effect.Effect<void, WriteError>
  /** Removes many keys at once, all or none; returns how many existed. */
  readonly deleteMany: (keys: Iterable<string>, options?: StoreOptions) => Effect.Effect<number, RemoveError>
  /** Total size in bytes of the stored values of the store, as UTF-8 JSON text. */
  readonly size: (options?: StoreOptions) => Effect.Effect<number, ReadError>
  /**
   * Atomically replaces the value of a key with `f(current)` and returns the new value: the read and the write
   * happen in one transaction that holds the write lock from its start, so concurrent updates from other fibers
   * or processes are never lost. An absent key fails with `NotFound` (9001) unless `options.default` is given;
   * when `f` throws, or returns what JSON cannot carry, nothing is written.
   */
  readonly update: (
    key: string,
    f: (current: Json) => unknown,
    options?: UpdateOptions
  ) => Effect.Effect<Json, UpdateError>
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

const decode = (store: string, key: string, text: string): Effect.Effect<Json, SerializationError> => {
  const value = parse(text)
  return value instanceof InvalidStoredJson
    ? Effect.fail(invalidStored(store, key, value))
    : Effect.succeed(value as Json)
}

const encode = (store: string, key: string, value: unknown): string | SerializationError => {
  const text = serialize(value)
  return typeof text === "string" ? text : new SerializationError({ key, store, path: text.path, reason: text.reason })
}

/**
 * Builds the service from a backend's primitives. Validation, serialization, decoding and the order of `getMany`
 * live here, once, so every backend behaves the same by construction.
 *
 * @internal
 */
export const make = (backend: Backend): StorageService => {
  const withStore = <A, E>(
    options: StoreOptions | undefined,
    f: (store: string) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | InvalidKeyError> => {
    const store = resolveStore(options)
    return typeof store === "string" ? f(store) : Effect.fail(store)
  }
  const withKey = <A, E>(
    key: string,
    options: StoreOptions | undefined,
    f: (store: string) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | InvalidKeyError> => {
    const invalid = checkKey(key)
    return invalid === undefined ? withStore(options, f) : Effect.fail(invalid)
  }
  const withKeys = <A, E>(
    keys: Iterable<string>,
    options: StoreOptions | undefined,
    f: (store: string, keys: ReadonlyArray<string>) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | InvalidKeyError> => {
    const checked = checkKeyList(keys)
    return Array.isArray(checked)
      ? withStore(options, (store) => f(store, checked))
      : Effect.fail(checked as InvalidKeyError)
  }
  const decodeRows = (store: string, rows: ReadonlyArray<Row>): Effect.Effect<Array<Entry>, SerializationError> =>
    Effect.suspend(() => {
      const entries: Array<Entry> = new Array(rows.length)
      for (let index = 0; index < rows.length; index++) {
        const [key, text] = rows[index]!
        const value = parse(text)
        if (value instanceof InvalidStoredJson) return decode(store, key, text).pipe(Effect.as(entries))
        entries[index] = { key, value: value as Json }
      }
      return Effect.succeed(entries)
    })

  return {
    get: (key, options) =>
      withKey(key, options, (store) =>
        Effect.flatMap(backend.get(store, key), (text) =>
          text === undefined ? Effect.succeedNone : Effect.map(decode(store, key, text), Option.some)
        )
      ),
    set: (key, value, options) =>
      withKey(key, options, (store): Effect.Effect<void, WriteError> => {
        const text = encode(store, key, value)
        return typeof text === "string" ? backend.setMany(store, [[key, text]]) : Effect.fail(text)
      }),
    remove: (key, options) =>
      withKey(key, options, (store) => Effect.map(backend.deleteMany(store, [key]), (removed) => removed > 0)),
    clear: (options) => withStore(options, backend.clear),
    keys: (options) => withStore(options, backend.keys),
    has: (key, options) => withKey(key, options, (store) => backend.has(store, key)),
    entries: (options) =>
      withStore(options, (store) => Effect.flatMap(backend.entries(store), (rows) => decodeRows(store, rows))),
    getMany: (keys, options) =>
      withKeys(keys, options, (store, keys) =>
        Effect.flatMap(backend.getMany(store, keys), (rows) =>
          Effect.map(
            decodeRows(
              store,
              [...rows].sort((a, b) => compareCodePoints(a[0], b[0]))
            ),
            (entries) => {
              const values = new Map<string, Json>()
              for (const entry of entries) values.set(entry.key, entry.value)
              return values as ReadonlyMap<string, Json>
            }
          )
        )
      ),
    setMany: (entries, options) =>
      withStore(options, (store): Effect.Effect<void, WriteError> => {
        const checked = checkEntries(entries)
        if (!Array.isArray(checked)) return Effect.fail(checked as InvalidKeyError)
        // Every value is checked, even one that a later pair for the same key replaces: a refused value anywhere
        // refuses the batch. The last value of a repeated key is the one written.
        const texts = new Map<string, string>()
        for (const [key, value] of checked) {
          const text = encode(store, key, value)
          if (typeof text !== "string") return Effect.fail(text)
          texts.set(key, text)
        }
        const rows = Array.from(texts)
        return rows.length === 0 ? Effect.void : backend.setMany(store, rows)
      }),
    deleteMany: (keys, options) =>
      withKeys(keys, options, (store, keys) =>
        keys.length === 0 ? Effect.succeed(0) : backend.deleteMany(store, keys)
      ),
    size: (options) => withStore(options, backend.size),
    update: (key, f, options) =>
      withKey(key, options, (store) => {
        const hasDefault = typeof options === "object" && options !== null && Object.hasOwn(options, "default")
        const next = (text: string | undefined): string | NotFoundError | SerializationError | GenericError => {
          let current: unknown
          if (text === undefined) {
            if (!hasDefault) return new NotFoundError({ key, store })
            current = options?.default
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
        return Effect.map(backend.update(store, key, next), (text) => parse(text) as Json)
      })
  }
}
