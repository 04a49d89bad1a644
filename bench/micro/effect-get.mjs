// Micro-benchmark: get through the Effect API inside one effect against raw awaited gets (interleaved, medians
// of 15). Run after `npm run build`: node bench/micro/effect-get.mjs

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { layerSqlite, Storage } from "../../dist/index.js"
import { makeKeys, makeValues } from "../data.mjs"
import { openRawDatabase, rawApi } from "../raw.mjs"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eg-"))
const rt = ManagedRuntime.make(layerSqlite({ filename: `${dir}/lib.db` }))
const storage = await rt.runPromise(Storage)
const raw = rawApi(openRawDatabase(`${dir}/raw.db`))
const keys = makeKeys(10000),
  values = makeValues(10000)
const pairs = keys.map((k, i) => [k, values[i]])
await rt.runPromise(storage.setMany(pairs))
await raw.setMany(pairs)
const res = { raw: [], eff: [], effNoOp: [] }
for (let r = 0; r < 15; r++) {
  let t = performance.now()
  for (const k of keys) await raw.get(k)
  res.raw.push(((performance.now() - t) * 1000) / keys.length)
  t = performance.now()
  await rt.runPromise(
    Effect.gen(function* () {
      for (const k of keys) yield* storage.get(k)
    })
  )
  res.eff.push(((performance.now() - t) * 1000) / keys.length)
  t = performance.now()
  await rt.runPromise(
    Effect.gen(function* () {
      for (const k of keys) yield* Effect.succeed(k)
    })
  )
  res.effNoOp.push(((performance.now() - t) * 1000) / keys.length)
}
for (const [k, xs] of Object.entries(res)) {
  xs.sort((a, b) => a - b)
  console.log(k.padEnd(8), xs[7].toFixed(2), "µs")
}
await rt.dispose()
