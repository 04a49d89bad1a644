/**
 * The raw baseline: better-sqlite3 the straightforward way. The library's table shape (src/internal/schema.ts) and
 * pragmas, prepared statements, JSON.stringify / JSON.parse, and every operation returned as a Promise so that it
 * is awaited as the Promise API is. Imports nothing of the library, so the child processes of the raw side load
 * only better-sqlite3.
 */
import Database from "better-sqlite3"

/** The store every side uses: the library's default one. */
export const STORE = "default"

/** Opens a connection the way a careful application would, with the library's pragmas for "relaxed". */
export const openRawDatabase = (filename) => {
  const db = new Database(filename)
  db.pragma("busy_timeout = 5000")
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  return db
}

/**
 * The library's table and key index (schema 4, src/internal/schema.ts), created by the raw side in its own database.
 * Raw keeps no versions and no expiry: its rows take the columns' defaults.
 */
export const RAW_SCHEMA = `CREATE TABLE IF NOT EXISTS runtime_storage (
  id INTEGER PRIMARY KEY,
  store TEXT NOT NULL,
  key TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  value TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS runtime_storage_key ON runtime_storage (store, key)`

/** The end of a prefix's range, the straightforward way for the benchmark's ASCII prefixes: last character + 1. */
const prefixEnd = (prefix) => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)

/**
 * The raw baseline as a small Promise API of its own: what an application writing directly against
 * better-sqlite3 would write.
 */
export const rawApi = (db) => {
  db.exec(RAW_SCHEMA)
  const getStatement = db.prepare("SELECT value FROM runtime_storage WHERE store = ? AND key = ?").pluck()
  const hasStatement = db.prepare("SELECT 1 FROM runtime_storage WHERE store = ? AND key = ?").pluck()
  const upsert = db.prepare(
    "INSERT INTO runtime_storage (store, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?) " +
      "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
  )
  const deleteStatement = db.prepare("DELETE FROM runtime_storage WHERE store = ? AND key = ?")
  const keysStatement = db.prepare("SELECT key FROM runtime_storage WHERE store = ? ORDER BY key").pluck()
  const entriesStatement = db.prepare("SELECT key, value FROM runtime_storage WHERE store = ? ORDER BY key")
  const clearStatement = db.prepare("DELETE FROM runtime_storage WHERE store = ?")
  // One `IN (...)` statement per kind and list length, prepared once and kept (SQLite takes at most 32,766
  // parameters: longer lists are split, below).
  const inLists = new Map()
  const inList = (sql, length) => {
    const id = `${sql}:${length}`
    let statement = inLists.get(id)
    if (statement === undefined) {
      statement = db.prepare(`${sql} (${Array.from({ length }, () => "?").join(", ")})`)
      inLists.set(id, statement)
    }
    return statement
  }
  // A longer list (the stall workloads delete 100,000 keys) is deleted in lists of 10,000, in one transaction.
  const IN_LIMIT = 10_000
  const deleteInChunks = db.transaction((keys) => {
    let changes = 0
    for (let start = 0; start < keys.length; start += IN_LIMIT) {
      const chunk = keys.slice(start, start + IN_LIMIT)
      changes += inList(DELETE_IN, chunk.length).run(STORE, ...chunk).changes
    }
    return changes
  })
  const firstPage = db.prepare(
    "SELECT key, value FROM runtime_storage WHERE store = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?"
  )
  const nextPage = db.prepare(
    "SELECT key, value FROM runtime_storage WHERE store = ? AND key > ? AND key < ? ORDER BY key LIMIT ?"
  )
  const countRange = db.prepare("SELECT count(*) FROM runtime_storage WHERE store = ? AND key >= ? AND key < ?").pluck()
  // An atomic check-and-set the straightforward way: read the row's version and write, in one transaction.
  const versionStatement = db.prepare("SELECT version FROM runtime_storage WHERE store = ? AND key = ?").pluck()
  const checkAndSet = db.transaction((key, expected, text) => {
    if ((versionStatement.get(STORE, key) ?? null) !== expected) return false
    const now = Date.now()
    upsert.run(STORE, key, text, now, now)
    return true
  })
  const SELECT_IN = "SELECT key, value FROM runtime_storage WHERE store = ? AND key IN"
  const DELETE_IN = "DELETE FROM runtime_storage WHERE store = ? AND key IN"
  const setManyTransaction = db.transaction((pairs) => {
    const now = Date.now()
    for (const [key, value] of pairs) upsert.run(STORE, key, JSON.stringify(value), now, now)
  })
  return {
    get: (key) => {
      const text = getStatement.get(STORE, key)
      return Promise.resolve(text === undefined ? null : JSON.parse(text))
    },
    set: (key, value) => {
      const now = Date.now()
      upsert.run(STORE, key, JSON.stringify(value), now, now)
      return Promise.resolve()
    },
    has: (key) => Promise.resolve(hasStatement.get(STORE, key) !== undefined),
    /** Bytes stored as a BLOB, as they are, and read back as better-sqlite3 gives them (a fresh Buffer). */
    setBlob: (key, bytes) => {
      const now = Date.now()
      upsert.run(STORE, key, bytes, now, now)
      return Promise.resolve()
    },
    getBlob: (key) => Promise.resolve(getStatement.get(STORE, key) ?? null),
    remove: (key) => Promise.resolve(deleteStatement.run(STORE, key).changes > 0),
    getMany: (keys) => {
      const values = new Map()
      for (const row of inList(SELECT_IN, keys.length).all(STORE, ...keys)) values.set(row.key, JSON.parse(row.value))
      return Promise.resolve(values)
    },
    setMany: (pairs) => Promise.resolve(setManyTransaction(pairs)),
    deleteMany: (keys) =>
      Promise.resolve(
        keys.length <= IN_LIMIT ? inList(DELETE_IN, keys.length).run(STORE, ...keys).changes : deleteInChunks(keys)
      ),
    keys: () => Promise.resolve(keysStatement.all(STORE)),
    entries: () =>
      Promise.resolve(entriesStatement.all(STORE).map((row) => ({ key: row.key, value: JSON.parse(row.value) }))),
    clear: () => Promise.resolve(clearStatement.run(STORE)).then(() => undefined),
    /** Keyset pagination: the page after the last key of the previous page (the raw side's cursor). */
    page: ({ prefix, limit, cursor }) => {
      const rows =
        cursor === undefined
          ? firstPage.all(STORE, prefix, prefixEnd(prefix), limit)
          : nextPage.all(STORE, cursor, prefixEnd(prefix), limit)
      const entries = rows.map((row) => ({ key: row.key, value: JSON.parse(row.value) }))
      return Promise.resolve({ entries, cursor: rows.length === limit ? rows[rows.length - 1].key : null })
    },
    /** The version each key has (raw keeps none: the column's default). */
    versionOf: (key) => Promise.resolve(versionStatement.get(STORE, key) ?? null),
    checkAndSet: (key, expected, value) => Promise.resolve(checkAndSet.immediate(key, expected, JSON.stringify(value))),
    count: ({ prefix }) => Promise.resolve(countRange.get(STORE, prefix, prefixEnd(prefix))),
    /** Every entry, through better-sqlite3's iterate(): one statement, one row at a time. */
    stream: (visit) => {
      for (const row of entriesStatement.iterate(STORE)) visit({ key: row.key, value: JSON.parse(row.value) })
      return Promise.resolve()
    }
  }
}
