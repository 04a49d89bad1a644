/**
 * A kit for the tests of apps that use runtime-storage: fast-check arbitraries of what the library accepts and of
 * what it refuses, `layerFaulty` to make any `Storage` layer fail the way a disk or a busy database does, and
 * `layerMemory`.
 *
 * The arbitraries are fast-check 3 arbitraries, built with Effect's own copy of fast-check (`effect/FastCheck`), so
 * the kit needs nothing beyond `effect`; use them with your fast-check 3 or with `@effect/vitest`'s `it.prop`.
 *
 * @since 0.4.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import {
  DatabaseError,
  GenericError,
  InvalidKeyError,
  ReadFailedError,
  type StorageError,
  WriteFailedError
} from "./errors/StorageError.js"
import { MAX_KEY_BYTES, MAX_STORE_BYTES } from "./internal/validate.js"
import { type Json, type JsonValue, Storage, type StorageService } from "./services/Storage.js"

/**
 * An in-memory `Storage` with the rules, errors and ordering of the SQLite layers: the fast choice for tests of an
 * app's logic. Test on `layerSqlite({ filename: ":memory:" })` (or a temporary file) when what matters is SQLite
 * itself: locking and several connections, durability, a file's permissions, the exact bytes on disk.
 *
 * @since 0.4.0
 */
export { layerMemory } from "./layers/Memory.js"

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

/**
 * Keys the library accepts: non-empty, well-formed strings of any code points (up to 64 of them here; the limit is
 * 2048 UTF-8 bytes).
 *
 * @since 0.4.0
 */
export const key: FastCheck.Arbitrary<string> = FastCheck.string({ unit: "binary", minLength: 1, maxLength: 64 })

/**
 * Store names the library accepts (the rules of keys; the limit is 256 UTF-8 bytes).
 *
 * @since 0.4.0
 */
export const storeName: FastCheck.Arbitrary<string> = FastCheck.string({ unit: "binary", minLength: 1, maxLength: 32 })

/**
 * JSON values that round-trip exactly: what `get` gives back deep-equals what `set` stored (`-0` included).
 *
 * @since 0.4.0
 */
export const jsonValue: FastCheck.Arbitrary<JsonValue> = FastCheck.jsonValue() as FastCheck.Arbitrary<JsonValue>

/**
 * Every value that can be stored: JSON values that round-trip exactly, and bytes.
 *
 * @since 0.4.0
 */
export const storedValue: FastCheck.Arbitrary<Json> = FastCheck.oneof(
  { weight: 4, arbitrary: jsonValue },
  { weight: 1, arbitrary: FastCheck.uint8Array({ maxLength: 64 }) }
)

/**
 * Keys (and store names, with a longer limit) refused with `InvalidKey` (9004): not strings, empty, holding a lone
 * surrogate, or longer than the limit.
 *
 * @since 0.4.0
 */
export const invalidKey: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  FastCheck.constantFrom<unknown>(undefined, null, 42, true, "", ["a"], { key: "a" }),
  FastCheck.tuple(FastCheck.string({ maxLength: 8 }), FastCheck.integer({ min: 0xd800, max: 0xdfff })).map(
    ([text, surrogate]) => `${text}${String.fromCharCode(surrogate)}`
  ),
  FastCheck.integer({ min: MAX_KEY_BYTES + 1, max: MAX_KEY_BYTES + 100 }).map((length) => "k".repeat(length))
)

/**
 * Store names refused with `InvalidKey` (9004): those of {@link invalidKey} (but `undefined` and `null`, which
 * name the default store), and names over 256 UTF-8 bytes.
 *
 * @since 0.4.0
 */
export const invalidStoreName: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  // (An absent store, undefined or null, is the default store.)
  invalidKey.filter((name) => name !== undefined && name !== null),
  FastCheck.integer({ min: MAX_STORE_BYTES + 1, max: MAX_STORE_BYTES + 100 }).map((length) => "s".repeat(length))
)

/**
 * Values refused with `SerializationError` (9006), at any depth inside a JSON value: what JSON would change or drop
 * (`undefined`, `NaN`, `±Infinity`, functions, symbols, bigints, dates, maps, sets, class instances, typed arrays
 * other than a whole `Uint8Array`, bytes inside a JSON value, sparse arrays).
 *
 * @since 0.4.0
 */
export const unstorableValue: FastCheck.Arbitrary<unknown> = FastCheck.tuple(
  FastCheck.oneof(
    FastCheck.constantFrom<unknown>(
      undefined,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      10n,
      Symbol("s"),
      () => 1,
      new Map([["k", 1]]),
      new Set([1]),
      new Int16Array([1]),
      // biome-ignore lint/suspicious/noSparseArray: a sparse array is what this value is for
      [1, , 3]
    ),
    FastCheck.date().map((date): unknown => date),
    FastCheck.constant(null).map((): unknown => new (class Opaque {})())
  ),
  FastCheck.array(FastCheck.tuple(FastCheck.boolean(), FastCheck.string({ maxLength: 4 })), { maxLength: 3 }),
  FastCheck.boolean()
).map(([leaf, wrappers, bytesInside]) => {
  const inner = bytesInside && wrappers.length > 0 ? new Uint8Array([1]) : leaf
  return wrappers.reduce<unknown>((value, [inArray, name]) => (inArray ? [value] : { [`f${name}`]: value }), inner)
})

