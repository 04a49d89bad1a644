/**
 * Strict durability: `set` of new keys with `durability: "strict"` (SQLite's synchronous=FULL: every commit waits for
 * its fsync) against raw better-sqlite3 with synchronous=FULL. Both pay one fsync per write, so the goal is tight.
 */
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { layerSqlite, Storage } from "../dist/index.js"
import { open } from "../dist/promise.js"
import { keyAt, valueAt } from "./data.mjs"
import { openRawDatabase, rawApi } from "./raw.mjs"

const sideOf = async (side, filename) => {
  if (side === "raw") {
    const db = openRawDatabase(filename)
    db.pragma("synchronous = FULL")
    const api = rawApi(db)
    return {
      set: (key, value) => api.set(key, value),
      count: async () => (await api.keys()).length,
      close: async () => db.close()
    }
  }
  if (side === "promise") {
    const client = open({ filename, durability: "strict" })
    await client.size()
    return {
      set: (key, value) => client.set(key, value),
      count: async () => (await client.keys()).length,
      close: () => client.close()
    }
  }
  const runtime = ManagedRuntime.make(layerSqlite({ filename, durability: "strict" }))
  const storage = await runtime.runPromise(Storage)
  return {
    setAll: (keys, values) =>
      runtime.runPromise(Effect.forEach(keys, (key, i) => storage.set(key, values[i]), { discard: true })),
    count: () => runtime.runPromise(Effect.map(storage.keys(), (keys) => keys.length)),
    close: () => runtime.dispose()
  }
}

/** Records strictSet (µs per set) for the three sides, `options.reps` repetitions after a warm-up. */
export const runStrict = async ({ options, tmp, record, check, log, rotated }) => {
  const N = options.verify ? 10 : options.quick ? 50 : 300
  const sides = {}
  for (const side of ["raw", "promise", "effect"]) sides[side] = await sideOf(side, path.join(tmp, `strict-${side}.db`))
  for (let rep = 0; rep <= options.reps; rep++) {
    const keys = Array.from({ length: N }, (_, i) => keyAt(rep * N + i))
    const values = keys.map((_, i) => valueAt(rep * N + i))
    for (const side of rotated(["raw", "promise", "effect"], rep)) {
      const a = sides[side]
      const start = performance.now()
      if (a.setAll !== undefined) await a.setAll(keys, values)
      else for (let i = 0; i < N; i++) await a.set(keys[i], values[i])
      const ms = performance.now() - start
      const count = await a.count()
      check(count === (rep + 1) * N, `strict ${side}: ${count} keys after ${rep + 1} repetitions of ${N}`)
      if (rep > 0) record("strictSet", side, (ms * 1000) / N)
    }
    log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${options.reps}`}`)
  }
  for (const side of Object.values(sides)) await side.close()
}
