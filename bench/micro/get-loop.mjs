// Micro-benchmark: sequential awaited get and has through the Promise API against raw better-sqlite3
// (interleaved, medians of 15). Run after `npm run build`: node bench/micro/get-loop.mjs

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Database from "better-sqlite3"
import { open } from "../../dist/promise.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gl-"))
const N = 10000
const value = { id: 1, name: "x".repeat(100), tags: ["a", "b", "c"], nested: { a: 1, b: [1, 2, 3], c: "y".repeat(50) } }
const client = open({ filename: `${dir}/p.db` })
await client.setMany(Array.from({ length: N }, (_, i) => [`k${i}`, value]))
const raw = new Database(`${dir}/p.db`)
raw.pragma("journal_mode=WAL")
raw.pragma("synchronous=NORMAL")
const st = raw.prepare("SELECT value FROM runtime_storage WHERE store = ? AND key = ?").pluck()
const sides = {
  raw: (i) => Promise.resolve(JSON.parse(st.get("default", `k${i}`))),
  client: (i) => client.get(`k${i}`),
  has: (i) => client.has(`k${i}`)
}
const results = { raw: [], client: [], has: [] }
for (let r = 0; r < 15; r++)
  for (const [name, f] of Object.entries(sides)) {
    const t = performance.now()
    for (let i = 0; i < N; i++) await f(i)
    results[name].push(((performance.now() - t) * 1000) / N)
  }
for (const [name, xs] of Object.entries(results)) {
  xs.sort((a, b) => a - b)
  console.log(name, xs[7].toFixed(2))
}
