/**
 * The conformance suite: the behaviour every backend must have, run against each of them. Tests share one
 * layer per backend and isolate themselves with a store of their own; those about the change feed's history get a
 * fresh layer with the history they need from `withHistory`.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import {
  GenericError,
  InvalidKeyError,
  isStorageError,
  NotFoundError,
  SerializationError,
  Storage,
  type StorageError,
  StorageErrorCode,
  type StoreSummary
} from "../index.js"
import { atomicCases } from "./conformance-atomic.js"
import { binaryCases } from "./conformance-binary.js"
import { expiryCases } from "./conformance-expiry.js"
import { largeCases } from "./conformance-large.js"
import { rangeCases } from "./conformance-ranges.js"
import { transactionCases } from "./conformance-transaction.js"
import { typedCases } from "./conformance-typed.js"
import { type WithHistory, watchCases } from "./conformance-watch.js"
import { type TestTime, testClock } from "./time.js"

let storeCounter = 0
/** A store name no other test uses. */
export const freshStore = (prefix = "t"): string => `${prefix}-${process.pid}-${++storeCounter}`

/** Fails the test unless `error` is the given class with the given code, and returns it. */
export const expectError = <E extends StorageError>(
  error: unknown,
  errorClass: abstract new (...args: never) => E,
  code: number
): E => {
  expect(error).toBeInstanceOf(errorClass)
  expect(error).toBeInstanceOf(Error)
  expect(isStorageError(error)).toBe(true)
  expect((error as E).code).toBe(code)
  return error as E
}

class Point {
  constructor(
    readonly x: number,
    readonly y: number
  ) {}
}

// biome-ignore lint/suspicious/noSparseArray: a sparse array is what this value is for
const sparse = [1, , 3]

const labelled = Object.assign([1, 2], { label: "x" })
const throwingGetter = {
  ok: 1,
  get broken(): number {
    throw new Error("getter failed")
  }
}
const throwingProxy = new Proxy(
  {},
  {
    ownKeys: () => {
      throw new Error("ownKeys trap")
    }
  }
)

/** Values JSON would change or drop, with the path and the words the error must name. */
export const refusedValues: ReadonlyArray<readonly [string, unknown, string, string]> = [
  ["undefined", undefined, "$", "undefined"],
  ["a function", () => 1, "$", "function"],
  ["a symbol", Symbol("s"), "$", "symbol"],
  ["a bigint", 10n, "$", "bigint"],
  ["NaN", Number.NaN, "$", "NaN"],
  ["Infinity", Number.POSITIVE_INFINITY, "$", "Infinity"],
  ["-Infinity", Number.NEGATIVE_INFINITY, "$", "-Infinity"],
  ["a Date", { window: { created: new Date(0) } }, "$.window.created", "Date"],
  ["a Map", { m: new Map([["a", 1]]) }, "$.m", "Map"],
  ["a Set", [1, new Set([1])], "$[1]", "Set"],
  ["a class instance", { p: new Point(1, 2) }, "$.p", "Point"],
  ["a typed array", { bytes: new Uint8Array([1]) }, "$.bytes", "Uint8Array"],
  ["undefined in an object", { a: 1, b: undefined }, "$.b", "undefined"],
  ["undefined in an array", [1, undefined], "$[1]", "undefined"],
  ["a sparse array", { list: sparse }, "$.list[1]", "hole"],
  ["a symbol key", { [Symbol("k")]: 1 }, "$", "symbol"],
  ["an array with a named property", { list: labelled }, "$.list", '"label"'],
  ["an array with a symbol key", [Object.assign([1], { [Symbol("s")]: 2 })], "$[0]", "symbol"],
  ["a getter that throws", { nested: throwingGetter }, "$.nested.broken", "getter failed"],
  ["a proxy whose traps throw", { p: throwingProxy }, "$.p", "ownKeys trap"],
  ["an odd key path", { "a b": [{ c: Number.NaN }] }, '$["a b"][0].c', "NaN"],
  [
    "a cycle",
    (() => {
      const cyclic: Record<string, unknown> = { name: "x" }
      cyclic.self = cyclic
      return cyclic
    })(),
    "$.self",
    "circular"
  ]
]

