/**
 * The three sides of the benchmark, behind one interface of whole workloads:
 *
 * - raw: better-sqlite3 the straightforward way: the library's table shape and pragmas, prepared statements,
 *   JSON.stringify / JSON.parse, and every operation returned as a Promise and awaited, as the Promise API is.
 * - promise: the built Promise API, `open({ filename, durability })` from dist/promise.js.
 * - effect: the built Effect API, `layerSqlite` from dist/index.js in a `ManagedRuntime`; each workload is ONE
 *   running effect (a loop inside `Effect.gen`).
 *
 * Every workload returns its results so that the caller can verify them after timing.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { layerSqlite, Storage } from "../dist/index.js"
import { open } from "../dist/promise.js"
import { openRawDatabase, rawApi } from "./raw.mjs"

export const SIDES = ["raw", "promise", "effect"]

/** What the page workload keeps of a page: its keys and its first entry. */
const pageSummary = (entries) => ({ keys: entries.map((entry) => entry.key), first: entries[0] })

/** The workloads over any Promise-returning API (raw and promise): every operation awaited in turn. */
const promiseWorkloads = (api) => ({
  setEach: async (keys, values) => {
    for (let i = 0; i < keys.length; i++) await api.set(keys[i], values[i])
  },
  getEach: async (keys) => {
    const out = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) out[i] = await api.get(keys[i])
    return out
  },
  hasEach: async (keys) => {
    const out = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) out[i] = await api.has(keys[i])
    return out
  },
  removeEach: async (keys) => {
    const out = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) out[i] = await api.remove(keys[i])
    return out
  },
  /** Bytes values: raw stores a BLOB (setBlob), the library a Uint8Array (set). */
  setBytesEach: async (keys, bytes) => {
    const set = api.setBlob ?? api.set
    for (let i = 0; i < keys.length; i++) await set(keys[i], bytes[i])
  },
  getBytesEach: async (keys) => {
    const get = api.getBlob ?? api.get
    const out = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) out[i] = await get(keys[i])
    return out
  },
  /** One `Promise.all` of concurrent gets per batch, the batches in turn. */
  getConcurrent: async (batches) => {
    const out = new Array(batches.length)
    for (let b = 0; b < batches.length; b++) out[b] = await Promise.all(batches[b].map((key) => api.get(key)))
    return out
  },
  getManyEach: async (batches) => {
    const out = new Array(batches.length)
    for (let b = 0; b < batches.length; b++) out[b] = await api.getMany(batches[b])
    return out
  },
  setMany: (pairs) => api.setMany(pairs),
  /**
   * An import: the batches written in one transaction (the library's `transaction`, each batch a setMany; raw: one
   * setMany of them all, which is one transaction).
   */
  importBatches: (batches) =>
    api.transaction === undefined
      ? api.setMany(batches.flat())
      : api.transaction(async (tx) => {
          for (const batch of batches) await tx.setMany(batch)
        }),
  deleteManyEach: async (batches) => {
    const out = new Array(batches.length)
    for (let b = 0; b < batches.length; b++) out[b] = await api.deleteMany(batches[b])
    return out
  },
  keys: () => api.keys(),
  entries: () => api.entries(),
  clear: () => api.clear(),
  versionsOf: async (keys) => {
    const out = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) {
      out[i] = api.versionOf === undefined ? (await api.getEntry(keys[i])).version : await api.versionOf(keys[i])
    }
    return out
  },
  /** One atomic commit per key: a check of its version and a set. */
  atomicEach: async (keys, values, versions) => {
    const out = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) {
      out[i] =
        api.checkAndSet === undefined
          ? (await api.atomic().check(keys[i], versions[i]).set(keys[i], values[i]).commit()).ok
          : await api.checkAndSet(keys[i], versions[i], values[i])
    }
    return out
  },
  /**
   * `pages` consecutive pages of `size` under a prefix, following the cursors. What is kept of each page for the
   * verification is its keys and first entry, as a UI that renders a page and drops it would keep nothing.
   */
  pages: async (prefix, pages, size) => {
    const out = []
    let cursor
    for (let p = 0; p < pages; p++) {
      const page = await api.page(cursor === undefined ? { prefix, limit: size } : { prefix, limit: size, cursor })
      out.push(pageSummary(page.entries))
      cursor = page.cursor
    }
    return out
  },
  countEach: async (prefix, times) => {
    let result
    for (let i = 0; i < times; i++) result = await api.count({ prefix })
    return result
  },
  /** Visits every entry of the store, streamed. */
  stream:
    api.stream ??
    (async (visit) => {
      for await (const entry of api.list()) visit(entry)
    }),
  /** Fills the store (untimed), in batches. */
  fill: async (keys, values) => {
    for (let start = 0; start < keys.length; start += 10_000) {
      const pairs = []
      for (let i = start; i < Math.min(keys.length, start + 10_000); i++) pairs.push([keys[i], values[i]])
      await api.setMany(pairs)
    }
  },
  value: (result) => result
})

