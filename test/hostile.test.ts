/**
 * Hostile and careless input: whatever a caller passes, each operation either stores and returns it exactly or
 * refuses it with InvalidKey (9004) or SerializationError (9006), and stored data and the schema stay unchanged.
 */
import * as path from "node:path"
import { expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import { isStorageError, layerMemory, layerSqlite, Storage, type StorageService } from "../src/index.js"
import { openDatabase } from "../src/layers/Sqlite.js"
import { tempDir } from "./support.js"

const dir = tempDir()
const sqliteFile = path.join(dir, "hostile", "storage.db")

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.constantFrom(
    "'; DROP TABLE runtime_storage; --",
    '" OR 1=1 --',
    "%",
    "_",
    "%_%",
    "a%",
    "\\",
    "\u0000",
    "a\u0000b",
    "\uD800",
    "\uDFFF",
    "x\uD83D",
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "default",
    "sentinel",
    "ロ".repeat(700),
    "k".repeat(2049),
    "s".repeat(257)
  )
)

const garbage: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.anything({
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
    withUnicodeString: true
  }),
  fc.constantFrom(undefined, null, Number.NaN, -0, Symbol("s"), () => 1, [], {}, new Date(), [["k", 1]])
)

const call = (
  storage: StorageService,
  op: number,
  a: unknown,
  b: unknown,
  c: unknown
): Effect.Effect<unknown, unknown> => {
  const options = c as { store?: string }
  switch (op) {
    case 0:
      return storage.get(a as string, options)
    case 1:
      return storage.set(a as string, b, options)
    case 2:
      return storage.remove(a as string, options)
    case 3:
      return storage.clear(options)
    case 4:
      return storage.keys(options)
    case 5:
      return storage.has(a as string, options)
    case 6:
      return storage.entries(options)
    case 7:
      return storage.getMany(a as Array<string>, options)
    case 8:
      return storage.setMany(a as Record<string, unknown>, options)
    case 9:
      return storage.deleteMany(a as Array<string>, options)
    case 10:
      return storage.size(options)
    case 11:
      return storage.update(a as string, () => b, options)
    case 12:
      return storage.count(options)
    case 13:
      return storage.page(options)
    case 14:
      return Stream.runCollect(storage.list(options))
    case 15:
      return storage.getEntry(a as string, options)
    default:
      return storage
        .atomic()
        .check(a as string, b as string, options)
        .set(a as string, b, options)
        .remove(b as string, options)
        .commit()
  }
}

const SENTINEL = { store: "sentinel" }
const sentinelEntries = [
  { key: "a", value: { nested: [1, "two", null] } },
  { key: "b", value: "keep me" }
]

const layers: ReadonlyArray<readonly [string, Layer.Layer<Storage, unknown>]> = [
  ["layerMemory", layerMemory],
  ["layerSqlite", layerSqlite({ filename: sqliteFile })]
]

for (const [name, layer] of layers) {
  it.layer(layer, { timeout: "120 seconds" })(name, (it) => {
    it.effect.prop(
      "random garbage at every operation: stored exactly, or refused with 9004/9006, and other data untouched",
      [
        fc.nat(16),
        garbage,
        garbage,
        fc.oneof(
          garbage,
          fc.record({ store: garbage }),
          // Selectors: every option, each either missing, plausible or garbage.
          fc.record(
            {
              prefix: fc.oneof(hostileString, garbage),
              start: fc.oneof(hostileString, garbage),
              end: fc.oneof(hostileString, garbage),
              reverse: fc.oneof(fc.boolean(), garbage),
              limit: fc.oneof(fc.integer({ min: -2, max: 2000 }), garbage),
              cursor: fc.oneof(hostileString, garbage)
            },
            { requiredKeys: [] }
          )
        )
      ],
      ([op, a, b, c]) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          yield* storage.setMany(
            sentinelEntries.map((entry) => [entry.key, entry.value] as const),
            SENTINEL
          )
          const options = c as { store?: string }
          const before = yield* Effect.either(storage.entries(options))
          const exit = yield* Effect.exit(call(storage, op, a, b, c))
          if (Exit.isFailure(exit)) {
            const error = exit.cause._tag === "Fail" ? exit.cause.error : exit.cause
            expect(isStorageError(error), String(error)).toBe(true)
            // NotFound only for an update of an absent key.
            expect([9004, 9006, ...(op === 11 ? [9001] : [])]).toContain((error as { code: number }).code)
            // A refused call changed nothing in the store it named.
            if (before._tag === "Right") expect(yield* storage.entries(options)).toStrictEqual(before.right)
          } else if (op === 1 || op === 11) {
            // A set or update that succeeded stored the value exactly.
            expect(yield* storage.get(a as string, options)).toStrictEqual(Option.some(b))
          } else if (op === 8) {
            // A setMany that succeeded stored every entry exactly, the last value of a repeated key winning.
            const written = new Map(
              Symbol.iterator in (a as object)
                ? (Array.from(a as Iterable<[string, unknown]>) as Array<[string, unknown]>)
                : Object.entries(a as object)
            )
            for (const [key, value] of written) {
              expect(yield* storage.get(key, options)).toStrictEqual(Option.some(value))
            }
          }
          const touchedSentinel = (c as { store?: unknown } | null)?.store === "sentinel"
          if (!touchedSentinel) expect(yield* storage.entries(SENTINEL)).toStrictEqual(sentinelEntries)
        }),
      { fastCheck: { numRuns: 300 } }
    )
  })
}