/** Keys and store names that must be refused, and the words the error must use. */
export const invalidNames: ReadonlyArray<readonly [string, unknown, string]> = [
  ["a number", 42, "number"],
  ["null", null, "null"],
  ["undefined", undefined, "undefined"],
  ["an object", { key: "a" }, "object"],
  ["an empty string", "", "empty"],
  ["a lone high surrogate", "a\uD800b", "surrogate"],
  ["a lone low surrogate", "\uDC00", "surrogate"]
]

/**
 * Options of {@link conformance}.
 *
 * @since 0.4.0
 */
export interface ConformanceOptions {
  /**
   * A fresh layer of the backend with the change feed's history given (as the `history` option of the library's
   * layers): without it, the two cases about trimmed history are skipped.
   */
  readonly withHistory?: WithHistory | undefined
  /** The clock the backend's writes and expiry run on, as the tests move it: {@link testClock} by default. */
  readonly time?: TestTime | undefined
}

/**
 * Runs the whole conformance suite (every operation's contract: values, keys, errors, ranges, versions, atomic
 * commits, transactions, the change feed, expiry, typed stores, bytes) on a `Storage` layer, as a vitest `describe`
 * block named `name`. The layer is built once for the block; each case works in a store of its own.
 *
 * @since 0.4.0
 */
