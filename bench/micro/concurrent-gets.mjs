// Micro-benchmark: 1,000 concurrent gets through the Promise API against 1,000 sequential awaited raw gets
// (interleaved, medians of 11). Run after `npm run build`: node bench/micro/concurrent-gets.mjs

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { open } from "../../dist/promise.js"
import { makeKeys, makeValues } from "../data.mjs"
import { openRawDatabase, rawApi } from "../raw.mjs"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "conc-"))
const client = open({ filename: `${dir}/lib.db` })
const raw = rawApi(openRawDatabase(`${dir}/raw.db`))
const keys = makeKeys(10000),
  values = makeValues(10000)
const pairs = keys.map((k, i) => [k, values[i]])
await client.setMany(pairs)
await raw.setMany(pairs)
const batches = []
for (let b = 0; b < 10; b++) batches.push(keys.slice(b * 1000, b * 1000 + 1000))
const res = { rawSeq: [], libConc: [], libSeq: [] }
for (let r = 0; r < 11; r++) {
  let t = performance.now()
  for (const batch of batches) for (const k of batch) await raw.get(k)
  res.rawSeq.push((performance.now() - t) / 10)
  t = performance.now()
  for (const batch of batches) await Promise.all(batch.map((k) => client.get(k)))
  res.libConc.push((performance.now() - t) / 10)
  t = performance.now()
  for (const batch of batches) for (const k of batch) await client.get(k)
  res.libSeq.push((performance.now() - t) / 10)
}
for (const [k, xs] of Object.entries(res)) {
  xs.sort((a, b) => a - b)
  console.log(k.padEnd(8), xs[5].toFixed(2), "ms per 1000")
}
