// Micro-benchmark behind the choice of slices over a worker thread (README, "Large calls never freeze the app"):
// a get answered by a worker thread that owns the connection (a message each way, the value parsed on the caller's
// thread as the library must) against the same get on the caller's thread (medians of 9 rounds of 5,000 gets).
// Run: node bench/micro/worker-get.mjs

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import Database from "better-sqlite3"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wg-"))
const file = path.join(dir, "w.db")
const N = 5000
const setup = new Database(file)
setup.pragma("journal_mode = WAL")
setup.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)")
const insert = setup.prepare("INSERT INTO kv VALUES (?, ?)")
const value = JSON.stringify({ id: 1, name: "x".repeat(100), tags: ["a", "b", "c"] })
setup.transaction(() => {
  for (let i = 0; i < N; i++) insert.run(`k${i}`, value)
})()
const local = setup.prepare("SELECT value FROM kv WHERE key = ?").pluck()

const worker = new Worker(
  `const { parentPort, workerData } = require("node:worker_threads")
   const Database = require(workerData.driver)
   const get = new Database(workerData.file).prepare("SELECT value FROM kv WHERE key = ?").pluck()
   parentPort.on("message", ([id, key]) => parentPort.postMessage([id, get.get(key)]))`,
  { eval: true, workerData: { driver: import.meta.resolve("better-sqlite3").replace("file://", ""), file } }
)
const pending = new Map()
let next = 0
worker.on("message", ([id, text]) => {
  pending.get(id)(JSON.parse(text))
  pending.delete(id)
})
const remote = (key) =>
  new Promise((resolve) => {
    const id = next++
    pending.set(id, resolve)
    worker.postMessage([id, key])
  })

const sides = {
  "caller's thread": async (i) => JSON.parse(local.get(`k${i}`)),
  "worker thread": (i) => remote(`k${i}`)
}
const samples = Object.fromEntries(Object.keys(sides).map((name) => [name, []]))
for (let round = 0; round < 10; round++) {
  for (const [name, get] of Object.entries(sides)) {
    const start = performance.now()
    for (let i = 0; i < N; i++) await get(i)
    if (round > 0) samples[name].push(((performance.now() - start) * 1000) / N)
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
for (const [name, values] of Object.entries(samples)) console.log(`${name}: ${median(values).toFixed(2)} µs per get`)
await worker.terminate()
setup.close()
fs.rmSync(dir, { recursive: true, force: true })