/**
 * `expireIn` values refused with `InvalidKey` (9004): not positive, not finite, or not a duration.
 *
 * @since 0.4.0
 */
export const invalidExpireIn: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  FastCheck.constantFrom<unknown>(0, -0, Number.NaN, Number.POSITIVE_INFINITY, "soon", "-5 seconds", {}, true),
  FastCheck.integer({ max: -1 })
)

// ---------------------------------------------------------------------------------------------------------------
// Faults

/**
 * The operations of the service a fault can target.
 *
 * @since 0.4.0
 */
export type Operation = Exclude<keyof StorageService, "atomic"> | "commit"

/**
 * A failure to inject, or a delay: which calls it hits, and how.
 *
 * - `operations`: the operations it hits (every one when absent; an atomic commit is `"commit"`).
 * - `key`: hits only calls about a key it accepts (of a batch, any key).
 * - `every`: hits every Nth call it would hit (the Nth, the 2Nth, …); `probability`: each with that chance, from the
 *   plan's seeded generator. Neither: every call.
 * - `fail`: the code to fail with: 9000 Generic, 9002 WriteFailed, 9003 ReadFailed, 9005 DatabaseError (with
 *   `sqliteCode`, `SQLITE_FULL` by default for 9002); absent, the call is not failed.
 * - `latency`: a delay before the call, on Effect's `Clock` (a `TestClock` drives it).
 *
 * @since 0.4.0
 */
export interface Fault {
  readonly operations?: ReadonlyArray<Operation> | undefined
  readonly key?: ((key: string) => boolean) | undefined
  readonly every?: number | undefined
  readonly probability?: number | undefined
  readonly fail?: 9000 | 9002 | 9003 | 9005 | undefined
  readonly sqliteCode?: string | undefined
  readonly latency?: Duration.DurationInput | undefined
}

/**
 * What `layerFaulty` injects: the faults, tried in order (the first that hits a call fails it; every delay that
 * hits it applies), and the seed of the generator behind `probability` (the same seed, the same failures).
 *
 * @since 0.4.0
 */
export interface FaultPlan {
  readonly faults: ReadonlyArray<Fault>
  readonly seed?: number | undefined
}

/** A small seeded generator (mulberry32): the same seed gives the same draws on every platform. */
const seeded = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const KEYED = new Set<Operation>(["get", "set", "remove", "has", "getEntry", "update"])
const BATCHED = new Set<Operation>(["getMany", "deleteMany"])

/**
 * The arguments of a call with its list of keys or entries (any iterable, a generator included) read once into an
 * array: the fault's `key` predicate reads it, and the wrapped storage then gets the same keys.
 */
const materialized = (operation: Operation, args: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
  const [first, ...rest] = args
  const iterable = first !== null && typeof first === "object" && Symbol.iterator in first
  if (!(BATCHED.has(operation) || operation === "setMany") || !iterable) return args
  try {
    return [Array.from(first as Iterable<unknown>), ...rest]
  } catch (thrown) {
    // An iterable that throws when read: the wrapped storage reads one that throws the same, and refuses it as
    // it would have refused the original.
    const throwing: Iterable<unknown> = {
      [Symbol.iterator]: () => {
        throw thrown
      }
    }
    return [throwing, ...rest]
  }
}

/** The keys a (materialized) call is about, for a fault's `key` predicate. */
const keysOf = (operation: Operation, args: ReadonlyArray<unknown>): ReadonlyArray<string> => {
  const [first] = args
  const isString = (key: unknown): key is string => typeof key === "string"
  if (KEYED.has(operation)) return isString(first) ? [first] : []
  if (BATCHED.has(operation)) return Array.isArray(first) ? first.filter(isString) : []
  if (operation === "setMany" && first !== null && typeof first === "object") {
    return Array.isArray(first)
      ? first.map((pair) => (Array.isArray(pair) ? pair[0] : undefined)).filter(isString)
      : Object.keys(first)
  }
  return []
}

const injected = (fault: Fault, operation: Operation): StorageError => {
  const reason = `Injected by layerFaulty into ${operation}`
  switch (fault.fail) {
    case 9002:
      return new WriteFailedError({ operation, sqliteCode: fault.sqliteCode ?? "SQLITE_FULL", cause: reason })
    case 9003:
      return new ReadFailedError({ operation, sqliteCode: fault.sqliteCode ?? "SQLITE_IOERR", cause: reason })
    case 9005:
      return new DatabaseError({ reason, sqliteCode: fault.sqliteCode })
    default:
      return new GenericError({ reason })
  }
}

