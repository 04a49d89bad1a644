import { inspect } from "node:util"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import fc from "fast-check"
import { inject } from "vitest"
import {
  forSchema,
  type Json,
  layerMemory,
  layerSql,
  layerSqlite,
  NotFoundError,
  SerializationError,
  Storage,
  type StorageService
} from "../src/index.js"
import { layerPg } from "../src/pg.js"
import { expectError, freshStore } from "../src/testing/vitest.js"
import { jsonValue, key } from "../src/testing.js"

const RUNS = { fastCheck: { numRuns: 200 } }

let schemas = 0
const layers: ReadonlyArray<readonly [string, Layer.Layer<Storage, unknown>]> = [
  ["layerMemory", layerMemory],
  ["layerSqlite", layerSqlite({ filename: ":memory:" })],
  ["layerSql", layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))],
  // A schema of its own per layer built: each starts on empty tables.
  ["layerPg", Layer.suspend(() => layerPg({ url: inject("pgUrl"), schema: `props_${process.pid}_${++schemas}` }))]
]

class Opaque {
  readonly secret = 1
}

/** Values JSON cannot carry exactly. */
const poison: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.constant(Number.NaN),
  fc.constant(Number.POSITIVE_INFINITY),
  fc.constant(Number.NEGATIVE_INFINITY),
  fc.bigInt().map((n) => n),
  fc.constant(() => 1),
  fc.constant(Symbol("x")),
  fc.date({ noInvalidDate: true }),
  fc.constant(new Map([["k", 1]])),
  fc.constant(new Set([1])),
  fc.constant(new Opaque()),
  // Bytes are a value of their own, never part of a JSON value; other typed arrays are not stored at all.
  fc.constant({ thumbnail: new Uint8Array([1, 2]) }),
  fc.constant([new Uint8Array(0)]),
  fc.constant(new Int16Array([1, 2])),
  fc.constant(Object.assign([1, 2], { label: "dropped by JSON" })),
  // biome-ignore lint/suspicious/noSparseArray: a hole is the poison
  fc.constant([1, , 3]),
  fc.constant(
    Object.defineProperty({}, "broken", {
      enumerable: true,
      get: () => {
        throw new Error("getter failed")
      }
    })
  ),
  fc.constant(
    (() => {
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      return cyclic
    })()
  )
)

/**
 * Whether JSON carries a value exactly, written independently of the library's serializer (the model must not
 * borrow the code it checks): plain data only, finite numbers, no holes, no extra array properties, no symbol
 * keys, no cycles, nothing that throws when read.
 */
const carriesExactly = (value: unknown, ancestors: ReadonlyArray<object> = []): boolean => {
  try {
    if (value === null || typeof value === "string" || typeof value === "boolean") return true
    if (typeof value === "number") return Number.isFinite(value)
    if (typeof value !== "object") return false
    if (ancestors.includes(value)) return false
    const inside = [...ancestors, value]
    if (Object.getOwnPropertySymbols(value).length > 0) return false
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype || Object.keys(value).length !== value.length) return false
      for (let i = 0; i < value.length; i++) if (!(i in value) || !carriesExactly(value[i], inside)) return false
      return true
    }
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return false
    return Object.values(value).every((member) => carriesExactly(member, inside))
  } catch {
    return false
  }
}

/** UTF-8 bytes of a value as stored: JSON.stringify's text, where each -0 is written "-0" (one byte more). */
const storedBytes = (value: unknown): number => {
  if (value instanceof Uint8Array) return value.byteLength
  let negativeZeros = 0
  const count = (v: unknown): void => {
    if (Object.is(v, -0)) negativeZeros++
    else if (v !== null && typeof v === "object") for (const member of Object.values(v)) count(member)
  }
  count(value)
  return Buffer.byteLength(JSON.stringify(value)) + negativeZeros
}

/** A JSON structure with one poisoned leaf somewhere inside it, and the path of that leaf. */
const poisoned: fc.Arbitrary<unknown> = fc
  .tuple(
    poison,
    fc.array(
      fc.tuple(
        fc.constantFrom("array", "object"),
        fc.string({ minLength: 1, maxLength: 5 }),
        fc.jsonValue({ maxDepth: 1 })
      ),
      {
        maxLength: 4
      }
    )
  )
  .map(([leaf, wrappers]) =>
    wrappers.reduce<unknown>(
      (inner, [kind, key, sibling]) => (kind === "array" ? [sibling, inner] : { sibling, [key]: inner }),
      leaf
    )
  )

