// Where a large write transaction stalls the event loop, raw better-sqlite3 (for issue 14's design): 100,000 rows
// inserted in one transaction in chunks of 2,000 (what a cooperative design would run between yields), with the
// longest chunk and the COMMIT timed apart, at SQLite's default wal_autocheckpoint (1000 pages) and with it off.
// Run: node bench/micro/commit-stall.mjs
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import Database from "better-sqlite3"
import { keyAt, valueAt } from "../data.mjs"

const N = 100_000
const CHUNK = 2000
const rows = Array.from({ length: N }, (_, i) => [keyAt(i), JSON.stringify(valueAt(i))])
const placeholders = Array.from({ length: 500 }, () => "(?, ?, ?)").join(", ")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "commit-stall-"))
for (const autocheckpoint of [1000, 0]) {
  for (let rep = 0; rep < 3; rep++) {
    const db = new Database(path.join(dir, `${autocheckpoint}-${rep}.db`))
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = NORMAL")
    db.pragma(`wal_autocheckpoint = ${autocheckpoint}`)
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, store TEXT, key TEXT, value TEXT)")
    db.exec("CREATE UNIQUE INDEX tk ON t (store, key)")
    const insert = db.prepare(`INSERT INTO t (store, key, value) VALUES ${placeholders}`)
    db.exec("BEGIN IMMEDIATE")
    let longest = 0
    for (let start = 0; start < N; start += CHUNK) {
      const began = performance.now()
      for (let s = start; s < start + CHUNK; s += 500) {
        const params = []
        for (let i = s; i < s + 500; i++) params.push("default", rows[i][0], rows[i][1])
        insert.run(...params)
      }
      longest = Math.max(longest, performance.now() - began)
    }
    const began = performance.now()
    db.exec("COMMIT")
    const commit = performance.now() - began
    db.close()
    console.log(
      `wal_autocheckpoint=${autocheckpoint}: longest chunk of ${CHUNK} rows ${longest.toFixed(1)} ms, COMMIT ${commit.toFixed(1)} ms`
    )
  }
}
fs.rmSync(dir, { recursive: true, force: true })