it("the schema is unchanged by all of that", () => {
  const db = new Database(sqliteFile, { readonly: true })
  const schema = db.prepare("SELECT type, name, tbl_name FROM sqlite_schema ORDER BY name").all()
  db.close()
  expect(schema).toEqual([
    { type: "table", name: "runtime_storage", tbl_name: "runtime_storage" },
    { type: "table", name: "runtime_storage_changes", tbl_name: "runtime_storage_changes" },
    { type: "index", name: "runtime_storage_expiry", tbl_name: "runtime_storage" },
    { type: "index", name: "runtime_storage_key", tbl_name: "runtime_storage" },
    { type: "table", name: "runtime_storage_migrations", tbl_name: "runtime_storage_migrations" }
  ])
})

it.layer(layerSqlite({ filename: path.join(dir, "extremes", "storage.db") }))("extremes", (it) => {
  it.effect("very large and very deep values are stored exactly or refused with 9006", () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const large = { text: "x".repeat(8 * 1024 * 1024), list: Array.from({ length: 100_000 }, (_, i) => i) }
      yield* storage.set("large", large)
      expect(yield* storage.get("large")).toStrictEqual(Option.some(large))
      let deep: unknown = "bottom"
      for (let i = 0; i < 1000; i++) deep = { d: [deep] }
      yield* storage.set("deep", deep)
      expect(yield* storage.get("deep")).toStrictEqual(Option.some(deep))
      let tooDeep: unknown = 0
      for (let i = 0; i < 200_000; i++) tooDeep = [tooDeep]
      const error = yield* Effect.flip(storage.set("tooDeep", tooDeep))
      expect(error).toMatchObject({ _tag: "SerializationError", code: 9006 })
      expect(error.message).toContain("nested too deeply")
      expect(yield* storage.has("tooDeep")).toBe(false)
    })
  )

  it.effect("objects carrying __proto__ and constructor never reach Object.prototype", () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const hostile = JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}}}')
      const store = { store: "proto" }
      yield* storage.set("hostile", hostile, store)
      yield* storage.setMany(hostile, store)
      yield* storage.update("hostile", (current) => current, store)
      const many = yield* storage.getMany(["__proto__", "constructor", "hostile"], store)
      const entries = yield* storage.entries(store)
      expect(({} as { isAdmin?: boolean }).isAdmin).toBeUndefined()
      expect(Object.prototype).not.toHaveProperty("isAdmin")
      expect(many.get("__proto__")).toEqual({ isAdmin: true })
      expect(entries.map((entry) => entry.key)).toEqual(["__proto__", "constructor", "hostile"])
    })
  )
})

it("connections stay defensive: untrusted schema (set by the library), no extension loading and no writable schema (better-sqlite3 defaults it relies on)", () => {
  const db = openDatabase({ filename: path.join(dir, "defensive", "storage.db") })
  try {
    expect(() => db.prepare("SELECT load_extension('/tmp/evil.so')").get()).toThrow(/not authorized/)
    db.pragma("writable_schema = ON")
    expect(() => db.prepare("UPDATE sqlite_schema SET sql = sql").run()).toThrow(/may not be modified/)
    expect(db.pragma("trusted_schema", { simple: true })).toBe(0)
  } finally {
    db.close()
  }
})
