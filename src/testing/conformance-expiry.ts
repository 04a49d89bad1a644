/**
 * The conformance cases of expiring entries: `expireIn` on every write of values, invisibility to every read at
 * once, `expiresAt`, the background sweeper and the writes that meet expired entries, their removal in the change
 * feed, and refused values. Part of the one conformance suite (`conformance.ts` runs them for every layer, on a
 * `TestClock`, and for the Promise API, on the system clock moved forward).
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { type Change, InvalidKeyError, NotFoundError, Storage, type StorageService } from "../index.js"
import type { TestTime } from "./time.js"

/** Everything every read says about a store, to compare before and after an entry expires. */
const everyRead = (storage: StorageService, store: string, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const got: Record<string, unknown> = {}
    const has: Record<string, boolean> = {}
    const meta: Record<string, unknown> = {}
    for (const key of keys) {
      got[key] = Option.getOrNull(yield* storage.get(key, { store }))
      has[key] = yield* storage.has(key, { store })
      meta[key] = Option.getOrNull(Option.map(yield* storage.getEntry(key, { store }), (entry) => entry.value))
    }
    return {
      got,
      has,
      meta,
      many: Object.fromEntries(yield* storage.getMany(keys, { store })),
      keys: yield* storage.keys({ store }),
      prefixed: yield* storage.keys({ store, prefix: "k" }),
      limited: yield* storage.keys({ store, limit: 2 }),
      reversed: yield* storage.keys({ store, reverse: true, limit: 2 }),
      entries: (yield* storage.entries({ store })).map((entry) => entry.key),
      list: Chunk.toArray(yield* Stream.runCollect(storage.list({ store }))).map((entry) => entry.key),
      page: (yield* storage.page({ store, limit: 2 })).entries.map((entry) => entry.key),
      count: yield* storage.count({ store }),
      countLimited: yield* storage.count({ store, limit: 2 }),
      countPrefixed: yield* storage.count({ store, prefix: "k" }),
      size: yield* storage.size({ store }),
      listed: (yield* storage.stores()).find((row) => row.store === store) ?? null
    }
  })

const expiresAtOf = (storage: StorageService, key: string, store: string) =>
  Effect.map(storage.getEntry(key, { store }), (entry) => Option.getOrThrow(entry).expiresAt)

/** The changes of a store after a version, until `count` of them have come. */
const changesSince = (storage: StorageService, store: string, since: string, count: number) =>
  Effect.map(Stream.runCollect(Stream.take(storage.watch({ store }, { since }), count)), Chunk.toArray)

const gist = (change: Change): string =>
  change.type === "set"
    ? `set ${change.key}`
    : change.type === "remove"
      ? `remove ${change.key}${change.expired === true ? " (expired)" : ""}`
      : "clear"

