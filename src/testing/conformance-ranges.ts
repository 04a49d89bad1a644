/**
 * The conformance cases of ordered reads: selectors on keys, entries, list, page and count, cursors, and getEntry.
 * Part of the one conformance suite (`conformance.ts` runs them for every layer and for the Promise API).
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import {
  type Entry,
  InvalidKeyError,
  type Page,
  type PageOptions,
  type Selector,
  Storage,
  type StorageError,
  StorageErrorCode,
  type StorageService
} from "../index.js"
import type { TestTime } from "./time.js"

/** Code point order, written independently of the library's: compare the arrays of code points. */
const byCodePoint = (a: string, b: string): number => {
  const x = Array.from(a, (c) => c.codePointAt(0)!)
  const y = Array.from(b, (c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.length - y.length
}

/** What a selector selects, computed the plain way: filter, sort, reverse, cut. */
const model = (keys: ReadonlyArray<string>, selector: Selector): Array<string> => {
  const selected = keys
    .filter(
      (key) =>
        (selector.prefix === undefined || key.startsWith(selector.prefix)) &&
        (selector.start === undefined || byCodePoint(key, selector.start) >= 0) &&
        (selector.end === undefined || byCodePoint(key, selector.end) < 0)
    )
    .sort(byCodePoint)
  if (selector.reverse === true) selected.reverse()
  return selector.limit === undefined ? selected : selected.slice(0, selector.limit)
}

/** Keys at the edges of code point order: astral characters, U+FFFF, NUL, U+E000 after the surrogate range. */
const edgeKeys = [
  "a",
  "a\u0000",
  "a\u0000b",
  "ab",
  "abc",
  "b",
  "draft:1",
  "draft:2",
  "draft:10",
  "draft;",
  "draft",
  "é",
  "\uD7FF",
  "\uD7FFx",
  "\uE000",
  "\uFFFF",
  "\uFFFFa",
  "\uFFFF\uFFFF",
  "😀",
  "😀a",
  "😁",
  "\u{10FFFF}",
  "\u{10FFFF}\u{10FFFF}",
  "\u{10FFFF}a"
]

const selectors: ReadonlyArray<Selector> = [
  {},
  { prefix: "" },
  { prefix: "a" },
  { prefix: "a\u0000" },
  { prefix: "draft:" },
  { prefix: "draft" },
  { prefix: "\uD7FF" },
  { prefix: "\uFFFF" },
  { prefix: "😀" },
  { prefix: "\u{10FFFF}" },
  { prefix: "zzz" },
  { start: "b" },
  { end: "b" },
  { start: "a\u0000", end: "ab" },
  { start: "b", end: "b" },
  { start: "c", end: "b" },
  { end: "" },
  { start: "" },
  { prefix: "draft", start: "draft:2" },
  { prefix: "draft", end: "draft:2" },
  { prefix: "a", start: "b" },
  { start: "\uFFFF", end: "😁" },
  { reverse: true },
  { reverse: true, limit: 3 },
  { prefix: "draft:", reverse: true, limit: 2 },
  { prefix: "\uFFFF", reverse: true },
  { limit: 1 },
  { limit: 1000 },
  { start: "draft", end: "é", reverse: true, limit: 4 }
]

const collect = (stream: Stream.Stream<Entry, StorageError>) =>
  Effect.map(Stream.runCollect(stream), (chunk) => Chunk.toReadonlyArray(chunk))

/** Every page of a selector, following the cursors, and the cursors seen. */
const allPages = (storage: StorageService, options: PageOptions) =>
  Effect.gen(function* () {
    const pages: Array<Page> = []
    let cursor: string | undefined
    do {
      const page = yield* storage.page(cursor === undefined ? options : { ...options, cursor })
      pages.push(page)
      cursor = page.cursor ?? undefined
      if (pages.length > 10_000) throw new Error("page() never ended")
    } while (cursor !== undefined)
    return pages
  })

export const rangeCases = (
  name: string,
  it: Vitest.MethodsNonLive<Storage>,
  freshStore: () => string,
  time: TestTime
): void => {
  it.effect(`${name}: keys, entries, list, count and page select the same keys as a plain filter`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.setMany(
        edgeKeys.map((key, index) => [key, { index }] as const),
        { store }
      )
      yield* storage.set("draft:1", "other store", { store: freshStore() })
      for (const selector of selectors) {
        const expected = model(edgeKeys, selector)
        const what = JSON.stringify(selector)
        expect(yield* storage.keys({ ...selector, store }), what).toEqual(expected)
        const entries = yield* storage.entries({ ...selector, store })
        expect(
          entries.map((entry) => entry.key),
          what
        ).toEqual(expected)
        for (const entry of entries) expect(entry.value).toEqual({ index: edgeKeys.indexOf(entry.key) })
        expect(yield* collect(storage.list({ ...selector, store })), what).toEqual(entries)
        expect(yield* storage.count({ ...selector, store }), what).toBe(expected.length)
        const { limit, ...rest } = selector
        // A page's limit is its size: paging through with pages of 2 gives the whole selection (without limit).
        const pages = yield* allPages(storage, { ...rest, store, limit: 2 })
        expect(
          pages.flatMap((page) => page.entries.map((entry) => entry.key)),
          what
        ).toEqual(model(edgeKeys, rest))
        expect(pages.at(-1)!.cursor).toBeNull()
        for (const page of pages.slice(0, -1)) expect(page.entries).toHaveLength(2)
        void limit
      }
    })
  )

  it.effect(`${name}: page gives bounded pages with a cursor, and null after the last page`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const keys = Array.from({ length: 250 }, (_, i) => `user:${String(i).padStart(4, "0")}`)
      yield* storage.setMany(
        keys.map((key) => [key, key] as const),
        { store }
      )
      yield* storage.set("zz", 1, { store })
      const first = yield* storage.page({ store, prefix: "user:" })
      expect(first.entries.map((entry) => entry.key)).toEqual(keys.slice(0, 100))
      expect(typeof first.cursor).toBe("string")
      const pages = yield* allPages(storage, { store, prefix: "user:" })
      expect(pages.map((page) => page.entries.length)).toEqual([100, 100, 50])
      expect(pages.flatMap((page) => page.entries.map((entry) => entry.value))).toEqual(keys)
      // A selection that fills its last page exactly ends with that page, not with an empty one.
      const exact = yield* allPages(storage, { store, prefix: "user:", limit: 125 })
      expect(exact.map((page) => page.entries.length)).toEqual([125, 125])
      expect((yield* storage.page({ store, prefix: "none:" })).entries).toEqual([])
      expect((yield* storage.page({ store, prefix: "none:" })).cursor).toBeNull()
      // Backwards, with pages of 1000 (the most a page holds).
      const reversed = yield* storage.page({ store, prefix: "user:", reverse: true, limit: 1000 })
      expect(reversed.entries.map((entry) => entry.key)).toEqual([...keys].reverse())
      expect(reversed.cursor).toBeNull()
      // The page size may change from one page to the next; the cursor keeps the position.
      const small = yield* storage.page({ store, prefix: "user:", limit: 3 })
      const larger = yield* storage.page({ store, prefix: "user:", limit: 5, cursor: small.cursor! })
      expect(larger.entries.map((entry) => entry.key)).toEqual(keys.slice(3, 8))
    })
  )

  it.effect(`${name}: a page boundary on a key removed in between, and keys added before and after it`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.setMany({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 }, { store })
      const first = yield* storage.page({ store, limit: 3 })
      expect(first.entries.map((entry) => entry.key)).toEqual(["a", "b", "c"])
      yield* storage.remove("c", { store })
      yield* storage.setMany({ bb: 0, cc: 0 }, { store })
      const second = yield* storage.page({ store, limit: 3, cursor: first.cursor! })
      expect(second.entries.map((entry) => entry.key)).toEqual(["cc", "d", "e"])
      const backwards = yield* storage.page({ store, limit: 2, reverse: true })
      yield* storage.remove("e", { store })
      const next = yield* storage.page({ store, limit: 2, reverse: true, cursor: backwards.cursor! })
      expect(next.entries.map((entry) => entry.key)).toEqual(["d", "cc"])
    })
  )

  it.effect(`${name}: a malformed, altered or foreign cursor is refused with InvalidKey (9004)`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.setMany({ "p:a": 1, "p:b": 2, "p:c": 3, "q:a": 4 }, { store })
      const { cursor } = yield* storage.page({ store, prefix: "p:", limit: 1 })
      const valid = cursor!
      const [version, payload, digest] = valid.split(".") as [string, string, string]
      const forgedKey = Buffer.from("q:a").toString("base64url")
      const flipped = `${digest[0] === "A" ? "B" : "A"}${digest.slice(1)}`
      const refused: ReadonlyArray<readonly [string, unknown, PageOptions]> = [
        ["garbage", "not a cursor", { store, prefix: "p:" }],
        ["empty", "", { store, prefix: "p:" }],
        ["a number", 42, { store, prefix: "p:" }],
        ["null", null, { store, prefix: "p:" }],
        ["another key", `${version}.${forgedKey}.${digest}`, { store, prefix: "p:" }],
        ["an altered digest", `${version}.${payload}.${flipped}`, { store, prefix: "p:" }],
        ["an unknown version", `9.${payload}.${digest}`, { store, prefix: "p:" }],
        ["a truncated one", valid.slice(0, -3), { store, prefix: "p:" }],
        ["a huge one", "1.".padEnd(100_000, "A"), { store, prefix: "p:" }],
        ["another prefix", valid, { store, prefix: "q:" }],
        ["another direction", valid, { store, prefix: "p:", reverse: true }],
        ["another store", valid, { store: freshStore(), prefix: "p:" }],
        ["another start", valid, { store, prefix: "p:", start: "p:" }]
      ]
      for (const [what, bad, options] of refused) {
        const error = yield* Effect.flip(storage.page({ ...options, cursor: bad as string }))
        expect(error, what).toBeInstanceOf(InvalidKeyError)
        expect(error.code, what).toBe(StorageErrorCode.InvalidKey)
        expect(error.message.length, what).toBeLessThan(400)
      }
      const nullCursor = yield* Effect.flip(storage.page({ store, prefix: "p:", cursor: null as never }))
      expect(nullCursor.message).toContain("last")
      const next = yield* storage.page({ store, prefix: "p:", limit: 1, cursor: valid })
      expect(next.entries).toEqual([{ key: "p:b", value: 2 }])
    })
  )

  it.effect(`${name}: list reads a large store in chunks, in order, and stops when the consumer stops`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const keys = Array.from({ length: 3000 }, (_, i) => `k${String(i).padStart(5, "0")}`)
      yield* storage.setMany(
        keys.map((key, i) => [key, { i, text: "x".repeat(i % 50) }] as const),
        { store }
      )
      const all = yield* collect(storage.list({ store }))
      expect(all.map((entry) => entry.key)).toEqual(keys)
      expect(all[2999]).toEqual({ key: "k02999", value: { i: 2999, text: "x".repeat(2999 % 50) } })
      const reversed = yield* collect(storage.list({ store, reverse: true, limit: 1500 }))
      expect(reversed.map((entry) => entry.key)).toEqual([...keys].reverse().slice(0, 1500))
      const limited = yield* collect(storage.list({ store, limit: 1025 }))
      expect(limited).toHaveLength(1025)
      const firstFive = yield* collect(storage.list({ store }).pipe(Stream.take(5)))
      expect(firstFive.map((entry) => entry.key)).toEqual(keys.slice(0, 5))
      // Other operations work between the steps of an open list.
      const seen = yield* collect(
        storage.list({ store, prefix: "k001" }).pipe(
          Stream.tap((entry) => storage.set(`copy-${entry.key}`, entry.value, { store })),
          Stream.tap((entry) => storage.get(entry.key, { store }))
        )
      )
      expect(seen).toHaveLength(100)
      expect(yield* storage.count({ store, prefix: "copy-" })).toBe(100)
    })
  )

  it.effect(`${name}: list while writers change the store sees every unchanged key exactly once, in order`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const keys = Array.from({ length: 600 }, (_, i) => `k${String(i).padStart(4, "0")}`)
      yield* storage.setMany(
        keys.map((key) => [key, 0] as const),
        { store }
      )
      const touched = new Set<string>()
      let step = 0
      const seen = yield* collect(
        storage.list({ store }).pipe(
          Stream.tap((entry) =>
            Effect.gen(function* () {
              step++
              // Remove a key ahead, rewrite one ahead, add keys ahead of and behind the reader.
              const ahead = keys[Math.min(keys.length - 1, keys.indexOf(entry.key) + 7)]!
              const rewritten = keys[Math.min(keys.length - 1, keys.indexOf(entry.key) + 3)]!
              touched.add(ahead).add(rewritten)
              yield* storage.remove(ahead, { store })
              yield* storage.set(rewritten, step, { store })
              yield* storage.setMany({ [`${entry.key}-new`]: step, [`a-before-${step}`]: step }, { store })
            })
          )
        )
      )
      const seenKeys = seen.map((entry) => entry.key)
      expect(new Set(seenKeys).size).toBe(seenKeys.length)
      expect([...seenKeys].sort(byCodePoint)).toEqual(seenKeys)
      for (const key of keys) if (!touched.has(key)) expect(seenKeys).toContain(key)
      expect(seenKeys.some((key) => key.startsWith("a-before-"))).toBe(false)
    })
  )

  it.effect(`${name}: list returns values of several megabytes whole and in order`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const big = "y".repeat(3 * 1024 * 1024)
      yield* storage.setMany(
        Array.from({ length: 5 }, (_, i) => [`big-${i}`, `${i}${big}`] as const),
        { store }
      )
      yield* storage.set("small", 1, { store })
      const entries = yield* collect(storage.list({ store }))
      expect(entries.map((entry) => entry.key)).toEqual(["big-0", "big-1", "big-2", "big-3", "big-4", "small"])
      expect(entries.slice(0, 5).map((entry) => (entry.value as string).length)).toEqual(Array(5).fill(big.length + 1))
      expect(entries[5]!.value).toBe(1)
      expect((entries[3]!.value as string)[0]).toBe("3")
    })
  )

  it.effect(
    `${name}: list with metadata gives each entry as getEntry does, across chunks; json gives stored text; bad options are refused`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        // More entries than a first chunk holds, written by several calls (several versions), some expiring, one bytes.
        yield* storage.setMany(Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${100 + i}`, { i }])), {
          store
        })
        yield* time.advance(3)
        yield* storage.set("k105", "again", { store, expireIn: 60_000 })
        yield* storage.set("k150", new Uint8Array([1, 2, 3]), { store })
        yield* storage.set("k120", 1, { store, expireIn: 1 })
        yield* time.advance(1)
        const listed = Chunk.toArray(yield* Stream.runCollect(storage.list({ store }, { metadata: true })))
        const keys = yield* storage.keys({ store })
        expect(listed.map((entry) => entry.key)).toEqual(keys)
        expect(keys).toHaveLength(59)
        for (const entry of listed) expect(Option.some(entry)).toEqual(yield* storage.getEntry(entry.key, { store }))
        expect(listed.find((entry) => entry.key === "k105")?.expiresAt).toBeGreaterThan(yield* time.now)
        // Selectors apply as they do without metadata.
        const selected = Chunk.toArray(
          yield* Stream.runCollect(storage.list({ store, prefix: "k15", reverse: true, limit: 3 }, { metadata: true }))
        )
        expect(selected.map((entry) => [entry.key, entry.version])).toEqual(
          listed
            .filter((entry) => entry.key.startsWith("k15"))
            .reverse()
            .slice(0, 3)
            .map((entry) => [entry.key, entry.version])
        )
        // Without metadata (or with metadata: false), entries are key and value only.
        const plain = Chunk.toArray(yield* Stream.runCollect(storage.list({ store, limit: 1 }, { metadata: false })))
        expect(plain).toEqual([{ key: "k100", value: { i: 0 } }])
        // With json: each value's JSON text as stored (-0 kept), bytes as bytes; with metadata too.
        yield* storage.set("k101", { a: [-0, "é"], b: null }, { store })
        const texts = Chunk.toArray(yield* Stream.runCollect(storage.list({ store, prefix: "k10" }, { json: true })))
        expect(texts.slice(0, 3)).toEqual([
          { key: "k100", value: '{"i":0}' },
          { key: "k101", value: '{"a":[-0,"é"],"b":null}' },
          { key: "k102", value: '{"i":2}' }
        ])
        const withBoth = Chunk.toArray(
          yield* Stream.runCollect(storage.list({ store, start: "k150", limit: 1 }, { json: true, metadata: true }))
        )
        const bytesEntry = Option.getOrThrow(yield* storage.getEntry("k150", { store }))
        expect(withBoth).toEqual([{ ...bytesEntry, value: new Uint8Array([1, 2, 3]) }])
        for (const options of [{ metadata: 1 }, { meta: true }, { json: "yes" }, "metadata", null]) {
          const refused = yield* Effect.flip(Stream.runDrain(storage.list({ store }, options as never)))
          expect(refused.code).toBe(StorageErrorCode.InvalidKey)
        }
      })
  )

  it.effect(`${name}: getEntry gives the value with createdAt, kept across overwrites, and updatedAt`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      expect(yield* storage.getEntry("absent", { store })).toEqual(Option.none())
      const before = yield* time.now
      yield* storage.set("k", { v: 1 }, { store })
      const first = Option.getOrThrow(yield* storage.getEntry("k", { store }))
      expect(first).toEqual({
        key: "k",
        value: { v: 1 },
        createdAt: first.createdAt,
        updatedAt: first.createdAt,
        version: first.version,
        expiresAt: null
      })
      expect(first.createdAt).toBeGreaterThanOrEqual(before)
      expect(first.createdAt).toBeLessThanOrEqual(yield* time.now)
      yield* time.advance(5)
      yield* storage.setMany({ k: [2] }, { store })
      const second = Option.getOrThrow(yield* storage.getEntry("k", { store }))
      expect(second.value).toEqual([2])
      expect(second.createdAt).toBe(first.createdAt)
      expect(second.updatedAt).toBeGreaterThanOrEqual(first.updatedAt + 5)
      yield* storage.update("k", () => null, { store })
      const third = Option.getOrThrow(yield* storage.getEntry("k", { store }))
      expect(third).toMatchObject({ key: "k", value: null, createdAt: first.createdAt })
      // Removed and set again: a new key, created anew.
      yield* storage.remove("k", { store })
      yield* time.advance(5)
      yield* storage.set("k", "again", { store })
      expect(Option.getOrThrow(yield* storage.getEntry("k", { store })).createdAt).toBeGreaterThanOrEqual(
        first.createdAt + 10
      )
      const bad = yield* Effect.flip(storage.getEntry(7 as never, { store }))
      expect(bad.code).toBe(StorageErrorCode.InvalidKey)
    })
  )

  it.effect(
    `${name}: a refused selector fails with InvalidKey (9004) in every operation, before anything is read`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        yield* storage.set("k", 1, { store })
        const bad: ReadonlyArray<readonly [string, unknown, string]> = [
          ["a non-string prefix", { store, prefix: 5 }, "prefix must be a string"],
          ["a null start", { store, start: null }, "start must be a string"],
          ["an object end", { store, end: {} }, "end must be a string"],
          ["a lone surrogate", { store, prefix: "a\uD800" }, "surrogate"],
          ["a too long bound", { store, start: "x".repeat(2049) }, "2049"],
          ["a negative limit", { store, limit: -1 }, "limit"],
          ["a zero limit", { store, limit: 0 }, "limit"],
          ["a fractional limit", { store, limit: 1.5 }, "limit"],
          ["a NaN limit", { store, limit: Number.NaN }, "limit"],
          ["a string limit", { store, limit: "10" }, "limit"],
          ["a string reverse", { store, reverse: "yes" }, "reverse"],
          ["an unknown option", { store, prefx: "a" }, '"prefx"'],
          ["a cursor outside page", { store, cursor: "x" }, '"cursor"'],
          ["a string", "store", "object"],
          ["an invalid store", { store: "" }, "empty"],
          [
            "a throwing getter",
            {
              get prefix(): string {
                throw new Error("getter failed")
              }
            },
            "getter failed"
          ]
        ]
        for (const [what, selector, words] of bad) {
          const operations: ReadonlyArray<Effect.Effect<unknown, StorageError>> = [
            storage.keys(selector as Selector),
            storage.entries(selector as Selector),
            storage.count(selector as Selector),
            collect(storage.list(selector as Selector))
          ]
          for (const operation of operations) {
            const error = yield* Effect.flip(operation)
            expect(error, what).toBeInstanceOf(InvalidKeyError)
            expect(error.code, what).toBe(StorageErrorCode.InvalidKey)
            expect(error.message, what).toContain(words)
          }
          if (what !== "a cursor outside page") {
            const error = yield* Effect.flip(storage.page(selector as PageOptions))
            expect(error.code, what).toBe(StorageErrorCode.InvalidKey)
          }
        }
        const tooBig = yield* Effect.flip(storage.page({ store, limit: 1001 }))
        expect(tooBig.message).toContain("1000")
        expect(yield* storage.entries({ store })).toEqual([{ key: "k", value: 1 }])
      })
  )
}
