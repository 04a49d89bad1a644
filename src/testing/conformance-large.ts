/**
 * The conformance cases of large calls: a call over tens of thousands of entries leaves the caller's event loop
 * running while it works (timers and I/O go on), and is still one call: all or nothing, seen whole or not at all,
 * before the calls made after it. Part of the one conformance suite (`conformance.ts` runs them for every layer and
 * for the Promise API).
 */
import { expect, type Vitest } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { SerializationError, Storage } from "../index.js"

/** Entries enough that writing them takes far longer than a frame on any machine. */
const LARGE = 20_000

const entriesOf = (count: number, tag: string) =>
  Array.from(
    { length: count },
    (_, index) => [`k${String(index).padStart(6, "0")}`, { index, tag, text: `value ${index}` }] as const
  )

/**
 * Starts counting the turns of the event loop (each run of its check phase); the returned function stops counting
 * and gives the count. A call that held the loop from start to end lets it turn at most around its own asynchronous
 * steps.
 *
 * @internal
 */
export const countTurns = (): (() => number) => {
  let turns = 0
  let counting = true
  const tick = (): void => {
    if (!counting) return
    turns++
    setImmediate(tick)
  }
  setImmediate(tick)
  return () => {
    counting = false
    return turns
  }
}

/** `effect` with how many times the event loop turned while it ran (see {@link countTurns}). */
const turnsDuring = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<readonly [A, number], E, R> =>
  Effect.suspend(() => {
    const stop = countTurns()
    return effect.pipe(
      Effect.map((result) => [result, stop()] as const),
      Effect.onExit(() => Effect.sync(stop))
    )
  })

/** One turn of the event loop. */
const aTurn = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

export const largeCases = (name: string, it: Vitest.MethodsNonLive<Storage>, freshStore: () => string): void => {
  it.effect(`${name}: setMany, getMany, entries and deleteMany of ${LARGE} entries let the event loop run`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const entries = entriesOf(LARGE, "a")
      const keys = entries.map(([key]) => key)
      const [, whileWriting] = yield* turnsDuring(storage.setMany(entries, { store }))
      expect(whileWriting).toBeGreaterThanOrEqual(3)
      const [values, whileGetting] = yield* turnsDuring(storage.getMany(keys, { store }))
      expect(values.size).toBe(LARGE)
      expect(values.get(keys[LARGE - 1]!)).toEqual(entries[LARGE - 1]![1])
      expect(whileGetting).toBeGreaterThanOrEqual(3)
      const [listed, whileListing] = yield* turnsDuring(storage.entries({ store }))
      expect(listed.map((entry) => entry.key)).toEqual(keys)
      expect(listed[12_345]!.value).toEqual(entries[12_345]![1])
      expect(whileListing).toBeGreaterThanOrEqual(3)
      const [removed, whileRemoving] = yield* turnsDuring(storage.deleteMany(keys, { store }))
      expect(removed).toBe(LARGE)
      expect(whileRemoving).toBeGreaterThanOrEqual(3)
      expect(yield* storage.count({ store })).toBe(0)
    })
  )

  it.effect(`${name}: a transaction of 20 setMany of 1,000 lets the event loop run, and commits them as one`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const entries = entriesOf(LARGE, "b")
      const [, turns] = yield* turnsDuring(
        storage.transaction((tx) =>
          Effect.forEach(
            Array.from({ length: LARGE / 1000 }, (_, batch) => entries.slice(batch * 1000, (batch + 1) * 1000)),
            (batch) => tx.setMany(batch, { store }),
            { discard: true }
          )
        )
      )
      expect(turns).toBeGreaterThanOrEqual(3)
      expect(yield* storage.count({ store })).toBe(LARGE)
      const first = Option.getOrThrow(yield* storage.getEntry(entries[0]![0], { store }))
      const last = Option.getOrThrow(yield* storage.getEntry(entries[LARGE - 1]![0], { store }))
      expect(last.version).toBe(first.version)
    })
  )

  it.effect(
    `${name}: a large write is seen whole or not at all, and a write made meanwhile never lands inside it`,
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const store = freshStore()
        const entries = entriesOf(LARGE, "c")
        const writing = yield* Effect.fork(storage.setMany(entries, { store }))
        // The write has begun (or waits to), and let the loop turn: it may be anywhere.
        yield* aTurn
        const seen = yield* storage.count({ store })
        expect([0, LARGE]).toContain(seen)
        yield* storage.set(entries[0]![0], "meanwhile", { store })
        yield* Fiber.join(writing)
        expect(yield* storage.count({ store })).toBe(LARGE)
        // The set came after the batch (a newer version, its value kept) or before it (overwritten by the batch, with
        // the batch's version); never inside it, sharing its version.
        const batch = Option.getOrThrow(yield* storage.getEntry(entries[1]![0], { store }))
        const first = Option.getOrThrow(yield* storage.getEntry(entries[0]![0], { store }))
        if (first.value === "meanwhile") expect(first.version > batch.version).toBe(true)
        else expect([first.value, first.version]).toEqual([entries[0]![1], batch.version])
      })
  )

  it.effect(`${name}: a large setMany with one refused value at its end writes nothing`, () =>
    Effect.gen(function* () {
      const storage = yield* Storage
      const store = freshStore()
      const entries: Array<readonly [string, unknown]> = entriesOf(LARGE, "d")
      entries.push(["bad", { at: Number.NaN }])
      const failed = yield* Effect.flip(storage.setMany(entries, { store }))
      expect(failed).toBeInstanceOf(SerializationError)
      expect(failed.code).toBe(9006)
      expect(yield* storage.count({ store })).toBe(0)
    })
  )
}