export const expiryCases = (
  name: string,
  it: Vitest.MethodsNonLive<Storage>,
  freshStore: () => string,
  time: TestTime
): void => {
  it.effect(`${name}: an entry with expireIn is there until it expires, then absent to every read at once`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const keys = ["a", "k1", "k2", "k3"]
      yield* storage.setMany({ a: "stays", k1: 1, k3: 3 }, { store })
      const start = yield* time.now
      yield* storage.set("k2", { big: "x".repeat(100) }, { store, expireIn: 1000 })
      const expiresAt = yield* expiresAtOf(storage, "k2", store)
      expect(expiresAt).toBeGreaterThanOrEqual(start + 1000)
      expect(expiresAt).toBeLessThanOrEqual((yield* time.now) + 1000)
      const before = yield* everyRead(storage, store, keys)
      expect(before.keys).toEqual(keys)
      expect(before.count).toBe(4)
      // A moment before it expires: still there.
      yield* time.advance(expiresAt! - (yield* time.now) - 1)
      expect(yield* everyRead(storage, store, keys)).toEqual(before)
      yield* time.advance(1)
      const after = yield* everyRead(storage, store, keys)
      expect(after).toEqual({
        got: { a: "stays", k1: 1, k2: null, k3: 3 },
        has: { a: true, k1: true, k2: false, k3: true },
        meta: { a: "stays", k1: 1, k2: null, k3: 3 },
        many: { a: "stays", k1: 1, k3: 3 },
        keys: ["a", "k1", "k3"],
        prefixed: ["k1", "k3"],
        limited: ["a", "k1"],
        reversed: ["k3", "k1"],
        entries: ["a", "k1", "k3"],
        list: ["a", "k1", "k3"],
        page: ["a", "k1"],
        count: 3,
        countLimited: 2,
        countPrefixed: 2,
        size: before.size - JSON.stringify({ big: "x".repeat(100) }).length,
        listed: { store, count: 3, size: before.size - JSON.stringify({ big: "x".repeat(100) }).length }
      })
      expect(before.listed).toEqual({ store, count: 4, size: before.size })
      // A store whose every entry has expired is not listed.
      const gone = freshStore()
      yield* storage.set("k", 1, { store: gone, expireIn: 10 })
      expect((yield* storage.stores()).some((row) => row.store === gone)).toBe(true)
      yield* time.advance(10)
      expect((yield* storage.stores()).some((row) => row.store === gone)).toBe(false)
    })
  )

  it.effect(`${name}: getEntry gives expiresAt; overwriting without expireIn removes the expiry`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("k", 1, { store })
      expect(yield* expiresAtOf(storage, "k", store)).toBeNull()
      const now = yield* time.now
      yield* storage.set("k", 2, { store, expireIn: 60_000 })
      const first = yield* expiresAtOf(storage, "k", store)
      expect(first! - now).toBeGreaterThanOrEqual(60_000)
      yield* time.advance(10)
      yield* storage.set("k", 3, { store, expireIn: 60_000 })
      expect((yield* expiresAtOf(storage, "k", store))! - first!).toBeGreaterThanOrEqual(10)
      yield* storage.set("k", 4, { store })
      expect(yield* expiresAtOf(storage, "k", store)).toBeNull()
      yield* time.advance(61_000)
      expect(yield* storage.get("k", { store })).toEqual(Option.some(4))
      // An Effect Duration is accepted as well as milliseconds.
      const later = yield* time.now
      yield* storage.set("d", 1, { store, expireIn: "10 seconds" })
      yield* storage.set("e", 1, { store, expireIn: Duration.minutes(1) })
      expect((yield* expiresAtOf(storage, "d", store))! - later).toBeGreaterThanOrEqual(10_000)
      expect((yield* expiresAtOf(storage, "d", store))! - later).toBeLessThan(11_000)
      expect((yield* expiresAtOf(storage, "e", store))! - later).toBeGreaterThanOrEqual(60_000)
    })
  )

  it.effect(`${name}: an expired key is a new key to every write: created anew, absent to remove and update`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("k", "old", { store, expireIn: 100 })
      const created = Option.getOrThrow(yield* storage.getEntry("k", { store })).createdAt
      yield* time.advance(100)
      expect(yield* storage.remove("k", { store })).toBe(false)
      yield* storage.set("k", "one", { store, expireIn: 100 })
      yield* time.advance(200)
      const missing = yield* Effect.flip(storage.update("k", (n) => n, { store }))
      expect(missing).toBeInstanceOf(NotFoundError)
      expect(missing.code).toBe(9001)
      expect(yield* storage.update("k", (n) => [n], { store, default: 0 })).toEqual([0])
      const entry = Option.getOrThrow(yield* storage.getEntry("k", { store }))
      expect(entry.expiresAt).toBeNull()
      expect(entry.createdAt).toBeGreaterThanOrEqual(created + 300)
      yield* storage.set("s", "old", { store, expireIn: 100 })
      yield* time.advance(100)
      yield* storage.setMany({ s: "new" }, { store })
      expect(Option.getOrThrow(yield* storage.getEntry("s", { store })).createdAt).toBeGreaterThanOrEqual(created + 400)
      expect(yield* storage.deleteMany(["s", "k", "never"], { store })).toBe(2)
    })
  )

  it.effect(`${name}: update keeps an entry's expiry, unless expireIn gives a new one`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("hits", 0, { store, expireIn: 1000 })
      const expiresAt = yield* expiresAtOf(storage, "hits", store)
      yield* time.advance(500)
      expect(yield* storage.update("hits", (n) => (n as number) + 1, { store })).toBe(1)
      expect(yield* expiresAtOf(storage, "hits", store)).toBe(expiresAt)
      yield* time.advance(500)
      expect(yield* storage.has("hits", { store })).toBe(false)
      yield* storage.set("hits", 0, { store, expireIn: 1000 })
      const now = yield* time.now
      yield* storage.update("hits", (n) => (n as number) + 1, { store, expireIn: 5000 })
      expect((yield* expiresAtOf(storage, "hits", store))! - now).toBeGreaterThanOrEqual(5000)
    })
  )

  it.effect(`${name}: setMany, atomic commits and transactions take expireIn`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.setMany({ a: 1, b: 2 }, { store, expireIn: 1000 })
      yield* storage.set("c", 3, { store })
      const commit = yield* storage
        .atomic()
        .check("d", null, { store })
        .set("d", 4, { store, expireIn: 1000 })
        .set("e", 5, { store })
        .commit()
      expect(commit.ok).toBe(true)
      yield* storage.transaction((tx) => tx.set("f", 6, { store, expireIn: 1000 }))
      expect(yield* storage.keys({ store })).toEqual(["a", "b", "c", "d", "e", "f"])
      const dVersion = Option.getOrThrow(yield* storage.getEntry("d", { store })).version
      yield* time.advance(1000)
      expect(yield* storage.keys({ store })).toEqual(["c", "e"])
      // An expired key is absent to a commit's checks: its last version no longer holds, null does.
      const stale = yield* storage.atomic().check("d", dVersion, { store }).set("d", "x", { store }).commit()
      expect(stale).toEqual({ ok: false })
      const fresh = yield* storage.atomic().check("d", null, { store }).set("d", "y", { store }).commit()
      expect(fresh.ok).toBe(true)
      expect(yield* storage.get("d", { store })).toEqual(Option.some("y"))
    })
  )

  it.effect(`${name}: expired entries are deleted in the background, and the feed says so`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("keep", 1, { store })
      const since = Option.getOrThrow(yield* storage.getEntry("keep", { store })).version
      yield* storage.setMany({ a: 1, b: 2 }, { store, expireIn: 1000 })
      yield* storage.set("c", 3, { store, expireIn: 2000 })
      yield* time.advance(1000)
      const first = yield* changesSince(storage, store, since, 5)
      expect(first.map(gist)).toEqual(["set a", "set b", "set c", "remove a (expired)", "remove b (expired)"])
      // One sweep, one version, after the writes.
      expect(first[3]!.version).toBe(first[4]!.version)
      expect(first[3]!.version > first[2]!.version).toBe(true)
      expect([first[3]!.last, first[4]!.last]).toEqual([false, true])
      expect(yield* storage.keys({ store })).toEqual(["c", "keep"])
      yield* time.advance(1000)
      const second = yield* changesSince(storage, store, first[4]!.version, 1)
      expect(second.map(gist)).toEqual(["remove c (expired)"])
      expect(yield* storage.keys({ store })).toEqual(["keep"])
    })
  )

  it.effect(`${name}: a write that meets an expired entry deletes it and records its expiry in the feed`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("live", 1, { store })
      yield* storage.set("old", 1, { store, expireIn: 1000 })
      const since = Option.getOrThrow(yield* storage.getEntry("old", { store })).version
      yield* time.advance(1000)
      // Whether the sweeper or this write deletes it, it is gone once, as an expiry, and never counted as removed.
      expect(yield* storage.deleteMany(["old", "live"], { store })).toBe(1)
      const changes = yield* changesSince(storage, store, since, 2)
      expect(changes.map(gist).sort()).toEqual(["remove live", "remove old (expired)"])
    })
  )

  it.effect(`${name}: watch with initial lists no expired entry`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("a", 1, { store })
      yield* storage.set("b", 2, { store, expireIn: 100 })
      yield* time.advance(100)
      const initial = yield* Effect.map(
        Stream.runCollect(Stream.take(storage.watch({ store }, { initial: true }), 1)),
        Chunk.toArray
      )
      expect(initial.map(gist)).toEqual(["set a"])
      expect(initial[0]!.last).toBe(true)
    })
  )

  it.effect(`${name}: a refused expireIn or option name fails with InvalidKey (9004) and writes nothing`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("k", "kept", { store })
      const refused: ReadonlyArray<unknown> = [
        -1,
        0,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        1e20,
        "soon",
        "-5 seconds",
        Duration.infinity,
        {},
        null,
        true
      ]
      for (const expireIn of refused) {
        const options = { store, expireIn } as never
        const writes: ReadonlyArray<Effect.Effect<unknown, { readonly code: number; readonly message: string }>> = [
          storage.set("k", "new", options),
          storage.setMany({ k: "new", other: 1 }, options),
          storage.update("k", () => "new", options),
          storage.atomic().set("k", "new", options).commit()
        ]
        for (const write of writes) {
          const error = yield* Effect.flip(write)
          expect(error, String(expireIn)).toBeInstanceOf(InvalidKeyError)
          expect(error.code).toBe(9004)
          expect(error.message).toContain("expireIn")
        }
      }
      // A misspelt option (or another library's name for it) is refused, not ignored.
      const ttl = yield* Effect.flip(storage.set("k", "new", { store, ttl: 1000 } as never))
      expect(ttl.code).toBe(9004)
      expect(ttl.message).toContain('"ttl"')
      expect(yield* storage.keys({ store })).toEqual(["k"])
      expect(yield* storage.get("k", { store })).toEqual(Option.some("kept"))
      expect(yield* expiresAtOf(storage, "k", store)).toBeNull()
    })
  )
}