type Operation =
  | { readonly op: "set"; readonly key: string; readonly value: unknown; readonly store: number }
  | { readonly op: "get" | "has" | "remove"; readonly key: string; readonly store: number }
  | { readonly op: "clear" | "keys" | "entries" | "size"; readonly store: number }
  | { readonly op: "getMany" | "deleteMany"; readonly keys: ReadonlyArray<string>; readonly store: number }
  | {
      readonly op: "update"
      readonly key: string
      readonly value: unknown
      readonly withDefault: boolean
      readonly store: number
    }
  | {
      readonly op: "setMany"
      readonly entries: ReadonlyArray<readonly [string, unknown]>
      readonly store: number
    }

// A small pool of keys, so operations collide, with characters whose order differs between UTF-16 and code points.
const poolKey = fc.constantFrom("a", "b", "A", "é", "😀", "\uFFFD", "a\u0000", "%", "_", "__proto__", "k".repeat(30))
const poolValue = fc.oneof(
  { weight: 9, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) },
  { weight: 1, arbitrary: poison }
)
const store = fc.nat(2)

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), key: poolKey, value: poolValue, store }),
  fc.record({ op: fc.constantFrom("get" as const, "has" as const, "remove" as const), key: poolKey, store }),
  fc.record({ op: fc.constantFrom("clear" as const, "keys" as const, "entries" as const, "size" as const), store }),
  fc.record({
    op: fc.constantFrom("getMany" as const, "deleteMany" as const),
    keys: fc.array(poolKey, { maxLength: 5 }),
    store
  }),
  fc.record({ op: fc.constant("update" as const), key: poolKey, value: poolValue, withDefault: fc.boolean(), store }),
  fc.record({
    op: fc.constant("setMany" as const),
    entries: fc.array(fc.tuple(poolKey, poolValue), { maxLength: 5 }),
    store
  })
)

/** Code point order, written independently of the library's comparator. */
const byCodePoint = (a: string, b: string): number => {
  const x = Array.from(a, (c) => c.codePointAt(0)!)
  const y = Array.from(b, (c) => c.codePointAt(0)!)
  for (let index = 0; index < Math.min(x.length, y.length); index++) {
    if (x[index] !== y[index]) return x[index]! - y[index]!
  }
  return x.length - y.length
}

/** Whether a value can be stored: bytes (a `Uint8Array`) as a whole value, or a value JSON carries exactly. */
const storable = (value: unknown): boolean => value instanceof Uint8Array || carriesExactly(value)

/** What a plain `Map` says each operation returns; `"refused"` for a value JSON cannot carry. */
const runModel = (
  model: Map<string, Map<string, Json>>,
  stores: ReadonlyArray<string>,
  operation: Operation
): unknown => {
  const name = stores[operation.store]!
  const values = model.get(name) ?? new Map<string, Json>()
  model.set(name, values)
  const sortedKeys = () => Array.from(values.keys()).sort(byCodePoint)
  switch (operation.op) {
    case "set":
      if (!storable(operation.value)) return "refused"
      values.set(operation.key, structuredClone(operation.value) as Json)
      return undefined
    case "get":
      return values.has(operation.key) ? Option.some(values.get(operation.key)) : Option.none()
    case "has":
      return values.has(operation.key)
    case "remove":
      return values.delete(operation.key)
    case "clear":
      values.clear()
      return undefined
    case "keys":
      return sortedKeys()
    case "entries":
      return sortedKeys().map((key) => ({ key, value: values.get(key) }))
    case "size":
      return Array.from(values.values()).reduce<number>((total, value) => total + storedBytes(value), 0)
    case "getMany":
      return Array.from(new Set(operation.keys))
        .filter((key) => values.has(key))
        .sort(byCodePoint)
        .map((key) => [key, values.get(key)])
    case "deleteMany":
      return Array.from(new Set(operation.keys)).filter((key) => values.delete(key)).length
    case "update": {
      if (!values.has(operation.key) && !operation.withDefault) return "not found"
      const next = [values.has(operation.key) ? values.get(operation.key)! : "default", operation.value]
      if (!storable(next)) return "refused"
      values.set(operation.key, structuredClone(next) as Json)
      return next
    }
    case "setMany":
      if (operation.entries.some(([, value]) => !storable(value))) return "refused"
      for (const [key, value] of operation.entries) values.set(key, structuredClone(value) as Json)
      return undefined
  }
}

const runStorage = (storage: StorageService, stores: ReadonlyArray<string>, operation: Operation) => {
  const options = { store: stores[operation.store]! }
  const refused = <A, E>(self: Effect.Effect<A, E>) =>
    Effect.catchIf(
      self,
      (error) => error instanceof SerializationError,
      () => Effect.succeed("refused" as const)
    )
  switch (operation.op) {
    case "set":
      return refused(storage.set(operation.key, operation.value, options))
    case "get":
      return storage.get(operation.key, options)
    case "has":
      return storage.has(operation.key, options)
    case "remove":
      return storage.remove(operation.key, options)
    case "clear":
      return storage.clear(options)
    case "keys":
      return storage.keys(options)
    case "entries":
      return storage.entries(options)
    case "size":
      return storage.size(options)
    case "getMany":
      return Effect.map(storage.getMany(operation.keys, options), (found) => Array.from(found))
    case "deleteMany":
      return storage.deleteMany(operation.keys, options)
    case "update": {
      const update = storage.update(
        operation.key,
        (current) => [current, operation.value],
        operation.withDefault ? { ...options, default: "default" } : options
      )
      return refused(
        Effect.catchIf(
          update,
          (error) => error instanceof NotFoundError,
          () => Effect.succeed("not found")
        )
      )
    }
    case "setMany":
      return refused(storage.setMany(operation.entries, options))
  }
}

