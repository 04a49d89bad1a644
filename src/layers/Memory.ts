/**
 * The in-memory backend: the same service as SQLite's, for tests.
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import { type MetaRow, type Primitives, type Row, weigh } from "../internal/backend.js"
import { compareCodePoints } from "../internal/order.js"
import type { Range } from "../internal/selector.js"
import { make, Storage } from "../services/Storage.js"

interface Stored {
  readonly text: string
  readonly createdAt: number
  readonly updatedAt: number
  readonly version: number
}

/** One store: its values, and its keys in code point order (rebuilt on demand after a key is added or removed). */
interface Values {
  readonly values: Map<string, Stored>
  sorted: Array<string> | undefined
}

/** The index of the first key of `sorted` that is not below `bound`. */
const lowerIndex = (sorted: ReadonlyArray<string>, bound: string): number => {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareCodePoints(sorted[middle]!, bound) < 0) low = middle + 1
    else high = middle
  }
  return low
}

const makePrimitives = (): Primitives => {
  // Values are kept as the serializer's JSON text, so every read returns a fresh value and `size` counts the
  // same bytes as SQLite does.
  const stores = new Map<string, Values>()
  // The last version given to a write, as the clock table of the SQL layers keeps it (a new database starts at 1).
  let clock = 1
  const empty: Values = { values: new Map(), sorted: [] }
  const storeOf = (store: string): Values => stores.get(store) ?? empty
  const writable = (store: string): Values => {
    let values = stores.get(store)
    if (values === undefined) {
      values = { values: new Map(), sorted: undefined }
      stores.set(store, values)
    }
    return values
  }
  // A few keys added or removed are put in (or taken out of) the sorted keys; after a larger batch they are sorted
  // again when next read.
  const FEW = 16
  const write = (values: Values, key: string, text: string, now: number, version: number): void => {
    const previous = values.values.get(key)
    if (previous === undefined && values.sorted !== undefined) {
      values.sorted.splice(lowerIndex(values.sorted, key), 0, key)
    }
    values.values.set(key, { text, createdAt: previous?.createdAt ?? now, updatedAt: now, version })
  }
  /** Removes a key; `true` when it existed. */
  const remove = (store: string, key: string): boolean => {
    const values = stores.get(store)
    if (values === undefined || !values.values.delete(key)) return false
    if (values.sorted !== undefined) values.sorted.splice(lowerIndex(values.sorted, key), 1)
    if (values.values.size === 0) stores.delete(store)
    return true
  }
  const sortedKeys = (values: Values): Array<string> => {
    if (values.sorted === undefined) values.sorted = Array.from(values.values.keys()).sort(compareCodePoints)
    return values.sorted
  }
  /** Walks the keys of a range in its order, at most its limit, while `visit` returns true. */
  const walk = (store: string, range: Range, visit: (key: string, stored: Stored) => boolean): void => {
    const values = storeOf(store)
    const sorted = sortedKeys(values)
    const from = range.lower === undefined ? 0 : lowerIndex(sorted, range.lower)
    const to = range.upper === undefined ? sorted.length : lowerIndex(sorted, range.upper)
    let left = range.limit ?? Number.POSITIVE_INFINITY
    for (let step = 0; step < to - from && left > 0; step++, left--) {
      const key = sorted[range.reverse ? to - 1 - step : from + step]!
      if (!visit(key, values.values.get(key)!)) return
    }
  }
  return {
    get: (store, key) => storeOf(store).values.get(key)?.text,
    getMany: (store, keys) => {
      const { values } = storeOf(store)
      const rows: Array<Row> = []
      for (const key of keys) {
        const stored = values.get(key)
        if (stored !== undefined) rows.push([key, stored.text])
      }
      return rows
    },
    has: (store, key) => storeOf(store).values.has(key),
    getEntry: (store, key) => {
      const stored = storeOf(store).values.get(key)
      return stored === undefined
        ? undefined
        : ([stored.text, stored.createdAt, stored.updatedAt, stored.version] satisfies MetaRow)
    },
    scanKeys: (store, range) => {
      const keys: Array<string> = []
      walk(store, range, (key) => keys.push(key) > 0)
      return keys
    },
    scan: (store, range, maxBytes) => {
      const rows: Array<Row> = []
      let bytes = 0
      walk(store, range, (key, stored) => {
        const row: Row = [key, stored.text]
        rows.push(row)
        bytes += weigh(row)
        return bytes < maxBytes
      })
      return rows
    },
    count: (store, range) => {
      let count = 0
      walk(store, range, () => ++count > 0)
      return count
    },
    size: (store) => {
      let bytes = 0
      for (const stored of storeOf(store).values.values()) bytes += Buffer.byteLength(stored.text, "utf8")
      return bytes
    },
    setMany: (store, rows) => {
      const values = writable(store)
      if (rows.length > FEW) values.sorted = undefined
      const now = Date.now()
      const version = ++clock
      for (const [key, text] of rows) write(values, key, text, now, version)
      return version
    },
    deleteMany: (store, keys) => {
      const values = stores.get(store)
      if (values === undefined) return 0
      if (keys.length > FEW) values.sorted = undefined
      let removed = 0
      for (const key of keys) if (remove(store, key)) removed++
      return removed
    },
    clear: (store) => {
      stores.delete(store)
    },
    update: (store, key, f) => {
      const text = f(stores.get(store)?.values.get(key)?.text)
      if (typeof text !== "string") throw text
      write(writable(store), key, text, Date.now(), ++clock)
      return text
    },
    commit: (checks, writes) => {
      for (const [store, key, expected] of checks) {
        if ((stores.get(store)?.values.get(key)?.version ?? null) !== expected) return undefined
      }
      const version = ++clock
      const now = Date.now()
      for (const [store, key, text] of writes) {
        if (text !== undefined) write(writable(store), key, text, now, version)
        else remove(store, key)
      }
      return version
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
