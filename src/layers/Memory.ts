/**
 * The in-memory backend: the same service as SQLite's, for tests.
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import type { Primitives, Row } from "../internal/backend.js"
import { compareCodePoints } from "../internal/order.js"
import { make, Storage } from "../services/Storage.js"

const makePrimitives = (): Primitives => {
  // Values are kept as the serializer's JSON text, so every read returns a fresh value and `size` counts the
  // same bytes as SQLite does.
  const stores = new Map<string, Map<string, string>>()
  const storeOf = (store: string): ReadonlyMap<string, string> => stores.get(store) ?? new Map()
  const writable = (store: string): Map<string, string> => {
    let values = stores.get(store)
    if (values === undefined) {
      values = new Map()
      stores.set(store, values)
    }
    return values
  }
  const sortedKeys = (store: string): Array<string> => Array.from(storeOf(store).keys()).sort(compareCodePoints)
  return {
    get: (store, key) => storeOf(store).get(key),
    getMany: (store, keys) => {
      const values = storeOf(store)
      const rows: Array<Row> = []
      for (const key of keys) {
        const text = values.get(key)
        if (text !== undefined) rows.push([key, text])
      }
      return rows
    },
    has: (store, key) => storeOf(store).has(key),
    keys: sortedKeys,
    entries: (store) => {
      const values = storeOf(store)
      return sortedKeys(store).map((key): Row => [key, values.get(key)!])
    },
    size: (store) => {
      let bytes = 0
      for (const text of storeOf(store).values()) bytes += Buffer.byteLength(text, "utf8")
      return bytes
    },
    setMany: (store, rows) => {
      const values = writable(store)
      for (const [key, text] of rows) values.set(key, text)
    },
    deleteMany: (store, keys) => {
      const values = stores.get(store)
      if (values === undefined) return 0
      let removed = 0
      for (const key of keys) if (values.delete(key)) removed++
      if (values.size === 0) stores.delete(store)
      return removed
    },
    clear: (store) => {
      stores.delete(store)
    },
    update: (store, key, f) => {
      const text = f(stores.get(store)?.get(key))
      if (typeof text !== "string") throw text
      writable(store).set(key, text)
      return text
    }
  }
}

/**
 * An in-memory `Storage`: a fresh, empty, isolated store per build of the layer, with exactly the validation,
 * serialization, ordering and errors of the SQLite layers. Nothing is persisted.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<Storage> = Layer.sync(Storage, () =>
  make({ _tag: "Sync", primitives: makePrimitives() })
)
