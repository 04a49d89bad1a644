/**
 * `layerKeyValueStore`: the cases of Effect's own KeyValueStore tests (set, get, remove, clear, modify, prefix, the
 * schema store), written here and run against Effect's `KeyValueStore.layerMemory` too (proving the cases), and a
 * property test that random operations give exactly what `KeyValueStore.layerMemory` gives.
 */

import * as PlatformError from "@effect/platform/Error"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { InvalidKeyError, layerKeyValueStore, layerMemory, layerSql, layerSqlite, Storage } from "../src/index.js"

const layers: ReadonlyArray<readonly [string, Layer.Layer<KeyValueStore.KeyValueStore, unknown>]> = [
  ["KeyValueStore.layerMemory (Effect's own: the reference)", KeyValueStore.layerMemory],
  ["layerKeyValueStore on layerMemory", layerKeyValueStore().pipe(Layer.provide(layerMemory))],
  [
    "layerKeyValueStore on layerSqlite, in a named store",
    layerKeyValueStore({ store: "kv" }).pipe(Layer.provide(layerSqlite({ filename: ":memory:" })))
  ],
  [
    "layerKeyValueStore on layerSql",
    layerKeyValueStore().pipe(Layer.provide(layerSql()), Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
  ]
]

class User extends Schema.Class<User>("User")({ name: Schema.String, age: Schema.Number }) {}

for (const [name, layer] of layers) {
  describe(name, () => {
    // A fresh layer per test, as Effect's tests clear the store after each.
    const run = <A, E>(effect: Effect.Effect<A, E, KeyValueStore.KeyValueStore>) =>
      Effect.provide(effect, layer) as Effect.Effect<A, E>

    it.effect("set", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("/foo/bar", "bar")
          expect(yield* kv.get("/foo/bar")).toEqual(Option.some("bar"))
          expect(yield* kv.size).toEqual(1)
        })
      )
    )

    it.effect("get / missing", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.clear
          expect(yield* kv.get("foo")).toEqual(Option.none())
          expect(yield* kv.getUint8Array("foo")).toEqual(Option.none())
        })
      )
    )

    it.effect("remove", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("foo", "bar")
          yield* kv.remove("foo")
          yield* kv.remove("never")
          expect(yield* kv.get("foo")).toEqual(Option.none())
          expect(yield* kv.size).toEqual(0)
        })
      )
    )

    it.effect("clear", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("foo", "bar")
          yield* kv.set("baz", new Uint8Array([1]))
          yield* kv.clear
          expect(yield* kv.get("foo")).toEqual(Option.none())
          expect(yield* kv.size).toEqual(0)
          expect(yield* kv.isEmpty).toBe(true)
        })
      )
    )

    it.effect("modify", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("foo", "bar")
          expect(yield* kv.modify("foo", (v) => `${v}bar`)).toEqual(Option.some("barbar"))
          expect(yield* kv.get("foo")).toEqual(Option.some("barbar"))
          expect(yield* kv.size).toEqual(1)
        })
      )
    )

    it.effect("modify - none", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          expect(yield* kv.modify("foo", (v) => `${v}bar`)).toEqual(Option.none())
          expect(yield* kv.size).toEqual(0)
        })
      )
    )

    it.effect("bytes: set, getUint8Array, get as base64, modifyUint8Array; a string's bytes are its UTF-8", () =>
      run(
        Effect.gen(function* () {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("bytes", new Uint8Array([0, 1, 254, 255]))
          expect(yield* kv.getUint8Array("bytes")).toEqual(Option.some(new Uint8Array([0, 1, 254, 255])))
          expect(yield* kv.get("bytes")).toEqual(Option.some("AAH+/w=="))
          expect(yield* kv.modifyUint8Array("bytes", (b) => b.subarray(1))).toEqual(
            Option.some(new Uint8Array([1, 254, 255]))
          )
          yield* kv.set("text", "é😀")
          expect(yield* kv.getUint8Array("text")).toEqual(Option.some(new TextEncoder().encode("é😀")))
          expect(yield* kv.has("text")).toBe(true)
          expect(yield* kv.has("none")).toBe(false)
          expect(yield* kv.isEmpty).toBe(false)
          expect(yield* kv.size).toBe(2)
        })
      )
    )

    it.effect("prefix: prefixes the keys", () =>
      run(
        Effect.gen(function* () {
          const store = yield* KeyValueStore.KeyValueStore
          const prefixed = KeyValueStore.prefix(store, "prefix/")
          yield* prefixed.set("foo", "bar")
          yield* prefixed.modify("foo", (v) => `${v}bar`)
          expect(yield* prefixed.get("foo")).toEqual(Option.some("barbar"))
          expect(yield* prefixed.has("foo")).toEqual(true)
          expect(yield* store.get("prefix/foo")).toEqual(Option.some("barbar"))
          expect(yield* store.has("prefix/foo")).toEqual(true)
        })
      )
    )

    it.effect("SchemaStore: encodes & decodes, modify, prefix", () => {
      const UserStore = KeyValueStore.layerSchema(User, "UserStore")
      return Effect.gen(function* () {
        const store = yield* UserStore.tag
        yield* store.set("foo", new User({ name: "foo", age: 42 }))
        yield* store.modify("foo", (user) => new User({ ...user, age: 43 }))
        const value = yield* Effect.flatMap(store.get("foo"), identity)
        expect(value).toBeInstanceOf(User)
        expect([value.name, value.age]).toEqual(["foo", 43])
        const prefixed = KeyValueStore.prefix(store, "prefix/")
        yield* prefixed.set("bar", new User({ name: "bar", age: 1 }))
        expect((yield* Effect.flatMap(store.get("prefix/bar"), identity)).name).toEqual("bar")
        const kv = yield* KeyValueStore.KeyValueStore
        const typed = kv.forSchema(Schema.Number)
        yield* typed.set("n", 7)
        expect(yield* typed.get("n")).toEqual(Option.some(7))
        expect(yield* kv.get("n")).toEqual(Option.some("7"))
      }).pipe(Effect.provide(UserStore.layer.pipe(Layer.provideMerge(layer))))
    })
  })
}