/**
 * Wraps any `Storage` layer so that its calls fail, or wait, as the plan says: to test how an app handles
 * `WriteFailed` (a full disk), `ReadFailed`, `DatabaseError` or a slow disk, without breaking one. A failed call does
 * nothing (the wrapped storage is not called). The calls of a transaction's `tx` are the wrapped storage's own: a
 * fault hits the `transaction` call itself. A plan that is refused (a negative `every`, a probability outside
 * [0, 1], an unknown code) fails the layer with `InvalidKey` (9004).
 *
 * ```ts
 * const Faulty = layerFaulty(layerMemory, { faults: [{ operations: ["set"], every: 3, fail: 9002 }] })
 * ```
 *
 * @since 0.4.0
 */
export const layerFaulty = <E, R>(
  layer: Layer.Layer<Storage, E, R>,
  plan: FaultPlan
): Layer.Layer<Storage, E | InvalidKeyError, R> => Layer.provide(faulty(plan), layer)

const faulty = (plan: FaultPlan): Layer.Layer<Storage, InvalidKeyError, Storage> =>
  Layer.effect(
    Storage,
    Effect.gen(function* () {
      for (const fault of plan.faults) {
        const problem =
          fault.every !== undefined && (!Number.isSafeInteger(fault.every) || fault.every < 1)
            ? `every must be a positive integer, got ${fault.every}`
            : fault.probability !== undefined && !(fault.probability >= 0 && fault.probability <= 1)
              ? `probability must be between 0 and 1, got ${fault.probability}`
              : fault.fail !== undefined && ![9000, 9002, 9003, 9005].includes(fault.fail)
                ? `fail must be 9000, 9002, 9003 or 9005, got ${fault.fail}`
                : undefined
        if (problem !== undefined) return yield* Effect.fail(new InvalidKeyError({ reason: `layerFaulty: ${problem}` }))
      }
      const storage = yield* Storage
      // Lists of keys are read before the call only when a fault picks calls by key.
      const byKey = plan.faults.some((fault) => fault.key !== undefined)
      const random = seeded(plan.seed ?? 0)
      const counts = plan.faults.map(() => 0)
      /** The failure and the delay of one call, decided when it is made. */
      const decide = (operation: Operation, args: ReadonlyArray<unknown>) => {
        let failure: StorageError | undefined
        let delay = Duration.zero
        plan.faults.forEach((fault, index) => {
          if (fault.operations !== undefined && !fault.operations.includes(operation)) return
          if (fault.key !== undefined && !keysOf(operation, args).some(fault.key)) return
          counts[index]!++
          if (fault.every !== undefined && counts[index]! % fault.every !== 0) return
          if (fault.probability !== undefined && random() >= fault.probability) return
          if (fault.latency !== undefined) delay = Duration.sum(delay, Duration.decode(fault.latency))
          if (fault.fail !== undefined && failure === undefined) failure = injected(fault, operation)
        })
        return { failure, delay }
      }
      const around = <A, E2>(
        operation: Operation,
        args: ReadonlyArray<unknown>,
        call: () => Effect.Effect<A, E2>
      ): Effect.Effect<A, E2 | StorageError> =>
        Effect.suspend(() => {
          const { failure, delay } = decide(operation, args)
          const then: Effect.Effect<A, E2 | StorageError> = failure === undefined ? call() : Effect.fail(failure)
          return Duration.greaterThan(delay, Duration.zero) ? Effect.zipRight(Effect.sleep(delay), then) : then
        })
      const wrapped = { ...storage } as Record<string, unknown>
      for (const name of Object.keys(storage) as Array<keyof StorageService>) {
        const original = storage[name] as (...args: ReadonlyArray<unknown>) => unknown
        if (name === "atomic") continue
        wrapped[name] =
          name === "list" || name === "watch"
            ? (...args: ReadonlyArray<unknown>) =>
                Stream.unwrap(
                  around(name, args, () => Effect.succeed(original(...args) as Stream.Stream<unknown, unknown>))
                )
            : (...given: ReadonlyArray<unknown>) => {
                const args = byKey ? materialized(name, given) : given
                return around(name, args, () => original(...args) as Effect.Effect<unknown, unknown>)
              }
      }
      const faultyAtomic = (builder: ReturnType<StorageService["atomic"]>): ReturnType<StorageService["atomic"]> => ({
        check: (...args) => faultyAtomic(builder.check(...args)),
        set: (...args) => faultyAtomic(builder.set(...args)),
        remove: (...args) => faultyAtomic(builder.remove(...args)),
        // An injected failure is one a commit can fail with (9000, 9002, 9005); 9003 is the caller's choice.
        commit: () => around("commit", [], () => builder.commit()) as ReturnType<typeof builder.commit>
      })
      wrapped.atomic = () => faultyAtomic(storage.atomic())
      return wrapped as unknown as StorageService
    })
  )