const openRaw = (filename) => {
  const db = openRawDatabase(filename)
  return { ...promiseWorkloads(rawApi(db)), close: async () => db.close() }
}

const openPromise = async (filename) => {
  const client = open({ filename, durability: "relaxed" })
  await client.size() // opens the connection outside of any timing
  return { ...promiseWorkloads(client), close: () => client.close() }
}

const openEffect = async (filename) => {
  const runtime = ManagedRuntime.make(layerSqlite({ filename, durability: "relaxed" }))
  /** Runs `body(storage)` as one effect. */
  const run = (body) => runtime.runPromise(Effect.flatMap(Storage, body))
  await run((storage) => storage.size()) // builds the layer outside of any timing
  return {
    setEach: (keys, values) =>
      run((storage) =>
        Effect.gen(function* () {
          for (let i = 0; i < keys.length; i++) yield* storage.set(keys[i], values[i])
        })
      ),
    getEach: (keys) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(keys.length)
          for (let i = 0; i < keys.length; i++) out[i] = yield* storage.get(keys[i])
          return out
        })
      ),
    hasEach: (keys) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(keys.length)
          for (let i = 0; i < keys.length; i++) out[i] = yield* storage.has(keys[i])
          return out
        })
      ),
    setBytesEach: (keys, bytes) =>
      run((storage) =>
        Effect.gen(function* () {
          for (let i = 0; i < keys.length; i++) yield* storage.set(keys[i], bytes[i])
        })
      ),
    getBytesEach: (keys) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(keys.length)
          for (let i = 0; i < keys.length; i++) out[i] = Option.getOrNull(yield* storage.get(keys[i]))
          return out
        })
      ),
    removeEach: (keys) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(keys.length)
          for (let i = 0; i < keys.length; i++) out[i] = yield* storage.remove(keys[i])
          return out
        })
      ),
    getConcurrent: (batches) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(batches.length)
          for (let b = 0; b < batches.length; b++) {
            out[b] = yield* Effect.forEach(batches[b], (key) => storage.get(key), { concurrency: "unbounded" })
          }
          return out
        })
      ),
    getManyEach: (batches) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(batches.length)
          for (let b = 0; b < batches.length; b++) out[b] = yield* storage.getMany(batches[b])
          return out
        })
      ),
    setMany: (pairs) => run((storage) => storage.setMany(pairs)),
    importBatches: (batches) =>
      run((storage) =>
        storage.transaction((tx) => Effect.forEach(batches, (batch) => tx.setMany(batch), { discard: true }))
      ),
    deleteManyEach: (batches) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(batches.length)
          for (let b = 0; b < batches.length; b++) out[b] = yield* storage.deleteMany(batches[b])
          return out
        })
      ),
    keys: () => run((storage) => storage.keys()),
    entries: () => run((storage) => storage.entries()),
    clear: () => run((storage) => storage.clear()),
    versionsOf: (keys) =>
      run((storage) =>
        Effect.forEach(keys, (key) => Effect.map(storage.getEntry(key), (entry) => Option.getOrThrow(entry).version))
      ),
    atomicEach: (keys, values, versions) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = new Array(keys.length)
          for (let i = 0; i < keys.length; i++) {
            const result = yield* storage.atomic().check(keys[i], versions[i]).set(keys[i], values[i]).commit()
            out[i] = result.ok
          }
          return out
        })
      ),
    pages: (prefix, pages, size) =>
      run((storage) =>
        Effect.gen(function* () {
          const out = []
          let cursor
          for (let p = 0; p < pages; p++) {
            const page = yield* storage.page(
              cursor === undefined ? { prefix, limit: size } : { prefix, limit: size, cursor }
            )
            out.push(pageSummary(page.entries))
            cursor = page.cursor
          }
          return out
        })
      ),
    countEach: (prefix, times) =>
      run((storage) =>
        Effect.gen(function* () {
          let result
          for (let i = 0; i < times; i++) result = yield* storage.count({ prefix })
          return result
        })
      ),
    stream: (visit) => run((storage) => Stream.runForEach(storage.list(), (entry) => Effect.sync(() => visit(entry)))),
    fill: (keys, values) =>
      run((storage) =>
        Effect.gen(function* () {
          for (let start = 0; start < keys.length; start += 10_000) {
            const pairs = []
            for (let i = start; i < Math.min(keys.length, start + 10_000); i++) pairs.push([keys[i], values[i]])
            yield* storage.setMany(pairs)
          }
        })
      ),
    /** A get of the Effect API is an Option. */
    value: (result) => Option.getOrNull(result),
    close: () => runtime.dispose()
  }
}

/** Opens one side on its own database file. */
export const openSide = (side, filename) => {
  switch (side) {
    case "raw":
      return Promise.resolve(openRaw(filename))
    case "promise":
      return openPromise(filename)
    case "effect":
      return openEffect(filename)
    default:
      throw new Error(`Unknown side ${side}`)
  }
}
