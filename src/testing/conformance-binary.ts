/**
 * The conformance cases of binary values: a `Uint8Array` stored as its bytes and read back as a fresh `Uint8Array`,
 * through every operation; bytes inside a JSON value refused. Part of the one conformance suite.
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { SerializationError, Storage } from "../index.js"

const allBytes = (): Uint8Array => Uint8Array.from({ length: 256 }, (_, i) => i)

/** A plain Uint8Array (not a Buffer) with exactly these bytes. */
const expectBytes = (value: unknown, bytes: ArrayLike<number>): void => {
  expect(Object.getPrototypeOf(value)).toBe(Uint8Array.prototype)
  expect(Array.from(value as Uint8Array)).toEqual(Array.from(bytes))
}

export const binaryCases = (name: string, it: Vitest.MethodsNonLive<Storage>, freshStore: () => string): void => {
  it.effect(
    `${name}: bytes come back as a fresh Uint8Array with the same bytes, whatever view they were given in`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const original = allBytes()
        yield* storage.set("all", original, { store })
        original[0] = 99 // changing the caller's array after set changes nothing stored
        const read = Option.getOrThrow(yield* storage.get("all", { store }))
        expectBytes(read, allBytes())
        ;(read as Uint8Array)[1] = 99 // nor does changing what a read returned
        expectBytes(Option.getOrThrow(yield* storage.get("all", { store })), allBytes())
        // A Buffer, a view into a larger buffer, and no bytes at all.
        yield* storage.set("buffer", Buffer.from("héllo", "utf8"), { store })
        expectBytes(Option.getOrThrow(yield* storage.get("buffer", { store })), Buffer.from("héllo", "utf8"))
        const backing = Uint8Array.from([1, 2, 3, 4, 5, 6])
        yield* storage.set("view", backing.subarray(2, 4), { store })
        expectBytes(Option.getOrThrow(yield* storage.get("view", { store })), [3, 4])
        yield* storage.set("empty", new Uint8Array(0), { store })
        expectBytes(Option.getOrThrow(yield* storage.get("empty", { store })), [])
        // A large value with every byte value.
        const large = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 0xff)
        yield* storage.set("large", large, { store })
        expectBytes(Option.getOrThrow(yield* storage.get("large", { store })), large)
        // size counts bytes: 256 + 6 + 2 + 0 + 1 MiB.
        expect(yield* storage.size({ store })).toBe(256 + 6 + 2 + 0 + (1 << 20))
        // A text that looks like JSON stays text, and bytes that look like JSON stay bytes.
        yield* storage.set("json-like bytes", new TextEncoder().encode('{"a":1}'), { store })
        expectBytes(
          Option.getOrThrow(yield* storage.get("json-like bytes", { store })),
          new TextEncoder().encode('{"a":1}')
        )
        yield* storage.set("text", "\u0000\u00ff", { store })
        expect(yield* storage.get("text", { store })).toEqual(Option.some("\u0000\u00ff"))
      })
  )

  it.effect(`${name}: bytes go through every read and write: batches, ranges, metadata, atomic, update, watch`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      yield* storage.set("mark", 0, { store })
      const since = Option.getOrThrow(yield* storage.getEntry("mark", { store })).version
      yield* storage.setMany({ a: Uint8Array.of(1), b: { json: true }, c: Uint8Array.of(3, 3) }, { store })
      const many = yield* storage.getMany(["a", "b", "c"], { store })
      expectBytes(many.get("a"), [1])
      expect(many.get("b")).toEqual({ json: true })
      const entries = yield* storage.entries({ store, prefix: "c" })
      expectBytes(entries[0]!.value, [3, 3])
      const listed = Chunk.toArray(yield* Stream.runCollect(storage.list({ store, start: "a", end: "b" })))
      expectBytes(listed[0]!.value, [1])
      const page = yield* storage.page({ store, limit: 1, start: "c" })
      expectBytes(page.entries[0]!.value, [3, 3])
      expectBytes(Option.getOrThrow(yield* storage.getEntry("a", { store })).value, [1])
      const commit = yield* storage.atomic().set("d", Uint8Array.of(4), { store }).commit()
      expect(commit.ok).toBe(true)
      const updated = yield* storage.update("d", (current) => Uint8Array.from([...(current as Uint8Array), 5]), {
        store
      })
      expectBytes(updated, [4, 5])
      expectBytes(Option.getOrThrow(yield* storage.get("d", { store })), [4, 5])
      yield* storage.transaction((tx) => tx.set("e", Uint8Array.of(6), { store }))
      const changes = Chunk.toArray(yield* Stream.runCollect(Stream.take(storage.watch({ store }, { since }), 6)))
      const values = changes.map((change) => (change.type === "set" ? change.value : undefined))
      expectBytes(values[0], [1])
      expect(values[1]).toEqual({ json: true })
      expectBytes(values[3], [4])
      expectBytes(values[4], [4, 5])
      expectBytes(values[5], [6])
    })
  )

  it.effect(
    `${name}: bytes inside a JSON value are refused with 9006, saying to store them under a key of their own`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const error = yield* Effect.flip(storage.set("photo", { name: "a.png", thumb: Uint8Array.of(1) }, { store }))
        expect(error).toBeInstanceOf(SerializationError)
        expect(error).toMatchObject({ code: 9006, path: "$.thumb" })
        expect(error.message).toContain("key of their own")
        yield* Effect.flip(storage.setMany({ ok: Uint8Array.of(1), bad: [Uint8Array.of(2)] }, { store }))
        expect(yield* storage.keys({ store })).toEqual([])
        // Other typed arrays are not bytes: refused whole.
        const typed = yield* Effect.flip(storage.set("samples", Int16Array.of(1, 2), { store }))
        expect(typed).toMatchObject({ code: 9006, path: "$" })
      })
  )
}
