// Micro-benchmark: 1,000 concurrent gets through the Effect API (Effect.forEach, unbounded concurrency) and 1,000
// sequential ones, against 1,000 sequential awaited raw gets, and the floor of any concurrent Effect API: the same
// Effect.forEach of 1,000 effects that do nothing (interleaved, medians of 11). Run after `npm run build`:
// node bench/micro/effect-concurrent.mjs

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { layerSqlite, Storage } from "../../dist/index.js"
import { makeKeys, makeValues } from "../data.mjs"
import { openRawDatabase, rawApi } from "../raw.mjs"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ec-"))
const rt = ManagedRuntime.make(layerSqlite({ filename: `${dir}/lib.db` }))
const storage = await rt.runPromise(Storage)
const raw = rawApi(openRawDatabase(`${dir}/raw.db`))
const keys = makeKeys(10000)
const values = makeValues(10000)
const pairs = keys.map((k, i) => [k, values[i]])
await rt.runPromise(storage.setMany(pairs))
await raw.setMany(pairs)
const batches = []
for (let b = 0; b < 10; b++) batches.push(keys.slice(b * 1000, b * 1000 + 1000))
const res = { rawSeq: [], effConc: [], effSeq: [], forkFloor: [] }
for (let r = 0; r < 11; r++) {
  let t = performance.now()
  for (const batch of batches) for (const k of batch) await raw.get(k)
  res.rawSeq.push((performance.now() - t) / 10)
  t = performance.now()
  const got = await rt.runPromise(
    Effect.forEach(batches, (batch) => Effect.forEach(batch, (k) => storage.get(k), { concurrency: "unbounded" }))
  )
  res.effConc.push((performance.now() - t) / 10)
  if (got[9][999]._tag !== "Some" || got[9][999].value.id !== 9999) throw new Error("wrong value")
  t = performance.now()
  await rt.runPromise(
    Effect.gen(function* () {
      for (const batch of batches) for (const k of batch) yield* storage.get(k)
    })
  )
  res.effSeq.push((performance.now() - t) / 10)
  t = performance.now()
  await rt.runPromise(
    Effect.forEach(batches, (batch) => Effect.forEach(batch, (k) => Effect.succeed(k), { concurrency: "unbounded" }))
  )
  res.forkFloor.push((performance.now() - t) / 10)
}
for (const [k, xs] of Object.entries(res)) {
  xs.sort((a, b) => a - b)
  console.log(k.padEnd(8), xs[5].toFixed(2), "ms per 1000")
}
await rt.dispose()
fs.rmSync(dir, { recursive: true, force: true })