for (const [name, layer] of layers) {
  it.layer(layer, { timeout: "120 seconds" })(name, (it) => {
    it.effect.prop(
      "any JSON value round-trips exactly",
      [key, jsonValue],
      ([key, value]) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const store = freshStore()
          yield* storage.set(key, value, { store })
          expect(yield* storage.get(key, { store })).toStrictEqual(Option.some(value))
          expect(Array.from(yield* storage.getMany([key], { store }))).toStrictEqual([[key, value]])
        }),
      RUNS
    )

    it.effect.prop(
      "a value JSON cannot carry is refused with 9006 and changes nothing",
      [poisoned, fc.jsonValue()],
      ([value, before]) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const store = freshStore()
          yield* storage.set("k", before, { store })
          const setError = yield* Effect.flip(storage.set("k", value, { store }))
          expect(expectError(setError, SerializationError, 9006).path).toMatch(/^\$/)
          const setManyError = yield* Effect.flip(storage.setMany({ other: 1, k: value }, { store }))
          expectError(setManyError, SerializationError, 9006)
          expect(yield* storage.entries({ store })).toStrictEqual([{ key: "k", value: before }])
        }),
      RUNS
    )

    it.effect.prop(
      "random sequences of operations give what a plain Map model gives",
      [fc.array(operation, { maxLength: 40 })],
      ([operations]) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const prefix = freshStore()
          const stores = [`${prefix}`, `${prefix}%`, `${prefix}_`]
          const model = new Map<string, Map<string, Json>>()
          for (const operation of operations) {
            const expected = runModel(model, stores, operation)
            const actual = yield* runStorage(storage, stores, operation)
            expect(actual, inspect(operation, { depth: 6 })).toStrictEqual(expected)
          }
        }),
      RUNS
    )
  })
}

/** A step of the expiry model: a write (with or without expireIn), the clock moving on, or a read. */
type ExpiryStep =
  | { readonly op: "set"; readonly key: string; readonly value: number; readonly expireIn: number | null }
  | { readonly op: "update"; readonly key: string; readonly expireIn: number | null }
  | { readonly op: "remove"; readonly key: string }
  | { readonly op: "advance"; readonly millis: number }

const expiryKey = fc.constantFrom("a", "b", "c", "d")
// Small times as well as large ones, so that steps land on an entry's last millisecond and on its first one gone.
const expireIn = fc.option(fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3000 })), { nil: null })
const advance = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2000 }))
const expiryStep: fc.Arbitrary<ExpiryStep> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("set" as const), key: expiryKey, value: fc.nat(), expireIn }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("update" as const), key: expiryKey, expireIn }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), key: expiryKey }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("advance" as const), millis: advance })
  }
)

for (const [name, layer] of layers) {
  it.layer(layer, { timeout: "120 seconds" })(`${name} on a TestClock`, (it) => {
    it.effect.prop(
      "random writes with random expireIn and clock moves agree with a plain model at every step",
      [fc.array(expiryStep, { maxLength: 30 })],
      ([steps]) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const store = freshStore()
          // The model: each live key's value and expiry time; an entry is live while its expiry is after now.
          const model = new Map<string, { value: number; expiresAt: number | null }>()
          const live = (now: number) =>
            [...model].filter(([, entry]) => entry.expiresAt === null || entry.expiresAt > now)
          for (const step of steps) {
            const now = yield* Clock.currentTimeMillis
            const alive = new Map(live(now))
            switch (step.op) {
              case "set": {
                const options = step.expireIn === null ? { store } : { store, expireIn: step.expireIn }
                yield* storage.set(step.key, step.value, options)
                model.set(step.key, {
                  value: step.value,
                  expiresAt: step.expireIn === null ? null : now + step.expireIn
                })
                break
              }
              case "update": {
                const options =
                  step.expireIn === null ? { store, default: 0 } : { store, default: 0, expireIn: step.expireIn }
                yield* storage.update(step.key, (n) => (n as number) + 1, options)
                const current = alive.get(step.key)
                model.set(step.key, {
                  value: (current?.value ?? 0) + 1,
                  expiresAt: step.expireIn !== null ? now + step.expireIn : (current?.expiresAt ?? null)
                })
                break
              }
              case "remove":
                expect(yield* storage.remove(step.key, { store })).toBe(alive.has(step.key))
                model.delete(step.key)
                break
              case "advance":
                yield* TestClock.adjust(step.millis)
                break
            }
            const after = yield* Clock.currentTimeMillis
            const expected = live(after).sort(([a], [b]) => byCodePoint(a, b))
            const context = inspect({ step, after, expected })
            expect(yield* storage.keys({ store }), context).toEqual(expected.map(([key]) => key))
            expect(yield* storage.count({ store }), context).toBe(expected.length)
            for (const key of ["a", "b", "c", "d"]) {
              const entry = Option.getOrNull(yield* storage.getEntry(key, { store }))
              const wanted = expected.find(([k]) => k === key)?.[1]
              expect(
                entry === null ? null : { value: entry.value, expiresAt: entry.expiresAt },
                `${key} ${context}`
              ).toEqual(wanted ?? null)
              expect(yield* storage.has(key, { store })).toBe(wanted !== undefined)
            }
          }
        }),
      { fastCheck: { numRuns: 100 } }
    )
  })
}

