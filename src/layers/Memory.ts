/**
 * The in-memory backend: the same service as SQLite's, for tests.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type InvalidKeyError, isStorageError } from "../errors/StorageError.js"
import {
  type ChangeRecord,
  type ChangeRow,
  type ListedRow,
  type MetaRow,
  type Row,
  type StoreRow,
  type SyncPrimitives,
  type Stored as Value,
  type VersionedRow,
  weigh
} from "../internal/backend.js"
import { expired, removalOf, SweepAlarm } from "../internal/expiry.js"
import {
  DEFAULT_HISTORY,
  dueForTrim,
  type History,
  Notifier,
  oldEnough,
  resolveHistory,
  trimCandidate
} from "../internal/feed.js"
import { compareCodePoints } from "../internal/order.js"
import { Kind } from "../internal/schema.js"
import type { Range } from "../internal/selector.js"
import { make, Storage } from "../services/Storage.js"

interface Stored {
  readonly text: Value
  readonly createdAt: number
  readonly updatedAt: number
  readonly version: number
  readonly expiresAt: number | null
}

/** The stored entry when it is there and has not expired at `now`. */
const live = (stored: Stored | undefined, now: number): Stored | undefined =>
  stored === undefined || expired(stored.expiresAt, now) ? undefined : stored

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

/** A record of the change log, as the SQL layers keep it. */
interface Change {
  readonly seq: number
  readonly version: number
  readonly at: number
  kind: Kind
  readonly store: string | null
  readonly key: string | null
  readonly text: Value | null
}

/** How many live entries a store holds, and their size in UTF-8 bytes. */
const sizeOf = (values: Values, now: number): readonly [count: number, bytes: number] => {
  let count = 0
  let bytes = 0
  for (const stored of values.values.values()) {
    if (live(stored, now) === undefined) continue
    count++
    bytes += typeof stored.text === "string" ? Buffer.byteLength(stored.text, "utf8") : stored.text.byteLength
  }
  return [count, bytes]
}

