/**
 * The in-memory backend: the same service as SQLite's, for tests.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Backend, Row } from "../internal/backend.js"
import { compareCodePoints } from "../internal/order.js"
import { make, Storage } from "../services/Storage.js"

const makeBackend = (): Backend => {
  // Values are kept as the serializer's JSON text, so every read returns a fresh value and `size` counts the
  // same bytes as SQLite does.
  const stores = new Map<string, Map<string, string>>()
  const storeOf = (store: string): ReadonlyMap<string, string> => stores.get(store) ?? new Map()
  const sortedKeys = (store: string): Array<string> => Array.from(storeOf(store).keys()).sort(compareCodePoints)
  return {
    get: (store, key) => Effect.sync(() => storeOf(store).get(key)),
    getMany: (store, keys) =>
      Effect.sync(() => {
        const values = storeOf(store)
        const rows: Array<Row> = []
        for (const key of keys) {
          const text = values.get(key)
          if (text !== undefined) rows.push([key, text])
        }
        return rows
      }),
    has: (store, key) => Effect.sync(() => storeOf(store).has(key)),
    keys: (store) => Effect.sync(() => sortedKeys(store)),
    entries: (store) =>
      Effect.sync(() => {
        const values = storeOf(store)
        return sortedKeys(store).map((key): Row => [key, values.get(key)!])
      }),
    size: (store) =>
      Effect.sync(() => {
        let bytes = 0
        for (const text of storeOf(store).values()) bytes += Buffer.byteLength(text, "utf8")
        return bytes
      }),
    setMany: (store, rows) =>
      Effect.sync(() => {
        let values = stores.get(store)
        if (values === undefined) {
          values = new Map()
          stores.set(store, values)
        }
        for (const [key, text] of rows) values.set(key, text)
      }),
    deleteMany: (store, keys) =>
      Effect.sync(() => {
        const values = stores.get(store)
        if (values === undefined) return 0
        let removed = 0
        for (const key of keys) if (values.delete(key)) removed++
        if (values.size === 0) stores.delete(store)
        return removed
      }),
    clear: (store) =>
      Effect.sync(() => {
        stores.delete(store)
      }),
    update: (store, key, f) =>
      Effect.suspend(() => {
        const text = f(stores.get(store)?.get(key))
        if (typeof text !== "string") return Effect.fail(text)
        let values = stores.get(store)
        if (values === undefined) {
          values = new Map()
          stores.set(store, values)
        }
        values.set(key, text)
        return Effect.succeed(text)
      })
  }
}

/**
 * An in-memory `Storage`: a fresh, empty, isolated store per build of the layer, with exactly the validation,
 * serialization, ordering and errors of the SQLite layers. Nothing is persisted.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<Storage> = Layer.sync(Storage, () => make(makeBackend()))
