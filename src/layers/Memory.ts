/**
 * The in-memory backend: the same service as SQLite's, for tests.
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import { type MetaRow, type Row, type SyncPrimitives, weigh } from "../internal/backend.js"
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

const makePrimitives = (): SyncPrimitives => {
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
  // The open transaction's levels: for each, how to undo its changes (newest last) and the clock before it.
  const levels: Array<{ readonly undo: Array<() => void>; readonly clock: number }> = []
  let sharedVersion: number | undefined
  let versionDepth = 0
  const takeVersion = (): number => {
    if (levels.length === 0) return ++clock
    if (sharedVersion === undefined) {
      sharedVersion = ++clock
      versionDepth = levels.length
    }
    return sharedVersion
  }
  /** Records how to put a key back as it is now, when a transaction is open. */
  const remember = (store: string, key: string): void => {
    const level = levels.at(-1)
    if (level === undefined) return
    const previous = stores.get(store)?.values.get(key)
    level.undo.push(() => {
      if (previous === undefined) remove(store, key)
      else put(writable(store), key, previous)
    })
  }
  const put = (values: Values, key: string, stored: Stored): void => {
    if (!values.values.has(key) && values.sorted !== undefined) {
      values.sorted.splice(lowerIndex(values.sorted, key), 0, key)
    }
    values.values.set(key, stored)
  }
  const write = (values: Values, key: string, text: string, now: number, version: number): void => {
    const previous = values.values.get(key)
    put(values, key, { text, createdAt: previous?.createdAt ?? now, updatedAt: now, version })
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
    transactions: {
      begin: () => {
        levels.push({ undo: [], clock })
      },
      commit: () => {
        const level = levels.pop()!
        const parent = levels.at(-1)
        // A savepoint's changes become its parent's, undone with it.
        if (parent !== undefined) for (const undo of level.undo) parent.undo.push(undo)
        if (levels.length === 0) sharedVersion = undefined
        else if (versionDepth > levels.length) versionDepth = levels.length
      },
      rollback: () => {
        const level = levels.pop()!
        for (let index = level.undo.length - 1; index >= 0; index--) level.undo[index]!()
        clock = level.clock
        if (versionDepth > levels.length) sharedVersion = undefined
      }
    },
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
      const version = takeVersion()
      for (const [key, text] of rows) {
        remember(store, key)
        write(values, key, text, now, version)
      }
      return version
    },
    deleteMany: (store, keys) => {
      const values = stores.get(store)
      if (values === undefined) return 0
      if (keys.length > FEW) values.sorted = undefined
      let removed = 0
      for (const key of keys) {
        remember(store, key)
        if (remove(store, key)) removed++
      }
      return removed
    },
    clear: (store) => {
      const previous = stores.get(store)
      if (previous !== undefined) {
        levels.at(-1)?.undo.push(() => stores.set(store, previous))
        stores.delete(store)
      }
    },
    update: (store, key, f) => {
      const text = f(stores.get(store)?.values.get(key)?.text)
      if (typeof text !== "string") throw text
      remember(store, key)
      write(writable(store), key, text, Date.now(), takeVersion())
      return text
    },
    commit: (checks, writes) => {
      for (const [store, key, expected] of checks) {
        if ((stores.get(store)?.values.get(key)?.version ?? null) !== expected) return undefined
      }
      const version = takeVersion()
      const now = Date.now()
      for (const [store, key, text] of writes) {
        remember(store, key)
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
