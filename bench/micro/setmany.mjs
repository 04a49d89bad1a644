// Micro-benchmark: setMany of 10,000 benchmark values through the Promise API against raw better-sqlite3
// (interleaved, medians of 9). Run after `npm run build`: node --expose-gc bench/micro/setmany.mjs

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { open } from "../../dist/promise.js"
import { makeKeys, makeValues } from "../data.mjs"
import { openRawDatabase, rawApi } from "../raw.mjs"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sm2-"))
const client = open({ filename: `${dir}/lib.db` })
const raw = rawApi(openRawDatabase(`${dir}/raw.db`))
await client.get("x")
const keys = makeKeys(10000),
  values = makeValues(10000)
const pairs = keys.map((k, i) => [k, values[i]])
const res = { raw: [], lib: [] }
for (let r = 0; r < 9; r++) {
  for (const [name, api] of [
    ["raw", raw],
    ["lib", client]
  ]) {
    await api.clear()
    global.gc?.()
    const t = performance.now()
    await api.setMany(pairs)
    res[name].push(performance.now() - t)
  }
}
for (const [k, xs] of Object.entries(res)) {
  xs.sort((a, b) => a - b)
  console.log(k, xs[4].toFixed(1), "ms")
}