const makePrimitives = (history: History): SyncPrimitives => {
  // Values are kept as the serializer's JSON text, so every read returns a fresh value and `size` counts the
  // same bytes as SQLite does.
  const stores = new Map<string, Values>()
  // The keys of the entries that expire, by store: what a sweep looks through.
  const expiring = new Map<string, Set<string>>()
  // The change log, as the SQL layers keep it: contiguous seqs from its origin record (a new database's is seq 1,
  // version 0, so the first write takes version 2 as it does there).
  let log: Array<Change> = [{ seq: 1, version: 0, at: 0, kind: Kind.Origin, store: null, key: null, text: null }]
  const headSeq = (): number => log[log.length - 1]!.seq
  const feed = new Notifier(undefined)
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
  // The open transaction's levels: for each, how to undo its changes (newest last) and the log's length before it.
  const levels: Array<{ readonly undo: Array<() => void>; readonly logLength: number }> = []
  let sharedVersion: number | undefined
  let versionDepth = 0
  const takeVersion = (): number => {
    if (levels.length === 0) return headSeq() + 1
    if (sharedVersion === undefined) {
      sharedVersion = headSeq() + 1
      versionDepth = levels.length
    }
    return sharedVersion
  }
  let firstSeq = 0
  const record = (...[version, at, kind, store, key, text]: ChangeRecord) => {
    const seq = headSeq() + 1
    log.push({ seq, version, at, kind, store, key, text })
    if (firstSeq === 0) firstSeq = seq
  }
  /**
   * Runs a write call: its records appended, then (outside a transaction, whose rollback could not give trimmed
   * records back) the log trimmed when they made it due, and the watchers woken.
   */
  const logged =
    <A extends ReadonlyArray<unknown>, B>(body: (...args: A) => B) =>
    (...args: A): B => {
      firstSeq = 0
      const result = body(...args)
      if (levels.length > 0 || firstSeq === 0) return result
      if (dueForTrim(history, firstSeq, headSeq())) {
        const origin = log[0]!.seq
        const cut = trimCandidate(history, origin, headSeq())
        if (cut !== undefined && oldEnough(history, log[cut - origin]?.at, log[log.length - 1]!.at)) {
          log = log.slice(cut - origin)
          log[0]!.kind = Kind.Origin
        }
      }
      feed.notify()
      return result
    }
  /** Records how to put a key back as it is now, when a transaction is open. */
  const remember = (store: string, key: string): void => {
    const level = levels.at(-1)
    if (level === undefined) return
    const previous = stores.get(store)?.values.get(key)
    level.undo.push(() => {
      if (previous === undefined) remove(store, key)
      else put(store, key, previous)
    })
  }
  const put = (store: string, key: string, stored: Stored): void => {
    const values = writable(store)
    if (!values.values.has(key) && values.sorted !== undefined) {
      values.sorted.splice(lowerIndex(values.sorted, key), 0, key)
    }
    values.values.set(key, stored)
    if (stored.expiresAt !== null) {
      let keys = expiring.get(store)
      if (keys === undefined) {
        keys = new Set()
        expiring.set(store, keys)
      }
      keys.add(key)
    } else {
      expiring.get(store)?.delete(key)
    }
  }
  /** Writes a key (overwriting an expired entry creates it anew). */
  const write = (
    store: string,
    key: string,
    text: Value,
    now: number,
    version: number,
    expiresAt: number | null
  ): void => {
    const previous = live(stores.get(store)?.values.get(key), now)
    put(store, key, { text, createdAt: previous?.createdAt ?? now, updatedAt: now, version, expiresAt })
  }
  /** Removes a key; what was stored, when it existed. */
  const remove = (store: string, key: string): Stored | undefined => {
    const values = stores.get(store)
    const previous = values?.values.get(key)
    if (values === undefined || previous === undefined) return undefined
    values.values.delete(key)
    if (values.sorted !== undefined) values.sorted.splice(lowerIndex(values.sorted, key), 1)
    if (values.values.size === 0) stores.delete(store)
    expiring.get(store)?.delete(key)
    return previous
  }
  /** Removes a key, recording the removal (as an expiry when it had expired); `true` when it was live. */
  const removeRecorded = (store: string, key: string, now: number, version: () => number): boolean => {
    const previous = remove(store, key)
    if (previous === undefined) return false
    const kind = removalOf(previous.expiresAt, now)
    record(version(), now, kind, store, key, null)
    return kind === Kind.Remove
  }
  const sortedKeys = (values: Values): Array<string> => {
    if (values.sorted === undefined) values.sorted = Array.from(values.values.keys()).sort(compareCodePoints)
    return values.sorted
  }
  /** Walks the live keys of a range in its order, at most its limit, while `visit` returns true. */
  const walk = (store: string, range: Range, now: number, visit: (key: string, stored: Stored) => boolean): void => {
    const values = storeOf(store)
    const sorted = sortedKeys(values)
    const from = range.lower === undefined ? 0 : lowerIndex(sorted, range.lower)
    const to = range.upper === undefined ? sorted.length : lowerIndex(sorted, range.upper)
    let left = range.limit ?? Number.POSITIVE_INFINITY
    for (let step = 0; step < to - from && left > 0; step++) {
      const key = sorted[range.reverse ? to - 1 - step : from + step]!
      const stored = live(values.values.get(key), now)
      if (stored === undefined) continue
      left--
      if (!visit(key, stored)) return
    }
  }
  /** The rows of a range, made by `row`, until their summed weight reaches `maxBytes`. */
  const scan = <R extends Row | ListedRow>(
    store: string,
    range: Range,
    maxBytes: number,
    now: number,
    row: (key: string, stored: Stored) => R
  ): Array<R> => {
    const rows: Array<R> = []
    let bytes = 0
    walk(store, range, now, (key, stored) => {
      const made = row(key, stored)
      rows.push(made)
      bytes += weigh(made)
      return bytes < maxBytes
    })
    return rows
  }
  return {
    feed,
    alarm: new SweepAlarm(),
    transactions: {
      begin: () => {
        levels.push({ undo: [], logLength: log.length })
      },
      commit: () => {
        const level = levels.pop()!
        const parent = levels.at(-1)
        // A savepoint's changes become its parent's, undone with it.
        if (parent !== undefined) for (const undo of level.undo) parent.undo.push(undo)
        if (levels.length === 0) {
          sharedVersion = undefined
          feed.notify()
        } else if (versionDepth > levels.length) versionDepth = levels.length
      },
      rollback: () => {
        const level = levels.pop()!
        for (let index = level.undo.length - 1; index >= 0; index--) level.undo[index]!()
        log.length = level.logLength
        if (versionDepth > levels.length) sharedVersion = undefined
      }
    },
    get: (store, key, now) => live(storeOf(store).values.get(key), now)?.text,
    getMany: (store, keys, now) => {
      const { values } = storeOf(store)
      const rows: Array<Row> = []
      for (const key of keys) {
        const stored = live(values.get(key), now)
        if (stored !== undefined) rows.push([key, stored.text])
      }
      return rows
    },
    has: (store, key, now) => live(storeOf(store).values.get(key), now) !== undefined,
    getEntry: (store, key, now) => {
      const stored = live(storeOf(store).values.get(key), now)
      return stored === undefined
        ? undefined
        : ([stored.text, stored.createdAt, stored.updatedAt, stored.version, stored.expiresAt] satisfies MetaRow)
    },
    scanKeys: (store, range, now) => {
      const keys: Array<string> = []
      walk(store, range, now, (key) => keys.push(key) > 0)
      return keys
    },
    scan: (store, range, maxBytes, now) => scan(store, range, maxBytes, now, (key, stored): Row => [key, stored.text]),
    scanMeta: (store, range, maxBytes, now) =>
      scan(
        store,
        range,
        maxBytes,
        now,
        (key, stored): ListedRow => [
          key,
          stored.text,
          stored.createdAt,
          stored.updatedAt,
          stored.version,
          stored.expiresAt
        ]
      ),
    count: (store, range, now) => {
      let count = 0
      walk(store, range, now, () => ++count > 0)
      return count
    },
    size: (store, now) => sizeOf(storeOf(store), now)[1],
    stores: (now) => {
      const rows: Array<StoreRow> = []
      for (const [store, values] of stores) {
        const [count, bytes] = sizeOf(values, now)
        if (count > 0) rows.push([store, count, bytes])
      }
      return rows.sort((a, b) => compareCodePoints(a[0], b[0]))
    },
    setMany: logged((store, rows, now, expiresAt) => {
      const values = writable(store)
      if (rows.length > FEW) values.sorted = undefined
      const version = takeVersion()
      for (const [key, text] of rows) {
        remember(store, key)
        write(store, key, text, now, version, expiresAt)
        record(version, now, Kind.Set, store, key, text)
      }
      return version
    }),
    deleteMany: logged((store, keys, now) => {
      const values = stores.get(store)
      if (values === undefined) return 0
      if (keys.length > FEW) values.sorted = undefined
      let version: number | undefined
      const taken = () => (version ??= takeVersion())
      let removed = 0
      for (const key of keys) {
        remember(store, key)
        if (removeRecorded(store, key, now, taken)) removed++
      }
      return removed
    }),
    clear: logged((store, now) => {
      const previous = stores.get(store)
      if (previous !== undefined) {
        const wasExpiring = expiring.get(store)
        levels.at(-1)?.undo.push(() => {
          stores.set(store, previous)
          if (wasExpiring !== undefined) expiring.set(store, wasExpiring)
        })
        stores.delete(store)
        expiring.delete(store)
        record(takeVersion(), now, Kind.Clear, store, null, null)
      }
    }),
    update: logged((store, key, f, now, expiresAt) => {
      const current = live(stores.get(store)?.values.get(key), now)
      const text = f(current?.text)
      if (isStorageError(text)) throw text
      remember(store, key)
      const version = takeVersion()
      write(store, key, text, now, version, expiresAt === undefined ? (current?.expiresAt ?? null) : expiresAt)
      record(version, now, Kind.Set, store, key, text)
      return text
    }),
    commit: logged((checks, writes, now) => {
      for (const [store, key, expected] of checks) {
        if ((live(stores.get(store)?.values.get(key), now)?.version ?? null) !== expected) return undefined
      }
      const version = takeVersion()
      for (const [store, key, text, expiresAt] of writes) {
        remember(store, key)
        if (text !== undefined) {
          write(store, key, text, now, version, expiresAt)
          record(version, now, Kind.Set, store, key, text)
        } else {
          removeRecorded(store, key, now, () => version)
        }
      }
      // A commit that changed nothing still returns its version: a record that only holds it keeps it its own.
      if (firstSeq === 0) record(version, now, Kind.Origin, null, null, null)
      return version
    }),
    expire: logged((now, limit) => {
      const found: Array<readonly [store: string, key: string, expiresAt: number]> = []
      for (const [store, keys] of expiring) {
        for (const key of keys) found.push([store, key, stores.get(store)!.values.get(key)!.expiresAt!])
      }
      found.sort((a, b) => a[2] - b[2])
      let removed = 0
      let version: number | undefined
      while (removed < limit && removed < found.length && found[removed]![2] <= now) {
        const [store, key] = found[removed]!
        remove(store, key)
        version ??= takeVersion()
        record(version, now, Kind.Expire, store, key, null)
        removed++
      }
      return { removed, next: found[removed]?.[2] }
    }),
    head: headSeq,
    changes: (after, since, store, limit) => {
      const origin = log[0]!.seq
      const rows: Array<ChangeRow> = []
      for (let index = Math.max(0, after + 1 - origin); index < log.length && rows.length < limit; index++) {
        const change = log[index]!
        if (change.version <= since || change.kind === Kind.Origin || (store !== undefined && change.store !== store)) {
          continue
        }
        rows.push([change.seq, change.version, change.kind, change.store!, change.key, change.text])
      }
      return { rows, head: headSeq(), origin: [origin, log[0]!.version] }
    },
    snapshot: (store, ranges, now) => {
      const rows: Array<VersionedRow> = []
      for (const range of ranges) {
        walk(store, range, now, (key, stored) => rows.push([key, stored.text, stored.version]) > 0)
      }
      return { rows, head: headSeq() }
    }
  }
}

/**
 * An in-memory `Storage`: a fresh, empty, isolated store per build of the layer, with exactly the validation,
 * serialization, ordering and errors of the SQLite layers. Nothing is persisted.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<Storage> = Layer.scoped(
  Storage,
  Effect.suspend(() => make({ _tag: "Sync", primitives: makePrimitives(DEFAULT_HISTORY) }))
)

/**
 * Options of {@link layerMemoryWith}.
 *
 * @since 0.3.0
 */
export interface MemoryOptions {
  /** The history the change feed keeps, as `SqliteOptions.history` (`maxAge` in milliseconds). */
  readonly history?: { readonly changes?: number | undefined; readonly maxAge?: number | undefined } | undefined
}

/**
 * `layerMemory` with options. Fails with `InvalidKeyError` (9004) when they are refused.
 *
 * @since 0.3.0
 */
export const layerMemoryWith = (options: MemoryOptions): Layer.Layer<Storage, InvalidKeyError> =>
  Layer.scoped(
    Storage,
    Effect.flatMap(
      Effect.try({
        try: () => makePrimitives(resolveHistory(options.history)),
        catch: (cause) => cause as InvalidKeyError
      }),
      (primitives) => make({ _tag: "Sync", primitives })
    )
  )
