/**
 * The cliff of issue "Ranges, pages and streams": deleteMany of small keys in a store that also holds one 50 MB
 * value. Schema 1 (0.1.0) walked the large value's overflow pages for every key (minutes for 1,000 keys); schema 2
 * keeps keys in an index of their own (milliseconds).
 * Usage: npm run build && node bench/micro/large-value-delete.mjs [path to a dist/promise.js, default this build's]
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"

const library = process.argv[2] ?? new URL("../../dist/promise.js", import.meta.url).href
const { open } = await import(library)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-cliff-"))
const client = open({ filename: path.join(dir, "storage.db") })
await client.set("big", "x".repeat(50 * 1024 * 1024))
for (const n of [10, 1000]) {
  const keys = Array.from({ length: n }, (_, i) => `small-${i}`)
  await client.setMany(keys.map((key) => [key, { i: 1 }]))
  const start = performance.now()
  await client.deleteMany(keys)
  console.log(`deleteMany of ${n} small keys next to one 50 MB value: ${(performance.now() - start).toFixed(1)} ms`)
}
await client.close()
fs.rmSync(dir, { recursive: true, force: true })
