// Cold start, raw better-sqlite3: open an existing database, read one key, print it. Timed as a whole process.
// Usage: node bench/cold-raw.mjs <filename> <key>
// raw.mjs imports nothing but better-sqlite3, so this process loads what a raw application would.
import { openRawDatabase, RAW_SCHEMA, STORE } from "./raw.mjs"

const [filename, key] = process.argv.slice(2)
const db = openRawDatabase(filename)
db.exec(RAW_SCHEMA)
const text = db.prepare("SELECT value FROM runtime_storage WHERE store = ? AND key = ?").pluck().get(STORE, key)
const value = text === undefined ? null : JSON.parse(text)
console.log(JSON.stringify(value))
db.close()
