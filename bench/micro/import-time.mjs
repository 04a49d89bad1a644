// Micro-benchmark: whole-process time of importing the Promise API against an empty node and raw better-sqlite3
// (medians of 11). Run after `npm run build`: node bench/micro/import-time.mjs
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const promise = fileURLToPath(new URL("../../dist/promise.js", import.meta.url))
const index = fileURLToPath(new URL("../../dist/index.js", import.meta.url))
const cases = {
  empty: ["-e", "0"],
  raw: ["-e", "require('better-sqlite3')"],
  promise: ["-e", `import(${JSON.stringify(promise)})`],
  effect: ["-e", `import(${JSON.stringify(index)})`]
}
const times = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
for (let r = 0; r < 11; r++) {
  for (const [name, args] of Object.entries(cases)) {
    const started = performance.now()
    spawnSync(process.execPath, args, { cwd: fileURLToPath(new URL("../..", import.meta.url)) })
    times[name].push(performance.now() - started)
  }
}
for (const [name, xs] of Object.entries(times)) {
  xs.sort((a, b) => a - b)
  console.log(name.padEnd(8), xs[5].toFixed(0), "ms")
}
