// The raw side of the command-line benchmark: what a developer would write with better-sqlite3 alone.
//   node bench/cli-raw.mjs get <file> <store> <key>      print one value (the one-liner a CLI start is compared to)
//   node bench/cli-raw.mjs export <file> <out>           every entry as a JSON line, through iterate()
//   node bench/cli-raw.mjs import <in> <file>            JSON lines into the table, in one transaction

import * as fs from "node:fs"
import Database from "better-sqlite3"
import { openRawDatabase, RAW_SCHEMA } from "./raw.mjs"

const [mode, ...args] = process.argv.slice(2)

if (mode === "get") {
  const [file, store, key] = args
  const db = new Database(file)
  console.log(db.prepare("SELECT value FROM runtime_storage WHERE store = ? AND key = ?").pluck().get(store, key))
  db.close()
} else if (mode === "export") {
  const [file, out] = args
  const db = new Database(file, { readonly: true })
  const fd = fs.openSync(out, "w", 0o600)
  let text = ""
  // The stored text is JSON already: raw splices it into the line as it is.
  for (const [store, key, value, expiresAt] of db
    .prepare("SELECT store, key, value, expires_at FROM runtime_storage ORDER BY store, key")
    .raw()
    .iterate()) {
    text += `{"store":${JSON.stringify(store)},"key":${JSON.stringify(key)},"value":${value}${expiresAt === null ? "" : `,"expiresAt":${expiresAt}`}}\n`
    if (text.length >= 1 << 20) {
      fs.writeSync(fd, text)
      text = ""
    }
  }
  fs.writeSync(fd, text)
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  db.close()
} else if (mode === "import") {
  const [input, file] = args
  const db = openRawDatabase(file)
  db.exec(RAW_SCHEMA)
  const insert = db.prepare(
    "INSERT INTO runtime_storage (store, key, created_at, updated_at, expires_at, value) VALUES (?, ?, ?, ?, ?, ?) " +
      "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
  )
  db.exec("BEGIN IMMEDIATE")
  let rest = ""
  const now = Date.now()
  const write = (line) => {
    if (line === "") return
    const entry = JSON.parse(line)
    insert.run(entry.store, entry.key, now, now, entry.expiresAt ?? null, JSON.stringify(entry.value))
  }
  for await (const chunk of fs.createReadStream(input, { encoding: "utf8", highWaterMark: 1 << 20 })) {
    const lines = (rest + chunk).split("\n")
    rest = lines.pop()
    for (const line of lines) write(line)
  }
  write(rest)
  db.exec("COMMIT")
  db.close()
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