describe("layerKeyValueStore beyond layerMemory", () => {
  const onSqlite = layerKeyValueStore({ store: "kv" }).pipe(Layer.provideMerge(layerSqlite({ filename: ":memory:" })))

  it.effect("its entries are the store's own: the Storage service reads them", () =>
    Effect.gen(function* () {
      const kv = yield* KeyValueStore.KeyValueStore
      const storage = yield* Storage
      yield* kv.set("a", "text")
      yield* kv.set("b", new Uint8Array([1, 2]))
      expect(yield* storage.entries({ store: "kv" })).toEqual([
        { key: "a", value: "text" },
        { key: "b", value: new Uint8Array([1, 2]) }
      ])
      expect(yield* storage.keys()).toEqual([])
    }).pipe(Effect.provide(onSqlite))
  )

  it.effect("a key runtime-storage refuses fails with BadArgument, whose cause is the coded error", () =>
    Effect.gen(function* () {
      const kv = yield* KeyValueStore.KeyValueStore
      for (const key of ["", "a\uD800"]) {
        const error = yield* Effect.flip(kv.set(key, "x"))
        expect(error).toBeInstanceOf(PlatformError.BadArgument)
        expect(error.message).toContain("9004")
        expect((error as PlatformError.BadArgument).cause).toBeInstanceOf(InvalidKeyError)
        expect(Either.isLeft(yield* Effect.either(kv.get(key)))).toBe(true)
      }
      expect(yield* kv.size).toBe(0)
    }).pipe(Effect.provide(onSqlite))
  )

  it.effect("modify is atomic: 50 concurrent modifies of one key lose nothing", () =>
    Effect.gen(function* () {
      const kv = yield* KeyValueStore.KeyValueStore
      yield* kv.set("n", "0")
      yield* Effect.forEach(
        Array.from({ length: 50 }, () => kv.modify("n", (v) => String(Number(v) + 1))),
        identity,
        { concurrency: "unbounded" }
      )
      expect(yield* kv.get("n")).toEqual(Option.some("50"))
    }).pipe(
      Effect.provide(
        layerKeyValueStore().pipe(
          Layer.provide(layerSql()),
          Layer.provide(SqliteClient.layer({ filename: ":memory:" }))
        )
      )
    )
  )
})

/** An operation of the KeyValueStore interface, with what it is given. */
type Operation =
  | { readonly op: "set"; readonly key: string; readonly value: string | Uint8Array }
  | { readonly op: "get" | "getUint8Array" | "has" | "remove"; readonly key: string }
  | { readonly op: "modify"; readonly key: string; readonly suffix: string }
  | { readonly op: "modifyUint8Array"; readonly key: string; readonly byte: number }
  | { readonly op: "clear" | "size" | "isEmpty" }

const key = fc.constantFrom("a", "b", "/foo/bar", "é", "😀", "prefix/a")
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), key, value: fc.oneof(fc.string(), fc.uint8Array({ maxLength: 8 })) }),
  fc.record({ op: fc.constantFrom("get" as const, "getUint8Array" as const, "has" as const, "remove" as const), key }),
  fc.record({ op: fc.constant("modify" as const), key, suffix: fc.string({ maxLength: 3 }) }),
  fc.record({ op: fc.constant("modifyUint8Array" as const), key, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constantFrom("clear" as const, "size" as const, "isEmpty" as const) })
)

const apply = (kv: KeyValueStore.KeyValueStore, operation: Operation): Effect.Effect<unknown, unknown> => {
  switch (operation.op) {
    // The operations typed void are compared as void (layerMemory's remove happens to return Map.delete's boolean).
    case "set":
      return Effect.asVoid(kv.set(operation.key, operation.value))
    case "get":
      return kv.get(operation.key)
    case "getUint8Array":
      return kv.getUint8Array(operation.key)
    case "has":
      return kv.has(operation.key)
    case "remove":
      return Effect.asVoid(kv.remove(operation.key))
    case "modify":
      return kv.modify(operation.key, (value) => value + operation.suffix)
    case "modifyUint8Array":
      return kv.modifyUint8Array(operation.key, (value) => new Uint8Array([...value, operation.byte]))
    case "clear":
      return Effect.asVoid(kv.clear)
    case "size":
      return kv.size
    case "isEmpty":
      return kv.isEmpty
  }
}

describe("layerKeyValueStore against KeyValueStore.layerMemory", () => {
  for (const [name, storage] of [
    ["layerMemory", layerMemory],
    ["layerSqlite", layerSqlite({ filename: ":memory:" })]
  ] as const) {
    it.effect.prop(
      `on ${name}: random operations give exactly what Effect's own layerMemory gives`,
      [fc.array(operation, { maxLength: 40 })],
      ([operations]) =>
        Effect.scoped(
          Effect.gen(function* () {
            const reference = Context.get(yield* Layer.build(KeyValueStore.layerMemory), KeyValueStore.KeyValueStore)
            const ours = Context.get(
              yield* Layer.build(layerKeyValueStore().pipe(Layer.provide(storage))),
              KeyValueStore.KeyValueStore
            )
            for (const operation of operations) {
              const expected = yield* Effect.either(apply(reference, operation))
              const actual = yield* Effect.either(apply(ours, operation))
              expect(actual, JSON.stringify(operation)).toEqual(expected)
            }
          })
        ),
      { fastCheck: { numRuns: 100 } }
    )
  }
})
