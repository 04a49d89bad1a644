// Cold start, raw better-sqlite3: open an existing database, read one key, print it. Timed as a whole process.
// Usage: node bench/cold-raw.mjs <filename> <key>
import Database from "better-sqlite3"

const [filename, key] = process.argv.slice(2)
const db = new Database(filename)
db.pragma("busy_timeout = 5000")
db.pragma("journal_mode = WAL")
db.pragma("synchronous = NORMAL")
db.exec(`CREATE TABLE IF NOT EXISTS runtime_storage (
  store TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (store, key)
) WITHOUT ROWID`)
const text = db.prepare("SELECT value FROM runtime_storage WHERE store = ? AND key = ?").pluck().get("default", key)
const value = text === undefined ? null : JSON.parse(text)
console.log(JSON.stringify(value))
db.close()
