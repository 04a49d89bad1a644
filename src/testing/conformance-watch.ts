/**
 * The conformance cases of the change feed: live changes, `initial`, `since`, selectors, what each write gives, the
 * trimmed history, refusals. Part of the one conformance suite (`conformance.ts` runs them for every layer and for
 * the Promise API).
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import {
  type Change,
  GenericError,
  HistoryTrimmedError,
  InvalidKeyError,
  Storage,
  type StorageService,
  type WatchOptions,
  type WatchSelector
} from "../index.js"

/** A layer of the backend under test with a history of its own (a fresh database). */
export type WithHistory = (history: {
  readonly changes: number
  readonly maxAge: number
}) => Layer.Layer<Storage, unknown>

const versionOf = (storage: StorageService, key: string, store: string) =>
  Effect.map(storage.getEntry(key, { store }), (entry) => Option.getOrThrow(entry).version)

/** The first `count` changes of a watch. */
const take = (storage: StorageService, count: number, selector?: WatchSelector, options?: WatchOptions) =>
  Effect.map(Stream.runCollect(Stream.take(storage.watch(selector, options), count)), Chunk.toArray)

/** Waits real time (the tests run on a TestClock). */
const pause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** What a change says, without its version. */
const gist = (change: Change): string =>
  change.type === "set"
    ? `set ${change.key}=${JSON.stringify(change.value)}`
    : change.type === "remove"
      ? `remove ${change.key}`
      : "clear"