export const conformance = (
  name: string,
  layer: Layer.Layer<Storage, unknown>,
  options: ConformanceOptions = {}
): void =>
  it.layer(layer, { timeout: "60 seconds" })(name, (it) => {
    const time = options.time ?? testClock
    const withHistory = options.withHistory
    rangeCases("ranges", it, freshStore, time)
    expiryCases("expiry", it, freshStore, time)
    atomicCases("atomic", it, freshStore)
    transactionCases("transaction", it, freshStore)
    watchCases("watch", it, freshStore, withHistory)
    typedCases("typed", it, freshStore)
    binaryCases("binary", it, freshStore)
    largeCases("large calls", it, freshStore)

    it.effect("get returns None for an absent key and the value for a present one", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        expect(yield* storage.get("missing", { store })).toEqual(Option.none())
        yield* storage.set("theme", "dark", { store })
        expect(yield* storage.get("theme", { store })).toEqual(Option.some("dark"))
      })
    )

    it.effect("values of every JSON kind come back deep-equal", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const values = {
          null: null,
          true: true,
          false: false,
          zero: 0,
          int: 42,
          negative: -17,
          float: 0.1 + 0.2,
          tiny: Number.MIN_VALUE,
          huge: Number.MAX_VALUE,
          fraction: 2.5,
          maxSafe: Number.MAX_SAFE_INTEGER,
          empty: "",
          text: 'héllo 😀 \u0000 \n "quoted" \'; DROP TABLE runtime_storage; --',
          loneSurrogateInValue: "\uD800",
          emptyArray: [],
          emptyObject: {},
          recent_files: ["/home/user/a.txt", "/home/user/b.txt"],
          window_state: { x: 10, y: 20, size: { width: 800, height: 600 }, maximized: false, tabs: [[1, [2, [3]]]] }
        }
        for (const [key, value] of Object.entries(values)) yield* storage.set(key, value, { store })
        for (const [key, value] of Object.entries(values)) {
          expect(yield* storage.get(key, { store })).toStrictEqual(Option.some(value))
        }
      })
    )

    it.effect("-0 is kept exactly", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("n", -0, { store })
        yield* storage.set("nested", { a: [-0, 0] }, { store })
        expect(Object.is(Option.getOrThrow(yield* storage.get("n", { store })), -0)).toBe(true)
        const nested = Option.getOrThrow(yield* storage.get("nested", { store })) as { a: Array<number> }
        expect(Object.is(nested.a[0], -0)).toBe(true)
        expect(Object.is(nested.a[1], 0)).toBe(true)
      })
    )

    it.effect("set overwrites, remove reports whether the key existed", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("k", 1, { store })
        yield* storage.set("k", { v: 2 }, { store })
        expect(yield* storage.get("k", { store })).toEqual(Option.some({ v: 2 }))
        expect(yield* storage.keys({ store })).toEqual(["k"])
        expect(yield* storage.remove("k", { store })).toBe(true)
        expect(yield* storage.remove("k", { store })).toBe(false)
        expect(yield* storage.has("k", { store })).toBe(false)
        expect(yield* storage.get("k", { store })).toEqual(Option.none())
      })
    )

    it.effect("concurrent gets each succeed or fail on their own, and each gets a value of its own", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const other = freshStore()
        yield* storage.setMany({ a: { n: 1 }, b: [2], c: null }, { store })
        yield* storage.set("a", "other store", { store: other })
        const gets: ReadonlyArray<readonly [unknown, unknown]> = [
          ["a", { store }],
          ["b", { store }],
          ["missing", { store }],
          [42, { store }],
          ["a", { store: "" }],
          ["a", { store: other }],
          ["a", { store }],
          ["c", { store }]
        ]
        const results = yield* Effect.forEach(
          gets,
          ([key, options]) => Effect.either(storage.get(key as string, options as { store: string })),
          { concurrency: "unbounded" }
        )
        const summary = results.map((result) =>
          result._tag === "Left" ? `error ${result.left.code}` : Option.getOrElse(result.right, () => "none")
        )
        expect(summary).toEqual([{ n: 1 }, [2], "none", "error 9004", "error 9004", "other store", { n: 1 }, null])
        expect(summary[0]).not.toBe(summary[6])
      })
    )

    it.effect("has tells presence, including of keys holding null or false", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("null", null, { store })
        yield* storage.set("false", false, { store })
        expect(yield* storage.has("null", { store })).toBe(true)
        expect(yield* storage.has("false", { store })).toBe(true)
        expect(yield* storage.has("other", { store })).toBe(false)
      })
    )

    it.effect("returned values are fresh: mutating them or the input never changes what is stored", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const input = { list: [1, 2], nested: { a: 1 } }
        yield* storage.set("k", input, { store })
        input.list.push(3)
        input.nested.a = 99
        const first = Option.getOrThrow(yield* storage.get("k", { store })) as typeof input
        first.list.push(4)
        first.nested.a = 100
        const [entry] = yield* storage.entries({ store })
        ;(entry!.value as typeof input).list.push(5)
        const many = yield* storage.getMany(["k"], { store })
        ;(many.get("k") as typeof input).nested.a = 7
        expect(yield* storage.get("k", { store })).toEqual(Option.some({ list: [1, 2], nested: { a: 1 } }))
      })
    )

    it.effect("__proto__ and constructor keys in values are plain own properties; Object.prototype is untouched", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const value = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"bad": 1}}}')
        yield* storage.set("k", value, { store })
        yield* storage.setMany(value, { store })
        const back = Option.getOrThrow(yield* storage.get("k", { store })) as Record<string, unknown>
        expect(Object.hasOwn(back, "__proto__")).toBe(true)
        expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
        expect(Object.getOwnPropertyDescriptor(back, "__proto__")?.value).toEqual({ polluted: true })
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
        expect(yield* storage.keys({ store })).toEqual(["__proto__", "constructor", "k"])
        expect(yield* storage.get("__proto__", { store })).toEqual(Option.some({ polluted: true }))
      })
    )

    it.effect("keys, entries and getMany list in ascending code point order", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        // UTF-16 order puts the emoji (a surrogate pair) before U+FFFD; code point order puts it after.
        const keys = ["b", "\uFFFD", "😀", "a", "A", "é", "a\u0000", "aa", "Z", "𝄞", "\uE000"]
        yield* storage.setMany(
          keys.map((key, index) => [key, index] as const),
          { store }
        )
        const expected = ["A", "Z", "a", "a\u0000", "aa", "b", "é", "\uE000", "\uFFFD", "𝄞", "😀"]
        expect(yield* storage.keys({ store })).toEqual(expected)
        expect((yield* storage.entries({ store })).map((entry) => entry.key)).toEqual(expected)
        expect(Array.from((yield* storage.getMany([...keys].reverse(), { store })).keys())).toEqual(expected)
        expect((yield* storage.entries({ store })).find((entry) => entry.key === "😀")).toEqual({
          key: "😀",
          value: 2
        })
      })
    )

    it.effect("getMany returns the keys that exist, once each", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.setMany({ a: 1, b: [2], c: { three: 3 } }, { store })
        const found = yield* storage.getMany(["c", "missing", "a", "a"], { store })
        expect(Array.from(found)).toEqual([
          ["a", 1],
          ["c", { three: 3 }]
        ])
        expect((yield* storage.getMany([], { store })).size).toBe(0)
      })
    )

    it.effect("setMany takes a record, an array of pairs or a Map; a repeated key keeps its last value", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.setMany({ a: 1, b: 2 }, { store })
        yield* storage.setMany(
          [
            ["c", 3],
            ["c", 4]
          ],
          { store }
        )
        yield* storage.setMany(new Map<string, unknown>([["d", { deep: [true] }]]), { store })
        yield* storage.setMany({}, { store })
        expect(Array.from(yield* storage.getMany(["a", "b", "c", "d"], { store }))).toEqual([
          ["a", 1],
          ["b", 2],
          ["c", 4],
          ["d", { deep: [true] }]
        ])
      })
    )

    it.effect("setMany is all-or-nothing when one value or key is refused", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.setMany({ keep: "old", other: 1 }, { store })
        const badValue = yield* Effect.flip(
          storage.setMany({ keep: "new", fresh: 1, broken: { when: new Date() } }, { store })
        )
        expect(expectError(badValue, SerializationError, StorageErrorCode.SerializationError).message).toContain(
          '"broken"'
        )
        const badKey = yield* Effect.flip(
          storage.setMany(
            [
              ["keep", "new"],
              ["", 1]
            ],
            { store }
          )
        )
        expectError(badKey, InvalidKeyError, StorageErrorCode.InvalidKey)
        const replaced = yield* Effect.flip(
          storage.setMany(
            [
              ["keep", Number.NaN],
              ["keep", "new"]
            ],
            { store }
          )
        )
        expectError(replaced, SerializationError, StorageErrorCode.SerializationError)
        const badPair = yield* Effect.flip(storage.setMany([["keep", "new"], ["x"]] as never, { store }))
        expectError(badPair, InvalidKeyError, StorageErrorCode.InvalidKey)
        expect(Array.from(yield* storage.getMany(["keep", "other", "fresh"], { store }))).toEqual([
          ["keep", "old"],
          ["other", 1]
        ])
      })
    )

    it.effect("deleteMany removes the keys that exist and counts them", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.setMany({ a: 1, b: 2, c: 3 }, { store })
        expect(yield* storage.deleteMany(["a", "c", "missing", "a"], { store })).toBe(2)
        expect(yield* storage.deleteMany([], { store })).toBe(0)
        expect(yield* storage.keys({ store })).toEqual(["b"])
        const bad = yield* Effect.flip(storage.deleteMany(["b", 7 as never], { store }))
        expectError(bad, InvalidKeyError, StorageErrorCode.InvalidKey)
        expect(yield* storage.keys({ store })).toEqual(["b"])
      })
    )

    it.effect("size is the UTF-8 byte count of the stored JSON text of that store", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        expect(yield* storage.size({ store })).toBe(0)
        yield* storage.set("a", "é", { store }) // "é" in quotes: 4 bytes
        yield* storage.set("b", { x: [1, 2] }, { store }) // {"x":[1,2]}: 11 bytes
        yield* storage.set("c", -0, { store }) // -0: 2 bytes
        expect(yield* storage.size({ store })).toBe(17)
        yield* storage.set("a", "😀", { store }) // 6 bytes
        expect(yield* storage.size({ store })).toBe(19)
        yield* storage.remove("b", { store })
        expect(yield* storage.size({ store })).toBe(8)
        expect(yield* storage.size({ store: freshStore() })).toBe(0)
      })
    )

    it.effect("stores lists the stores holding entries, in code point order, with their counts and sizes", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const prefix = freshStore()
        const mine = (all: ReadonlyArray<StoreSummary>) => all.filter((row) => row.store.startsWith(prefix))
        // In UTF-16 order "\u{10000}" (a surrogate pair) sorts before "\uFFFF"; in code point order after it.
        const [plain, nul, bmp, astral] = ["", "\u0000", "\uFFFF", "\u{10000}"].map((name) => `${prefix}${name}`)
        yield* storage.setMany({ a: "é", b: [1, 2] }, { store: astral! }) // "é": 4 bytes, [1,2]: 5
        yield* storage.set("k", null, { store: bmp! })
        yield* storage.set("k", true, { store: nul! })
        yield* storage.setMany({ x: 1, y: 2 }, { store: plain! })
        yield* storage.remove("y", { store: plain! })
        expect(mine(yield* storage.stores())).toEqual([
          { store: plain, count: 1, size: 1 },
          { store: nul, count: 1, size: 4 },
          { store: bmp, count: 1, size: 4 },
          { store: astral, count: 2, size: 9 }
        ])
        // A store exists while it holds an entry.
        yield* storage.clear({ store: astral! })
        yield* storage.remove("k", { store: nul! })
        expect(mine(yield* storage.stores()).map((row) => row.store)).toEqual([plain, bmp])
      })
    )

    it.effect("stores are isolated, including names that look like patterns", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const prefix = freshStore()
        const names = ["a", "a%", "a_", "a:b", "%", "_", "A", "a b", "a'; --"].map((name) => `${prefix}${name}`)
        for (const store of names) yield* storage.setMany({ shared: store, [`only-${store}`]: 1 }, { store })
        for (const store of names) {
          expect(yield* storage.get("shared", { store })).toEqual(Option.some(store))
          expect(yield* storage.keys({ store })).toEqual([`only-${store}`, "shared"].sort())
        }
        yield* storage.clear({ store: names[1]! })
        yield* storage.deleteMany(["shared"], { store: names[2]! })
        yield* storage.remove("shared", { store: names[3]! })
        expect(yield* storage.keys({ store: names[1]! })).toEqual([])
        expect(yield* storage.keys({ store: names[0]! })).toHaveLength(2)
        expect(yield* storage.keys({ store: names[2]! })).toEqual([`only-${names[2]}`])
        expect(yield* storage.keys({ store: names[3]! })).toEqual([`only-${names[3]}`])
        for (const store of names.slice(4)) expect(yield* storage.keys({ store })).toHaveLength(2)
      })
    )

    it.effect("the default store is used when no store is named", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const key = freshStore("default-key")
        yield* storage.set(key, 1)
        expect(yield* storage.get(key, { store: "default" })).toEqual(Option.some(1))
        expect(yield* storage.has(key, {})).toBe(true)
        expect(yield* storage.has(key, { store: undefined })).toBe(true)
        expect(yield* storage.keys()).toContain(key)
        expect(yield* storage.remove(key)).toBe(true)
      })
    )

    it.effect("clear empties only that store", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const neighbour = freshStore()
        yield* storage.setMany({ a: 1, b: 2 }, { store })
        yield* storage.set("a", 1, { store: neighbour })
        yield* storage.clear({ store })
        expect(yield* storage.keys({ store })).toEqual([])
        expect(yield* storage.size({ store })).toBe(0)
        expect(yield* storage.keys({ store: neighbour })).toEqual(["a"])
      })
    )

    it.effect("keys up to 2048 UTF-8 bytes, with NUL, SQL or LIKE characters, are stored exactly", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const keys = ["é".repeat(1024), "x".repeat(2048), "a\u0000b", "%", "_", "a%", "' OR 1=1 --", "😀".repeat(512)]
        yield* storage.setMany(
          keys.map((key) => [key, key.length] as const),
          { store }
        )
        for (const key of keys) expect(yield* storage.get(key, { store })).toEqual(Option.some(key.length))
        expect(yield* storage.has("a", { store })).toBe(false)
        expect(yield* storage.keys({ store })).toHaveLength(keys.length)
      })
    )

    it.effect("invalid keys fail with InvalidKey (9004) before anything is written", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("existing", 1, { store })
        const cases = [...invalidNames, ["too long", "é".repeat(1025), "2050 UTF-8 bytes"] as const]
        for (const [, key, words] of cases) {
          const operations: ReadonlyArray<Effect.Effect<unknown, StorageError>> = [
            storage.get(key as string, { store }),
            storage.set(key as string, 1, { store }),
            storage.remove(key as string, { store }),
            storage.has(key as string, { store }),
            storage.getMany([key as string], { store }),
            storage.setMany([[key as string, 1]], { store }),
            storage.deleteMany([key as string], { store })
          ]
          for (const operation of operations) {
            const error = expectError(yield* Effect.flip(operation), InvalidKeyError, StorageErrorCode.InvalidKey)
            expect(error._tag).toBe("InvalidKey")
            expect(error.message).toContain(words)
          }
        }
        const notIterable = yield* Effect.flip(storage.getMany("abc" as never, { store }))
        expectError(notIterable, InvalidKeyError, StorageErrorCode.InvalidKey)
        const notEntries = yield* Effect.flip(storage.setMany(null as never, { store }))
        expectError(notEntries, InvalidKeyError, StorageErrorCode.InvalidKey)
        const classEntries = yield* Effect.flip(storage.setMany(new Date() as never, { store }))
        expectError(classEntries, InvalidKeyError, StorageErrorCode.InvalidKey)
        expect(Array.from(yield* storage.entries({ store }))).toEqual([{ key: "existing", value: 1 }])
      })
    )

    it.effect("invalid store names and options fail with InvalidKey (9004)", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const cases = [
          ...invalidNames.filter(([, name]) => name !== undefined),
          ["too long", "s".repeat(257), "257 UTF-8 bytes"] as const
        ]
        for (const [, store, words] of cases) {
          const operations: ReadonlyArray<Effect.Effect<unknown, StorageError>> = [
            storage.get("k", { store: store as string }),
            storage.set("k", 1, { store: store as string }),
            storage.clear({ store: store as string }),
            storage.keys({ store: store as string }),
            storage.entries({ store: store as string }),
            storage.size({ store: store as string })
          ]
          for (const operation of operations) {
            const error = expectError(yield* Effect.flip(operation), InvalidKeyError, StorageErrorCode.InvalidKey)
            expect(error.message).toContain(words)
          }
        }
        const stringOptions = yield* Effect.flip(storage.get("k", "settings" as never))
        expect(expectError(stringOptions, InvalidKeyError, StorageErrorCode.InvalidKey).message).toContain("{ store")
        yield* storage.set("k", 1, { store: "s".repeat(256) })
        expect(yield* storage.get("k", { store: "s".repeat(256) })).toEqual(Option.some(1))
      })
    )

    it.effect(
      "values JSON cannot carry exactly fail with SerializationError (9006) naming where, and write nothing",
      () =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const store = freshStore()
          yield* storage.set("k", "before", { store })
          for (const [what, value, path, words] of refusedValues) {
            const error = expectError(
              yield* Effect.flip(storage.set("k", value, { store })),
              SerializationError,
              StorageErrorCode.SerializationError
            )
            expect(error._tag, what).toBe("SerializationError")
            expect(error.path, what).toBe(path)
            expect(error.message, what).toContain(`${path} `)
            expect(error.message, what).toContain(words)
            yield* Effect.flip(storage.setMany({ other: 1, k: value }, { store }))
          }
          expect(yield* storage.entries({ store })).toEqual([{ key: "k", value: "before" }])
        })
    )

    it.effect(
      "arguments that throw when read (options, key lists, entries) fail with 9004 carrying what was thrown",
      () =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const store = freshStore()
          yield* storage.set("k", 1, { store })
          const failing = function* (): Generator<string> {
            yield "k"
            throw new Error("iterator failed")
          }
          const options = {
            get store(): string {
              throw new Error("options getter failed")
            }
          }
          const cases: ReadonlyArray<readonly [Effect.Effect<unknown, StorageError>, string]> = [
            [storage.getMany(failing(), { store }), "iterator failed"],
            [storage.deleteMany(failing(), { store }), "iterator failed"],
            [
              storage.setMany(
                (function* () {
                  yield ["a", 1] as const
                  throw new Error("entries failed")
                })(),
                { store }
              ),
              "entries failed"
            ],
            [storage.get("k", options), "options getter failed"],
            [storage.set("k", 2, options), "options getter failed"]
          ]
          for (const [operation, thrown] of cases) {
            const error = expectError(yield* Effect.flip(operation), InvalidKeyError, StorageErrorCode.InvalidKey)
            expect(error.message).toContain(thrown)
            expect(error.cause).toBeInstanceOf(Error)
          }
          expect(yield* storage.entries({ store })).toEqual([{ key: "k", value: 1 }])
        })
    )

    it.effect("the message of a refused Date names its path", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const error = yield* Effect.flip(storage.set("state", { window: { created: new Date() } }))
        expect(error.message).toContain("$.window.created is a Date")
        expect(error.message).toContain('"state"')
      })
    )

    it.effect("update replaces a value atomically and returns the new one", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("counter", { n: 1 }, { store })
        const next = yield* storage.update("counter", (current) => ({ n: (current as { n: number }).n + 1 }), { store })
        expect(next).toEqual({ n: 2 })
        expect(yield* storage.get("counter", { store })).toEqual(Option.some({ n: 2 }))
        expect(yield* storage.update("fresh", (current) => [current, 1], { store, default: null })).toEqual([null, 1])
        expect(yield* storage.get("fresh", { store })).toEqual(Option.some([null, 1]))
      })
    )

    it.effect("update of an absent key without a default fails with NotFound (9001) and writes nothing", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const error = yield* Effect.flip(storage.update("absent", () => 1, { store }))
        const notFound = expectError(error, NotFoundError, StorageErrorCode.NotFound)
        expect(notFound._tag).toBe("NotFound")
        expect(notFound.message).toContain('"absent"')
        expect(notFound.message).toContain(store)
        expect(yield* storage.has("absent", { store })).toBe(false)
      })
    )

    it.effect("update writes nothing when its function throws (9000) or returns what JSON cannot carry (9006)", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("k", 1, { store })
        const thrown = yield* Effect.flip(
          storage.update(
            "k",
            () => {
              throw new RangeError("boom")
            },
            { store }
          )
        )
        const generic = expectError(thrown, GenericError, StorageErrorCode.Generic)
        expect(generic.cause).toBeInstanceOf(RangeError)
        const refused = yield* Effect.flip(storage.update("k", () => ({ at: new Date() }), { store }))
        expect(expectError(refused, SerializationError, StorageErrorCode.SerializationError).path).toBe("$.at")
        const badKey = yield* Effect.flip(storage.update(7 as never, () => 1, { store }))
        expectError(badKey, InvalidKeyError, StorageErrorCode.InvalidKey)
        const notAFunction = yield* Effect.flip(storage.update("k", 5 as never, { store }))
        expect(expectError(notAFunction, InvalidKeyError, StorageErrorCode.InvalidKey).message).toContain("function")
        expect(yield* storage.entries({ store })).toEqual([{ key: "k", value: 1 }])
      })
    )

    it.effect("concurrent updates from many fibers lose nothing", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* Effect.all(
          Array.from({ length: 200 }, () => storage.update("counter", (n) => (n as number) + 1, { store, default: 0 })),
          { concurrency: "unbounded" }
        )
        expect(yield* storage.get("counter", { store })).toEqual(Option.some(200))
      })
    )

    it.effect("a setMany of 50,000 entries is written in one go", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const entries = Array.from({ length: 50_000 }, (_, index) => [`key-${index}`, { index }] as const)
        yield* storage.setMany(entries, { store })
        expect((yield* storage.keys({ store })).length).toBe(50_000)
        expect(yield* storage.get("key-49999", { store })).toEqual(Option.some({ index: 49999 }))
        expect(
          yield* storage.deleteMany(
            entries.map(([key]) => key),
            { store }
          )
        ).toBe(50_000)
        expect(yield* storage.size({ store })).toBe(0)
      })
    )
  })
