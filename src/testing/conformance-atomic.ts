/**
 * The conformance cases of atomic commits: checks on versions, writes across stores, all or nothing. Part of the one
 * conformance suite (`conformance.ts` runs them for every layer and for the Promise API).
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type CommitResult, InvalidKeyError, SerializationError, Storage, type StorageService } from "../index.js"

const versionOf = (storage: StorageService, key: string, store: string) =>
  Effect.map(storage.getEntry(key, { store }), (entry) => Option.map(entry, (found) => found.version))

export const atomicCases = (name: string, it: Vitest.MethodsNonLive<Storage>, freshStore: () => string): void => {
  it.effect(`${name}: a commit whose checks hold writes everything with one version`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const other = freshStore()
      yield* storage.set("balance", 10, { store })
      const seen = Option.getOrThrow(yield* versionOf(storage, "balance", store))
      const result = yield* storage
        .atomic()
        .check("balance", seen, { store })
        .check("new", null, { store })
        .set("balance", 5, { store })
        .set("new", { created: true }, { store })
        .set("log", ["moved 5"], { store: other })
        .remove("absent", { store })
        .commit()
      expect(result.ok).toBe(true)
      const { version } = result as Extract<CommitResult, { ok: true }>
      expect(version > seen).toBe(true)
      for (const [key, inStore] of [
        ["balance", store],
        ["new", store],
        ["log", other]
      ] as const) {
        expect(yield* versionOf(storage, key, inStore)).toEqual(Option.some(version))
      }
      expect(yield* storage.get("balance", { store })).toEqual(Option.some(5))
      expect(yield* storage.get("log", { store: other })).toEqual(Option.some(["moved 5"]))
      // A remove in a commit; the last write of a key wins.
      const second = yield* storage
        .atomic()
        .remove("new", { store })
        .set("balance", 1, { store })
        .set("balance", 2, { store })
        .commit()
      expect(second.ok).toBe(true)
      expect(yield* storage.has("new", { store })).toBe(false)
      expect(yield* storage.get("balance", { store })).toEqual(Option.some(2))
    })
  )

  it.effect(`${name}: a commit whose check fails writes nothing and says so`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("k", "first", { store })
      const stale = Option.getOrThrow(yield* versionOf(storage, "k", store))
      yield* storage.set("k", "second", { store })
      const current = Option.getOrThrow(yield* versionOf(storage, "k", store))
      const failed = yield* storage
        .atomic()
        .set("other", 1, { store })
        .check("k", stale, { store })
        .set("k", "third", { store })
        .commit()
      expect(failed).toEqual({ ok: false })
      const present = yield* storage.atomic().check("k", null, { store }).set("other", 1, { store }).commit()
      expect(present).toEqual({ ok: false })
      const absent = yield* storage.atomic().check("nothing", current, { store }).set("other", 1, { store }).commit()
      expect(absent).toEqual({ ok: false })
      expect(yield* storage.entries({ store })).toEqual([{ key: "k", value: "second" }])
      expect(yield* versionOf(storage, "k", store)).toEqual(Option.some(current))
      // The builder is unchanged by the methods called on it: it can be kept and committed again.
      const base = storage.atomic().check("k", current, { store })
      const withSet = base.set("k", "fourth", { store })
      expect((yield* base.commit()).ok).toBe(true)
      expect((yield* withSet.commit()).ok).toBe(true)
      expect(yield* storage.get("k", { store })).toEqual(Option.some("fourth"))
      expect((yield* withSet.commit()).ok).toBe(false)
    })
  )

  it.effect(`${name}: a refused key, version or value fails the commit with its code and writes nothing`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("k", 1, { store })
      const value = { when: new Date(0) }
      const refusals = [
        [storage.atomic().set("a", 1, { store }).set("b", value, { store }), SerializationError, 9006],
        [storage.atomic().set("a", 1, { store }).set("", 1, { store }), InvalidKeyError, 9004],
        [
          storage
            .atomic()
            .set("a", 1, { store })
            .remove(7 as never, { store }),
          InvalidKeyError,
          9004
        ],
        [storage.atomic().set("a", 1, { store }).check("k", "not a version", { store }), InvalidKeyError, 9004],
        [
          storage
            .atomic()
            .set("a", 1, { store })
            .check("k", 3 as never, { store }),
          InvalidKeyError,
          9004
        ],
        [storage.atomic().set("a", 1, { store: "" }), InvalidKeyError, 9004],
        [storage.atomic().check("k", "ffffffffffffffff", { store }).set("a", 1, { store }), InvalidKeyError, 9004]
      ] as const
      for (const [builder, errorClass, code] of refusals) {
        const error = yield* Effect.flip(builder.commit())
        expect(error).toBeInstanceOf(errorClass)
        expect(error.code).toBe(code)
      }
      const versionError = yield* Effect.flip(storage.atomic().check("k", "v1", { store }).commit())
      expect(versionError.message).toContain("getEntry")
      // A value is serialized when set is called: changing it afterwards changes nothing.
      const mutable = { n: 1 }
      const builder = storage.atomic().set("m", mutable, { store })
      mutable.n = 2
      expect((yield* builder.commit()).ok).toBe(true)
      expect(yield* storage.get("m", { store })).toEqual(Option.some({ n: 1 }))
      expect(yield* storage.keys({ store })).toEqual(["k", "m"])
    })
  )

  it.effect(`${name}: check-and-set from many fibers with retries loses no increment`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const increment = Effect.gen(function* () {
        for (;;) {
          const entry = yield* storage.getEntry("counter", { store })
          const current = Option.match(entry, { onNone: () => 0, onSome: (found) => found.value as number })
          const version = Option.match(entry, { onNone: () => null, onSome: (found) => found.version })
          const result = yield* storage
            .atomic()
            .check("counter", version, { store })
            .set("counter", current + 1, { store })
            .commit()
          if (result.ok) return
        }
      })
      yield* Effect.all(
        Array.from({ length: 50 }, () => increment),
        { concurrency: "unbounded" }
      )
      expect(yield* storage.get("counter", { store })).toEqual(Option.some(50))
    })
  )
}