export const watchCases = (
  name: string,
  it: Vitest.MethodsNonLive<Storage>,
  freshStore: () => string,
  withHistory: WithHistory | undefined
): void => {
  it.effect(`${name}: since replays every kind of write in commit order, one version per call`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const other = freshStore()
      yield* storage.set("start", 0, { store })
      const since = yield* versionOf(storage, "start", store)
      yield* storage.set("a", { n: 1 }, { store })
      yield* storage.set("elsewhere", 1, { store: other })
      yield* storage.setMany({ b: [1, 2], c: null }, { store })
      yield* storage.remove("a", { store })
      yield* storage.remove("absent", { store })
      yield* storage.update("b", () => "updated", { store })
      const failed = yield* storage.atomic().check("c", null, { store }).set("never", 1, { store }).commit()
      expect(failed.ok).toBe(false)
      const commit = yield* storage.atomic().set("d", -0, { store }).remove("c", { store }).commit()
      yield* storage.deleteMany(["b", "d", "absent"], { store })
      yield* storage.clear({ store })
      yield* storage.clear({ store })
      yield* storage.set("after", true, { store })
      const changes = yield* take(storage, 11, { store }, { since })
      expect(changes.map(gist)).toEqual([
        'set a={"n":1}',
        "set b=[1,2]",
        "set c=null",
        "remove a",
        'set b="updated"',
        "set d=0",
        "remove c",
        "remove b",
        "remove d",
        "clear",
        "set after=true"
      ])
      // -0 comes back as -0, and every change names its store.
      const d = changes[5]!
      expect(d.type === "set" && Object.is(d.value, -0)).toBe(true)
      expect(changes.every((change) => change.store === store)).toBe(true)
      // One version per write call; versions increase in commit order, all after `since`.
      const versions = changes.map((change) => change.version)
      expect(versions[1]).toBe(versions[2])
      expect(versions[7]).toBe(versions[8])
      expect(versions[5]).toBe(versions[6])
      expect(commit).toEqual({ ok: true, version: versions[5] })
      expect(versions[0]! > since).toBe(true)
      for (let index = 1; index < versions.length; index++) {
        expect(versions[index]! >= versions[index - 1]!).toBe(true)
      }
      expect(new Set(versions).size).toBe(8)
      // The last change of each write is marked.
      expect(changes.map((change) => change.last)).toEqual([
        true,
        false,
        true,
        true,
        true,
        false,
        true,
        false,
        true,
        true,
        true
      ])
      expect(versions.at(-1)).toBe(yield* versionOf(storage, "after", store))
    })
  )

  it.effect(`${name}: a live watch gives the changes committed after it starts, and nothing before`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("before", 1, { store })
      const watching = yield* Effect.fork(take(storage, 3, { store }))
      yield* pause(50)
      yield* storage.set("x", 1, { store })
      yield* storage.transaction((tx) =>
        Effect.gen(function* () {
          yield* tx.set("y", 2, { store })
          yield* tx.remove("x", { store })
        })
      )
      const changes = yield* Fiber.join(watching)
      expect(changes.map(gist)).toEqual(["set x=1", "set y=2", "remove x"])
      expect(changes[1]!.version).toBe(changes[2]!.version)
      expect(changes[0]!.version < changes[1]!.version).toBe(true)
    })
  )

  it.effect(
    `${name}: initial gives the current entries in key order as of one version, then the changes after it`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.setMany({ b: 2, a: 1, "c:1": { deep: [true] } }, { store })
        yield* storage.set("a", 10, { store })
        const watching = yield* Effect.fork(take(storage, 4, { store }, { initial: true }))
        yield* pause(50)
        yield* storage.set("d", 4, { store })
        const changes = yield* Fiber.join(watching)
        expect(changes.map(gist)).toEqual(["set a=10", "set b=2", 'set c:1={"deep":[true]}', "set d=4"])
        expect(changes.slice(0, 3).every((change) => change.type === "set" && change.initial === true)).toBe(true)
        expect(changes[3]).not.toHaveProperty("initial")
        // The entries carry the version of their snapshot, the last of them marked: resuming from it gives the rest.
        const snapshot = changes[0]!.version
        expect(changes.slice(0, 3).map((change) => change.version)).toEqual([snapshot, snapshot, snapshot])
        expect(changes.map((change) => change.last)).toEqual([false, false, true, true])
        expect(snapshot >= (yield* versionOf(storage, "a", store))).toBe(true)
        expect(changes[3]!.version > snapshot).toBe(true)
        expect(changes[3]!.version).toBe(yield* versionOf(storage, "d", store))
        expect((yield* take(storage, 1, { store }, { since: snapshot })).map(gist)).toEqual(["set d=4"])
        // An empty selection lists nothing and goes on with the changes.
        const empty = yield* Effect.fork(take(storage, 1, { store, prefix: "e" }, { initial: true }))
        yield* pause(50)
        yield* storage.set("e1", 5, { store })
        expect((yield* Fiber.join(empty)).map(gist)).toEqual(["set e1=5"])
      })
  )

  it.effect(`${name}: key, keys and prefix select their changes; a clear of the store is seen by all`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const other = freshStore()
      yield* storage.set("mark", 0, { store })
      const since = yield* versionOf(storage, "mark", store)
      yield* storage.set("theme", "dark", { store })
      yield* storage.set("theme", "dark", { store: other })
      yield* storage.setMany({ "user:1": 1, "user:2": 2, username: 3, lang: "fr" }, { store })
      yield* storage.remove("user:1", { store })
      yield* storage.clear({ store })
      const byKey = yield* take(storage, 2, { store, key: "theme" }, { since })
      expect(byKey.map(gist)).toEqual(['set theme="dark"', "clear"])
      const byKeys = yield* take(storage, 3, { store, keys: ["lang", "user:2", "lang"] }, { since })
      expect(byKeys.map(gist)).toEqual(["set user:2=2", 'set lang="fr"', "clear"])
      const byPrefix = yield* take(storage, 4, { store, prefix: "user:" }, { since })
      expect(byPrefix.map(gist)).toEqual(["set user:1=1", "set user:2=2", "remove user:1", "clear"])
      // The last selected change of a write is marked, though the write goes on with keys the watch does not select.
      expect(byPrefix.map((change) => change.last)).toEqual([false, true, true, true])
      const otherStore = yield* take(storage, 1, { store: other }, { since })
      expect(otherStore.map(gist)).toEqual(['set theme="dark"'])
    })
  )

  it.effect(`${name}: a rolled-back transaction and a failed commit leave nothing in the feed`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("mark", 0, { store })
      const since = yield* versionOf(storage, "mark", store)
      const rolledBack = yield* Effect.exit(
        storage.transaction((tx) => Effect.zipRight(tx.set("ghost", 1, { store }), Effect.fail("no")))
      )
      expect(Exit.isFailure(rolledBack)).toBe(true)
      const refused = yield* Effect.exit(storage.setMany({ ok: 1, bad: Number.NaN }, { store }))
      expect(Exit.isFailure(refused)).toBe(true)
      yield* storage.set("real", 1, { store })
      const changes = yield* take(storage, 1, { store }, { since })
      expect(changes.map(gist)).toEqual(["set real=1"])
    })
  )

  it.effect(`${name}: resuming from the version of the last change seen gives exactly the rest`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("mark", 0, { store })
      const since = yield* versionOf(storage, "mark", store)
      for (let index = 0; index < 300; index++) yield* storage.set(`k${index % 7}`, index, { store })
      const first = yield* take(storage, 120, { store }, { since })
      const rest = yield* take(storage, 180, { store }, { since: first.at(-1)!.version })
      const all = [...first, ...rest]
      expect(all.map((change) => change.type === "set" && change.value)).toEqual(
        Array.from({ length: 300 }, (_, i) => i)
      )
    })
  )

  it.effect(`${name}: a write of more changes than one read takes marks only its last change`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("mark", 0, { store })
      const since = yield* versionOf(storage, "mark", store)
      yield* storage.setMany(
        Array.from({ length: 700 }, (_, i) => [`k${String(i).padStart(3, "0")}`, i] as const),
        { store }
      )
      yield* storage.set("then", 1, { store })
      const changes = yield* take(storage, 701, { store }, { since })
      expect(changes.filter((change) => change.last).map(gist)).toEqual(["set k699=699", "set then=1"])
      expect(new Set(changes.slice(0, 700).map((change) => change.version)).size).toBe(1)
    })
  )

  // The history cases need a fresh layer with a history of their own: a backend without that option skips them.
  const withHistoryIt = withHistory === undefined ? it.effect.skip : it.effect
  const history = (options: { readonly changes: number; readonly maxAge: number }) => withHistory!(options)

  withHistoryIt(`${name}: a since older than the kept history fails with HistoryTrimmed (9001); a kept one works`, () =>
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.set("first", 0)
        const old = yield* versionOf(storage, "first", "default")
        for (let index = 0; index < 40; index++) yield* storage.set("k", index)
        const error = yield* Effect.flip(take(storage, 1, {}, { since: old }))
        expect(error).toBeInstanceOf(HistoryTrimmedError)
        expect(error).toMatchObject({ _tag: "HistoryTrimmed", code: 9001, since: old })
        expect((error as HistoryTrimmedError).message).toContain("initial: true")
        // The last few changes are kept: resuming from a recent version replays them.
        const recent = yield* versionOf(storage, "k", "default")
        yield* storage.set("k", "next")
        expect((yield* take(storage, 1, {}, { since: recent })).map(gist)).toEqual(['set k="next"'])
      }).pipe(Effect.provide(history({ changes: 4, maxAge: 0 })))
    )
  )

  withHistoryIt(`${name}: a history kept by age is not trimmed by count`, () =>
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.set("first", 0)
        const old = yield* versionOf(storage, "first", "default")
        for (let index = 0; index < 40; index++) yield* storage.set("k", index)
        const changes = yield* take(storage, 40, {}, { since: old })
        expect(changes.map((change) => change.type === "set" && change.value)).toEqual(
          Array.from({ length: 40 }, (_, i) => i)
        )
      }).pipe(Effect.provide(history({ changes: 4, maxAge: 60 * 60 * 1000 })))
    )
  )

  it.effect(`${name}: refused selectors and options fail with InvalidKey (9004) before anything is read`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const refusals: ReadonlyArray<readonly [unknown, unknown]> = [
        [{ prefx: "a" }, undefined],
        [{ key: "a", prefix: "b" }, undefined],
        [{ key: "" }, undefined],
        [{ keys: "ab" }, undefined],
        [{ keys: ["ok", 42] }, undefined],
        [{ prefix: 1 }, undefined],
        [{ store: "" }, undefined],
        [undefined, { since: "not a version" }],
        [undefined, { since: null }],
        [undefined, { initial: "yes" }],
        [undefined, { initial: true, since: "0000000000000001" }],
        [undefined, { sinse: "0000000000000001" }],
        [undefined, { since: "0fffffffffffffff" }]
      ]
      for (const [selector, options] of refusals) {
        const error = yield* Effect.flip(take(storage, 1, selector as WatchSelector, options as WatchOptions))
        expect(error, JSON.stringify([selector, options])).toBeInstanceOf(InvalidKeyError)
        expect(error.code).toBe(9004)
      }
    })
  )

  it.effect(`${name}: watch inside a transaction fails with GenericError (9000)`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const error = yield* Effect.flip(storage.transaction((tx) => take(tx, 1)))
      expect(error).toBeInstanceOf(GenericError)
      expect(error).toMatchObject({ code: 9000 })
    })
  )
}