// Random schemas, built from the kinds of Schema a user describes data with: dates, bigints, maps, class instances,
// options, optional fields, unions (tagged, or with null: unions whose members encode alike cannot round-trip in
// any store) and arrays. Each is stored through forSchema and must come back equal to what was set.
type AnySchema = Schema.Schema<unknown, unknown>
const fieldName = fc.constantFrom("a", "b", "c", "é")
const schemaOf: fc.Arbitrary<AnySchema> = fc.letrec<{ node: AnySchema; leaf: AnySchema; composite: AnySchema }>(
  (tie) => ({
    node: fc.oneof({ depthSize: "small", maxDepth: 3 }, tie("leaf"), tie("composite")),
    leaf: fc.constantFrom<AnySchema>(
      Schema.String as AnySchema,
      Schema.Finite as AnySchema,
      Schema.Boolean as AnySchema,
      Schema.Date as AnySchema,
      Schema.BigInt as AnySchema,
      Schema.Literal("x", "y") as AnySchema
    ),
    composite: fc.oneof(
      fc
        .uniqueArray(fc.tuple(fieldName, tie("node"), fc.boolean()), { selector: ([name]) => name, maxLength: 3 })
        .chain((fields) =>
          // A class without fields encodes to its own instance, which is refused as a value (9006): known, left.
          (fields.length === 0 ? fc.constant(false) : fc.boolean()).map((asClass) => {
            const struct = Object.fromEntries(
              fields.map(([name, schema, optional]) => [
                name,
                optional ? Schema.optionalWith(schema, { exact: true }) : schema
              ])
            )
            return (asClass ? Schema.Class<unknown>("Generated")(struct) : Schema.Struct(struct)) as AnySchema
          })
        ),
      tie("node").map((value) => Schema.Map({ key: Schema.String, value }) as AnySchema),
      tie("node").map((value) => Schema.Option(value) as AnySchema),
      tie("node").map((value) => Schema.NullOr(value) as AnySchema),
      tie("node").map((value) => Schema.Array(value) as AnySchema),
      fc
        .tuple(tie("node"), tie("node"))
        .map(([a, b]) => Schema.Union(Schema.TaggedStruct("A", { a }), Schema.TaggedStruct("B", { b })) as AnySchema)
    )
  })
).node

const schemaAndValues = schemaOf.chain((schema) =>
  fc.tuple(fc.constant(schema), fc.array(Arbitrary.make(schema), { minLength: 1, maxLength: 5 }))
)

for (const [name, layer] of layers) {
  it.layer(layer, { timeout: "120 seconds" })(`${name} with schemas`, (it) => {
    it.effect.prop(
      "for random schemas of dates, bigints, maps, classes, options, optional fields and unions, get(set(x)) equals x",
      [schemaAndValues],
      ([[schema, values]]) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const store = forSchema(storage, schema, { store: freshStore() })
          // Equal: of the schema's Type (a class instance, a Date, a bigint, …) and with the same encoded form.
          // (Schema.equivalence would do, but says two empty structs differ.)
          const isType = Schema.is(schema)
          const encode = Schema.encodeSync(schema)
          const same = (back: unknown, value: unknown) =>
            isType(back) && expect(encode(back)).toStrictEqual(encode(value))
          for (const [index, value] of values.entries()) {
            yield* store.set(`k${index}`, value)
            const back = Option.getOrThrow(yield* store.get(`k${index}`))
            expect(isType(back), inspect({ schema: String(schema), value, back }, { depth: 8 })).toBe(true)
            same(back, value)
          }
          for (const { key, value } of yield* store.entries()) same(value, values[Number(key.slice(1))])
        }),
      { fastCheck: { numRuns: 100 } }
    )
  })
}
