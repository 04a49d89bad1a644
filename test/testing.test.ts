/**
 * The testing kit, `runtime-storage/testing`, used as a user would: its arbitraries against the rules they claim,
 * and `layerFaulty` failing and delaying calls as its plan says.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { layerSqlite, SerializationError, Storage, StorageErrorCode } from "../src/index.js"
import { conformance } from "../src/testing/vitest.js"
import {
  invalidExpireIn,
  invalidKey,
  invalidStoreName,
  key,
  layerFaulty,
  layerMemory,
  storedValue,
  storeName,
  unstorableValue
} from "../src/testing.js"

const RUNS = { fastCheck: { numRuns: 100 } }

it.layer(layerMemory)("the arbitraries", (it) => {
  it.effect.prop(
    "keys, store names and stored values are accepted and round-trip",
    [key, storeName, storedValue],
    ([k, store, value]) =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.set(k, value, { store })
        expect(yield* storage.get(k, { store })).toStrictEqual(Option.some(value))
      }),
    RUNS
  )

  it.effect.prop(
    "invalid keys are refused with 9004",
    [invalidKey],
    ([k]) =>
      Effect.gen(function* () {
        const storage = yield* Storage
        expect((yield* Effect.flip(storage.set(k as string, 1))).code).toBe(StorageErrorCode.InvalidKey)
        expect((yield* Effect.flip(storage.get(k as string))).code).toBe(StorageErrorCode.InvalidKey)
      }),
    RUNS
  )

  it.effect.prop(
    "invalid store names are refused with 9004",
    [invalidStoreName],
    ([store]) =>
      Effect.gen(function* () {
        const storage = yield* Storage
        expect((yield* Effect.flip(storage.set("k", 1, { store: store as string }))).code).toBe(9004)
      }),
    RUNS
  )

  it.effect.prop(
    "unstorable values are refused with 9006 and write nothing",
    [unstorableValue],
    ([value]) =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const error = yield* Effect.flip(storage.set("poisoned", value))
        expect(error).toBeInstanceOf(SerializationError)
        expect(yield* storage.has("poisoned")).toBe(false)
      }),
    RUNS
  )

  it.effect.prop(
    "invalid expireIn values are refused with 9004",
    [invalidExpireIn],
    ([expireIn]) =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const error = yield* Effect.flip(storage.set("k", 1, { expireIn: expireIn as number }))
        expect(error.code).toBe(9004)
      }),
    RUNS
  )
})

describe("layerFaulty", () => {
  it.effect("fails every Nth call of an operation with the chosen code, and writes nothing for it", () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const results: Array<string> = []
      for (let i = 1; i <= 6; i++) {
        const exit = yield* Effect.either(storage.set(`k${i}`, i))
        results.push(
          exit._tag === "Left"
            ? `${exit.left._tag} ${exit.left.code} ${"sqliteCode" in exit.left ? exit.left.sqliteCode : ""}`
            : "ok"
        )
      }
      expect(results).toEqual(["ok", "ok", "WriteFailed 9002 SQLITE_FULL", "ok", "ok", "WriteFailed 9002 SQLITE_FULL"])
      expect(yield* storage.keys()).toEqual(["k1", "k2", "k4", "k5"])
      // Other operations are not touched.
      expect(yield* storage.get("k1")).toEqual(Option.some(1))
    }).pipe(Effect.provide(layerFaulty(layerMemory, { faults: [{ operations: ["set"], every: 3, fail: 9002 }] })))
  )

  it.effect("fails the calls about the keys a predicate picks, batches included", () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      yield* storage.setMany({ good: 1, bad: 2 })
      expect(yield* storage.get("good")).toEqual(Option.some(1))
      expect((yield* Effect.flip(storage.get("bad"))).code).toBe(9003)
      expect((yield* Effect.flip(storage.getMany(["good", "bad"]))).code).toBe(9003)
      expect(yield* storage.getMany(["good"])).toEqual(new Map([["good", 1]]))
      // A list that throws when read is refused as the wrapped storage refuses it (9004, carrying what it threw).
      const throwing = {
        [Symbol.iterator]: (): Iterator<string> => {
          throw new Error("boom")
        }
      }
      const refused = yield* Effect.flip(storage.getMany(throwing))
      expect([refused.code, (refused as { cause?: Error }).cause?.message]).toEqual([9004, "boom"])
      // A generator of keys is read once: the predicate and the wrapped storage see the same keys.
      function* keys() {
        yield "good"
        yield "other"
      }
      expect(yield* storage.getMany(keys())).toEqual(new Map([["good", 1]]))
      yield* storage.setMany(
        (function* () {
          yield ["other", 3] as const
        })()
      )
      expect(yield* storage.getMany(keys())).toEqual(
        new Map([
          ["good", 1],
          ["other", 3]
        ])
      )
    }).pipe(
      Effect.provide(
        layerFaulty(layerMemory, {
          faults: [{ operations: ["get", "getMany"], key: (k) => k.startsWith("bad"), fail: 9003 }]
        })
      )
    )
  )

  it.effect("with a probability, draws from a seeded generator: the same seed fails the same calls", () =>
    Effect.gen(function* () {
      const pattern = (seed: number, probability: number) =>
        Effect.gen(function* () {
          const storage = yield* Storage
          const outcomes: Array<boolean> = []
          for (let i = 0; i < 40; i++) outcomes.push((yield* Effect.either(storage.has("k")))._tag === "Left")
          return outcomes
        }).pipe(Effect.provide(layerFaulty(layerMemory, { seed, faults: [{ probability, fail: 9005 }] })))
      const first = yield* pattern(7, 0.3)
      expect(yield* pattern(7, 0.3)).toEqual(first)
      expect(first.filter(Boolean).length).toBeGreaterThan(2)
      expect(first.filter(Boolean).length).toBeLessThan(25)
      expect(yield* pattern(8, 0.3)).not.toEqual(first)
      expect((yield* pattern(7, 0)).some(Boolean)).toBe(false)
      expect((yield* pattern(7, 1)).every(Boolean)).toBe(true)
    })
  )

  it.effect("delays calls on the Clock: a TestClock decides when they go on", () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const slow = yield* Effect.fork(storage.set("k", 1))
      yield* TestClock.adjust(999)
      expect(Option.isNone(yield* Fiber.poll(slow))).toBe(true)
      yield* TestClock.adjust(1)
      yield* Fiber.join(slow)
      expect(yield* storage.get("k")).toEqual(Option.some(1))
    }).pipe(Effect.provide(layerFaulty(layerMemory, { faults: [{ operations: ["set"], latency: "1 second" }] })))
  )

  it.effect("faults streams and atomic commits too, on any layer", () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      yield* storage.set("k", 1)
      const listed = yield* Effect.flip(Stream.runCollect(storage.list()))
      expect(listed.code).toBe(9003)
      const commit = yield* Effect.flip(storage.atomic().set("k", 2).commit())
      expect(commit.code).toBe(9000)
      expect(
        Chunk.toArray(yield* Stream.runCollect(Stream.take(storage.watch({}, { initial: true }), 1)))
      ).toHaveLength(1)
      expect(yield* storage.get("k")).toEqual(Option.some(1))
    }).pipe(
      Effect.provide(
        layerFaulty(layerSqlite({ filename: ":memory:" }), {
          faults: [
            { operations: ["list"], fail: 9003 },
            { operations: ["commit"], fail: 9000 }
          ]
        })
      )
    )
  )

  it.effect("a plan it cannot follow fails the layer with 9004", () =>
    Effect.gen(function* () {
      for (const fault of [{ every: 0 }, { probability: 2 }, { fail: 9004 as never }]) {
        const error = yield* Effect.flip(Effect.provide(Storage, layerFaulty(layerMemory, { faults: [fault] })))
        expect(error.code).toBe(9004)
      }
    })
  )
})

// The exported conformance suite on a Storage that is not one of the library's layers (a wrapper, as a user's own
// would be), in one call; without `withHistory`, its two history cases are skipped.
conformance(
  "a Storage of the user's own (layerMemory behind layerFaulty, no faults)",
  layerFaulty(layerMemory, { faults: [] })
)
