// Micro-benchmark: setMany's own work (checking and serializing 10,000 benchmark values) with no SQL underneath,
// against a JSON.stringify loop over the same values. Run after `npm run build`, with --cpu-prof to profile:
// node --expose-gc bench/micro/setmany-no-sql.mjs
import { begin } from "../../dist/services/Storage.js"
import { makeKeys, makeValues } from "../data.mjs"

const keys = makeKeys(10000)
const values = makeValues(10000)
const pairs = keys.map((key, i) => [key, values[i]])
let sink = 0
const noSql = { setMany: (_store, rows) => (sink += rows.length) }
const program = [],
  stringify = []
for (let r = 0; r < 9; r++) {
  globalThis.gc?.()
  let started = performance.now()
  begin("setMany", pairs).resume(noSql)
  program.push(performance.now() - started)
  globalThis.gc?.()
  started = performance.now()
  for (const [, value] of pairs) sink += JSON.stringify(value).length
  stringify.push(performance.now() - started)
}
program.sort((a, b) => a - b)
stringify.sort((a, b) => a - b)
console.log(
  `setMany program (no SQL) ${program[4].toFixed(1)} ms; JSON.stringify loop ${stringify[4].toFixed(1)} ms (${sink > 0})`
)
