/**
 * The `Storage` service: persistent, isolated, typed-error key-value storage of JSON values.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { DatabaseError, ReadFailedError, StorageError, WriteFailedError } from "../errors/StorageError.js"
import {
  GenericError,
  InvalidKeyError,
  isStorageError,
  NotFoundError,
  SerializationError
} from "../errors/StorageError.js"
import type { Backend, EffectPrimitives, Primitives, Row } from "../internal/backend.js"
import { InvalidStoredJson, parse, serialize } from "../internal/json.js"
import { compareCodePoints } from "../internal/order.js"
import { quote } from "../internal/quote.js"
import { checkKey, checkKeyList, eachEntry, resolveStore } from "../internal/validate.js"

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
export type UpdateError = WriteError | ReadValueError | NotFoundError

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

// The operations are written once, as programs: plain synchronous validation, serialization and decoding around
// the backend primitives they yield. A refusal is thrown (always one of the library's errors); a sync backend
// runs a program in one call, an effectful one step by step.

/** A request for one backend primitive. */
class Call {
  constructor(
    readonly name: keyof Primitives,
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

const requireKeys = (keys: unknown): ReadonlyArray<string> => {
  const checked = checkKeyList(keys)
  if (checked instanceof InvalidKeyError) throw checked
  return checked
}

const encode = (store: string, key: string, value: unknown): string | SerializationError => {
  const text = serialize(value)
  return typeof text === "string"
    ? text
    : new SerializationError({ key, store, path: text.path, reason: text.reason, cause: text.cause })
}

const decode = (store: string, key: string, text: string): Json => {
  const value = parse(text)
  if (value instanceof InvalidStoredJson) throw invalidStored(store, key, value)
  return value as Json
}

const decodeRows = (store: string, rows: ReadonlyArray<Row>): Array<Entry> => {
  const entries: Array<Entry> = new Array(rows.length)
  for (let index = 0; index < rows.length; index++) {
    const [key, text] = rows[index]!
    entries[index] = { key, value: decode(store, key, text) }
  }
  return entries
}

const programs = {
  *get(key: string, options?: StoreOptions): Program<Option.Option<Json>> {
    const store = storeOf(options)
    const text = yield* call("get", store, requireKey(key))
    return text === undefined ? Option.none() : Option.some(decode(store, key, text))
  },
  *set(key: string, value: unknown, options?: StoreOptions): Program<void> {
    const store = storeOf(options)
    const text = encode(store, requireKey(key), value)
    if (typeof text !== "string") throw text
    yield* call("setMany", store, [[key, text]])
  },
  *remove(key: string, options?: StoreOptions): Program<boolean> {
    const store = storeOf(options)
    return (yield* call("deleteMany", store, [requireKey(key)])) > 0
  },
  *clear(options?: StoreOptions): Program<void> {
    yield* call("clear", storeOf(options))
  },
  *keys(options?: StoreOptions): Program<ReadonlyArray<string>> {
    return yield* call("keys", storeOf(options))
  },
  *has(key: string, options?: StoreOptions): Program<boolean> {
    const store = storeOf(options)
    return yield* call("has", store, requireKey(key))
  },
  *entries(options?: StoreOptions): Program<ReadonlyArray<Entry>> {
    const store = storeOf(options)
    return decodeRows(store, yield* call("entries", store))
  },
  *getMany(keys: Iterable<string>, options?: StoreOptions): Program<ReadonlyMap<string, Json>> {
    const checked = requireKeys(keys)
    const store = storeOf(options)
    if (checked.length === 0) return new Map()
    const rows = [...(yield* call("getMany", store, checked))].sort((a, b) => compareCodePoints(a[0], b[0]))
    const values = new Map<string, Json>()
    for (const [key, text] of rows) values.set(key, decode(store, key, text))
    return values
  },
  *setMany(entries: SetManyEntries, options?: StoreOptions): Program<void> {
    const store = storeOf(options)
    // Every value is checked, even one that a later pair for the same key replaces: a refused value anywhere
    // refuses the batch. The last value of a repeated key is the one written.
    const rows: Array<Row> = []
    const positions = new Map<string, number>()
    const invalid = eachEntry(entries, (key, value) => {
      const text = encode(store, key, value)
      if (typeof text !== "string") throw text
      const position = positions.get(key)
      if (position === undefined) {
        positions.set(key, rows.length)
        rows.push([key, text])
      } else {
        rows[position] = [key, text]
      }
    })
    if (invalid !== undefined) throw invalid
    if (rows.length > 0) yield* call("setMany", store, rows)
  },
  *deleteMany(keys: Iterable<string>, options?: StoreOptions): Program<number> {
    const checked = requireKeys(keys)
    const store = storeOf(options)
    return checked.length === 0 ? 0 : yield* call("deleteMany", store, checked)
  },
  *size(options?: StoreOptions): Program<number> {
    return yield* call("size", storeOf(options))
  },
  *update(key: string, f: (current: Json) => unknown, options?: UpdateOptions): Program<Json> {
    const store = storeOf(options)
    requireKey(key)
    if (typeof f !== "function") {
      throw new InvalidKeyError({ reason: `update needs a function of the current value, got ${typeof f}` })
    }
    const hasDefault = typeof options === "object" && options !== null && Object.hasOwn(options, "default")
    const next = (text: string | undefined): string | StorageError => {
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
    return parse(yield* call("update", store, key, next)) as Json
  }
}

/** Runs the rest of a program on synchronous primitives, from its first step: its result, or it throws. */
const finishSync = <A>(primitives: Primitives, program: Program<A>, first: IteratorResult<Call, A>): A => {
  let step = first
  while (!step.done) {
    const { name, args } = step.value
    step = program.next((primitives[name] as (...args: ReadonlyArray<unknown>) => unknown)(...args))
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

/** Runs a program on effectful primitives, one primitive at a time. */
const runEffect = <A>(primitives: EffectPrimitives, program: Program<A>): Effect.Effect<A, StorageError> => {
  const next = (input: unknown): Effect.Effect<A, StorageError> => {
    let step: IteratorResult<Call, A>
    try {
      step = program.next(input)
    } catch (thrown) {
      return Effect.fail(asStorageError(thrown))
    }
    if (step.done) return Effect.succeed(step.value)
    const { name, args } = step.value
    return Effect.flatMap(
      (primitives[name] as (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, StorageError>)(...args),
      next
    )
  }
  return next(undefined)
}

type Programs = typeof programs
type Result<K extends keyof Programs> = ReturnType<Programs[K]> extends Program<infer A> ? A : never

/**
 * An operation begun on no connection yet: its arguments are checked and its values serialized (throwing the
 * library's error when they are refused), so what it will do is fixed at the moment it is called. `resume` runs
 * the rest on a connection's primitives.
 *
 * @internal
 */
export interface Begun<A> {
  readonly resume: (primitives: Primitives) => A
}

/**
 * Begins an operation: what the Promise API does when it is called, before (or without) waiting for a connection.
 *
 * @internal
 */
export const begin = <K extends keyof Programs>(name: K, ...args: Parameters<Programs[K]>): Begun<Result<K>> => {
  const program = (programs[name] as (...args: Parameters<Programs[K]>) => Program<Result<K>>)(...args)
  let first: IteratorResult<Call, Result<K>>
  try {
    first = program.next()
  } catch (thrown) {
    throw asStorageError(thrown)
  }
  return {
    resume: (primitives) => {
      try {
        return finishSync(primitives, program, first)
      } catch (thrown) {
        throw asStorageError(thrown)
      }
    }
  }
}

const mapPrograms = <F>(f: <A>(program: (...args: Array<never>) => Program<A>) => F): Record<keyof Programs, F> => {
  const result = {} as Record<keyof Programs, F>
  for (const name of Object.keys(programs) as Array<keyof Programs>) {
    result[name] = f(programs[name] as (...args: Array<never>) => Program<unknown>)
  }
  return result
}

/**
 * Builds the service from a backend's primitives. Validation, serialization, decoding and the order of `getMany`
 * live in the programs above, once, so every backend behaves the same by construction.
 *
 * @internal
 */
export const make = (backend: Backend): StorageService =>
  (backend._tag === "Sync"
    ? mapPrograms(
        (program) =>
          (...args: Array<never>) =>
            Effect.suspend(() => {
              const run = program(...args)
              try {
                return Effect.succeed(finishSync(backend.primitives, run, run.next()))
              } catch (thrown) {
                return Effect.fail(asStorageError(thrown))
              }
            })
      )
    : mapPrograms(
        (program) =>
          (...args: Array<never>) =>
            Effect.suspend(() => runEffect(backend.primitives, program(...args)))
      )) as unknown as StorageService
