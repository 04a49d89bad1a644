/**
 * The conformance cases of transactions: commit, rollback, one version, other fibers waiting, savepoints. Part of the
 * one conformance suite (`conformance.ts` runs them for every layer and for the Promise API).
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { GenericError, Storage, type StorageService } from "../index.js"

const versionOf = (storage: StorageService, key: string, store: string) =>
  Effect.map(storage.getEntry(key, { store }), (entry) => Option.getOrThrow(entry).version)

class Refused {
  readonly _tag = "Refused"
}

export const transactionCases = (name: string, it: Vitest.MethodsNonLive<Storage>, freshStore: () => string): void => {
  it.effect(`${name}: a transaction commits every write across stores with one version, and sees its own writes`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const other = freshStore()
      yield* storage.set("balance", 10, { store })
      const before = yield* versionOf(storage, "balance", store)
      const result = yield* storage.transaction((tx) =>
        Effect.gen(function* () {
          const balance = Option.getOrThrow(yield* tx.get("balance", { store })) as number
          yield* tx.set("balance", balance - 3, { store })
          yield* tx.setMany({ a: 1, b: 2 }, { store: other })
          yield* tx.update("a", (n) => (n as number) + 1, { store: other })
          const commit = yield* tx.atomic().check("b", null, { store }).set("c", 3, { store }).commit()
          expect(commit.ok).toBe(true)
          expect(yield* tx.get("balance", { store })).toEqual(Option.some(7))
          expect(yield* tx.keys({ store: other })).toEqual(["a", "b"])
          return "done"
        })
      )
      expect(result).toBe("done")
      expect(yield* storage.get("balance", { store })).toEqual(Option.some(7))
      expect(yield* storage.get("a", { store: other })).toEqual(Option.some(2))
      const version = yield* versionOf(storage, "balance", store)
      expect(version > before).toBe(true)
      for (const [key, inStore] of [
        ["a", other],
        ["b", other],
        ["c", store]
      ] as const) {
        expect(yield* versionOf(storage, key, inStore)).toBe(version)
      }
      yield* storage.set("after", 1, { store })
      expect((yield* versionOf(storage, "after", store)) > version).toBe(true)
    })
  )

  it.effect(`${name}: a transaction whose effect fails or dies writes nothing, and fails with its error`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.setMany({ keep: "old", gone: 1 }, { store })
      const failed = yield* Effect.flip(
        storage.transaction((tx) =>
          Effect.gen(function* () {
            yield* tx.set("keep", "new", { store })
            yield* tx.remove("gone", { store })
            yield* tx.clear({ store: freshStore() })
            return yield* Effect.fail(new Refused())
          })
        )
      )
      expect(failed).toBeInstanceOf(Refused)
      const died = yield* Effect.exit(
        storage.transaction((tx) => Effect.flatMap(tx.set("keep", "died", { store }), () => Effect.die("boom")))
      )
      expect(Exit.isFailure(died)).toBe(true)
      // A refused write inside fails the transaction with its coded error.
      const refused = yield* Effect.flip(
        storage.transaction((tx) =>
          Effect.zipRight(tx.set("keep", "x", { store }), tx.set("bad", Number.NaN, { store }))
        )
      )
      expect((refused as { code?: number }).code).toBe(9006)
      expect(yield* storage.entries({ store })).toEqual([
        { key: "gone", value: 1 },
        { key: "keep", value: "old" }
      ])
    })
  )

  it.effect(`${name}: other fibers never see part of a transaction, and their writes come after it`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const writer = yield* Effect.fork(
        storage.transaction((tx) =>
          Effect.gen(function* () {
            yield* tx.set("a", 1, { store })
            yield* Deferred.succeed(started, undefined)
            yield* Deferred.await(gate)
            yield* tx.set("b", 2, { store })
          })
        )
      )
      yield* Deferred.await(started)
      // A read made meanwhile waits for the transaction (SQLite: one connection) or reads what was committed before
      // it (PostgreSQL: a snapshot); never half of it. A write waits for it (the write lock).
      const reader = yield* Effect.fork(storage.entries({ store }))
      const other = yield* Effect.fork(storage.set("c", 3, { store }))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(other))).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(writer)
      yield* Fiber.join(other)
      const whole = [
        { key: "a", value: 1 },
        { key: "b", value: 2 }
      ]
      // (The other fiber's write may come before the read, once the transaction is over.)
      expect([[], whole, [...whole, { key: "c", value: 3 }]]).toContainEqual(yield* Fiber.join(reader))
      // Versions are fixed-width strings: their order is their string order.
      const version = (key: string) =>
        Effect.map(storage.getEntry(key, { store }), (entry) => Option.getOrThrow(entry).version)
      expect(yield* version("a")).toBe(yield* version("b"))
      expect((yield* version("c")) > (yield* version("a"))).toBe(true)
    })
  )

  it.effect(`${name}: a nested transaction is a savepoint, and tx fails with 9000 once its transaction ended`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      let kept: StorageService | undefined
      yield* storage.transaction((tx) =>
        Effect.gen(function* () {
          kept = tx
          yield* tx.set("outer", 1, { store })
          const inner = yield* Effect.flip(
            tx.transaction((inner) => Effect.zipRight(inner.set("inner", 1, { store }), Effect.fail(new Refused())))
          )
          expect(inner).toBeInstanceOf(Refused)
          expect(yield* tx.has("inner", { store })).toBe(false)
          yield* tx.transaction((inner) => inner.set("committed", 1, { store }))
          yield* tx.set("last", 1, { store })
        })
      )
      expect(yield* storage.keys({ store })).toEqual(["committed", "last", "outer"])
      const outer = yield* versionOf(storage, "outer", store)
      expect(yield* versionOf(storage, "committed", store)).toBe(outer)
      expect(yield* versionOf(storage, "last", store)).toBe(outer)
      const late = yield* Effect.flip(kept!.set("late", 1, { store }))
      expect(late).toBeInstanceOf(GenericError)
      expect(late.code).toBe(9000)
      expect(yield* storage.has("late", { store })).toBe(false)
      // A savepoint that took the transaction's version and was undone gives it back: no version is used twice.
      yield* storage.transaction((tx) =>
        Effect.gen(function* () {
          yield* Effect.flip(
            tx.transaction((inner) => Effect.zipRight(inner.set("undone", 1, { store }), Effect.fail(new Refused())))
          )
          yield* tx.set("x", 1, { store })
        })
      )
      yield* storage.set("y", 1, { store })
      const x = yield* versionOf(storage, "x", store)
      const y = yield* versionOf(storage, "y", store)
      expect(x > outer).toBe(true)
      expect(y > x).toBe(true)
    })
  )
}
