/**
 * The conformance cases of Schema-typed stores (`forSchema`, `layerTyped`): values decoded to the schema's Type,
 * encoded before they are stored, and Schema's own path and message in a refusal. Part of the one conformance suite.
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { forSchema, layerTyped, SerializationError, Storage, type TypedStore } from "../index.js"

class Note extends Schema.Class<Note>("Note")({
  title: Schema.String,
  at: Schema.Date,
  views: Schema.BigInt,
  tags: Schema.Array(Schema.String)
}) {
  get label(): string {
    return `${this.title} (${this.tags.length} tags)`
  }
}

const note = (title: string, views: bigint) =>
  new Note({ title, at: new Date("2026-11-27T10:00:00.000Z"), views, tags: ["a", "b"] })

class Notes extends Context.Tag("test/Notes")<Notes, TypedStore<Note>>() {}

export const typedCases = (name: string, it: Vitest.MethodsNonLive<Storage>, freshStore: () => string): void => {
  it.effect(`${name}: values come back as the schema's Type (class, Date, BigInt) and are stored encoded`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const notes = forSchema(storage, Note, { store })
      yield* notes.set("n1", note("first", 12345678901234567890n))
      yield* notes.setMany([["n2", note("second", 2n)]])
      const first = Option.getOrThrow(yield* notes.get("n1"))
      expect(first).toBeInstanceOf(Note)
      expect(first.label).toBe("first (2 tags)")
      expect(first.at).toBeInstanceOf(Date)
      expect(first.views).toBe(12345678901234567890n)
      // What is stored is the schema's encoded form, plain JSON.
      expect(yield* storage.get("n1", { store })).toEqual(
        Option.some({ title: "first", at: "2026-11-27T10:00:00.000Z", views: "12345678901234567890", tags: ["a", "b"] })
      )
      const entries = yield* notes.entries()
      expect(entries.map((entry) => [entry.key, entry.value.views])).toEqual([
        ["n1", 12345678901234567890n],
        ["n2", 2n]
      ])
      expect(entries.every((entry) => entry.value instanceof Note)).toBe(true)
      const listed = Chunk.toArray(yield* Stream.runCollect(notes.list({ prefix: "n" })))
      expect(listed.map((entry) => entry.value.title)).toEqual(["first", "second"])
      const page = yield* notes.page({ limit: 1 })
      expect(page.entries[0]!.value).toBeInstanceOf(Note)
      expect(page.cursor).not.toBeNull()
      const many = yield* notes.getMany(["n2", "absent"])
      expect([...many.keys()]).toEqual(["n2"])
      expect(many.get("n2")!.at.getTime()).toBe(Date.parse("2026-11-27T10:00:00.000Z"))
      const entry = Option.getOrThrow(yield* notes.getEntry("n2"))
      expect(entry.value).toBeInstanceOf(Note)
      expect(typeof entry.version).toBe("string")
      expect(yield* notes.count()).toBe(2)
      expect(yield* notes.keys()).toEqual(["n1", "n2"])
      expect(yield* notes.remove("n2")).toBe(true)
      expect(yield* notes.has("n2")).toBe(false)
    })
  )

  it.effect(
    `${name}: a value the schema refuses, or a stored value it cannot decode, is a SerializationError with Schema's path`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const notes = forSchema(storage, Note, { store })
        const refused = yield* Effect.flip(notes.set("bad", { ...note("x", 1n), views: "many" } as unknown as Note))
        expect(refused).toBeInstanceOf(SerializationError)
        expect(refused).toMatchObject({ code: 9006, key: "bad", store, path: "$.views" })
        expect(refused.message).toContain("bigint")
        // A refused value anywhere refuses the batch: nothing is written.
        yield* Effect.flip(notes.setMany({ ok: note("ok", 1n), bad: { title: 1 } as unknown as Note }))
        expect(yield* storage.keys({ store })).toEqual([])
        // A stored value of another shape.
        yield* storage.set("old", { title: "old", at: "not a date", views: "1", tags: [] }, { store })
        const unreadable = yield* Effect.flip(notes.get("old"))
        expect(unreadable).toMatchObject({ _tag: "SerializationError", code: 9006, key: "old", path: "$.at" })
        expect(unreadable.message).toContain("cannot decode")
        yield* Effect.flip(notes.entries())
      })
  )

  it.effect(`${name}: update decodes, applies and encodes in one transaction; a refused result writes nothing`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const notes = forSchema(storage, Note, { store })
      const bumped = yield* notes.update("n", (current) => new Note({ ...current, views: current.views + 1n }), {
        default: note("new", 0n)
      })
      expect(bumped.views).toBe(1n)
      expect((yield* notes.update("n", (current) => new Note({ ...current, views: current.views * 10n }))).views).toBe(
        10n
      )
      const refused = yield* Effect.flip(notes.update("n", (current) => ({ ...current, tags: [1] }) as unknown as Note))
      expect(refused).toMatchObject({ _tag: "SerializationError", code: 9006, path: "$.tags[0]" })
      expect(Option.getOrThrow(yield* notes.get("n")).views).toBe(10n)
      // Without a default, an absent key is NotFound, as for the untyped update.
      expect(yield* Effect.flip(notes.update("absent", (current) => current))).toMatchObject({ code: 9001 })
    })
  )

  it.effect(`${name}: watch gives decoded values, and layerTyped provides a typed store as its own service`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const typed = Effect.gen(function* () {
        const notes = yield* Notes
        yield* notes.set("w", note("watched", 7n))
        return notes
      }).pipe(Effect.provide(layerTyped(Notes, Note, { store })))
      const notes = yield* typed
      expect(notes.store).toBe(store)
      const changes = Chunk.toArray(yield* Stream.runCollect(Stream.take(notes.watch(undefined, { initial: true }), 1)))
      const change = changes[0]!
      expect(change.type === "set" && change.value instanceof Note && change.value.views).toBe(7n)
      expect(yield* storage.has("w", { store })).toBe(true)
    })
  )
}
