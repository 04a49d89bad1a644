/**
 * Peak memory of `entries()` (or, with the mode `list`, of streaming every entry: raw's iterate(), the Promise API's
 * `for await … of list()`, the Effect API's `Stream.runForEach(list())`) on one side, in a fresh process so that
 * peaks of different sides never mix.
 * Usage: node --expose-gc bench/memory-child.mjs <raw|promise|effect> <filename> <expectedCount> <sampleKey> [list]
 * Prints one JSON line: { rssBefore, peakRssGrowth, newPeak, heapGrowth, externalGrowth, count, sample, ... }.
 *
 * The connection is opened and a first read done before measuring, so only `entries()` itself is measured:
 * peak RSS growth is the process's maximum resident set size (getrusage; on Linux reset to the current RSS just
 * before the call) after the call minus the RSS just before it; heap growth is what the returned array still
 * holds (heapUsed after minus before, result alive).
 */
import * as fs from "node:fs"

const [side, filename, expectedCount, sampleKey, mode = "entries"] = process.argv.slice(2)
if (typeof globalThis.gc !== "function") throw new Error("run with --expose-gc")

const openSide = async () => {
  if (side === "raw") {
    const { openRawDatabase, rawApi } = await import("./raw.mjs")
    const db = openRawDatabase(filename)
    const api = rawApi(db)
    return { entries: api.entries, stream: api.stream, get: api.get, close: async () => db.close() }
  }
  if (side === "promise") {
    const { open } = await import("../dist/promise.js")
    const client = open({ filename, durability: "relaxed" })
    return {
      entries: () => client.entries(),
      stream: async (visit) => {
        for await (const entry of client.list()) visit(entry)
      },
      get: (key) => client.get(key),
      close: () => client.close()
    }
  }
  if (side === "effect") {
    const Effect = await import("effect/Effect")
    const ManagedRuntime = await import("effect/ManagedRuntime")
    const Option = await import("effect/Option")
    const Stream = await import("effect/Stream")
    const { layerSqlite, Storage } = await import("../dist/index.js")
    const runtime = ManagedRuntime.make(layerSqlite({ filename, durability: "relaxed" }))
    const run = (body) => runtime.runPromise(Effect.flatMap(Storage, body))
    return {
      entries: () => run((storage) => storage.entries()),
      stream: (visit) =>
        run((storage) => Stream.runForEach(storage.list(), (entry) => Effect.sync(() => visit(entry)))),
      get: (key) => run((storage) => Effect.map(storage.get(key), Option.getOrNull)),
      close: () => runtime.dispose()
    }
  }
  throw new Error(`Unknown side ${side}`)
}

const api = await openSide()
const first = await api.get(sampleKey)
if (first === null) throw new Error(`${side}: ${sampleKey} is missing`)
for (let i = 0; i < 3; i++) globalThis.gc()
// On Linux, writing 5 to clear_refs resets the peak RSS to the current RSS: the peak is then the call's own.
let peakReset = false
try {
  fs.writeFileSync("/proc/self/clear_refs", "5")
  peakReset = true
} catch {}
const before = process.memoryUsage()
const peakBefore = process.resourceUsage().maxRSS * 1024
let entries
if (mode === "list") {
  // Only the count and one sample are kept: what streaming holds is the library's (or the driver's) own.
  let count = 0
  let sample
  await api.stream((entry) => {
    count++
    if (entry.key === sampleKey) sample = entry
  })
  entries = { length: count, find: () => sample }
} else {
  entries = await api.entries()
}
const peakRss = process.resourceUsage().maxRSS * 1024
const after = process.memoryUsage()
const sample = entries.find((entry) => entry.key === sampleKey)
process.stdout.write(
  `${JSON.stringify({
    rssBefore: before.rss,
    peakRssGrowth: peakRss - before.rss,
    // When the call set no new peak, the growth above is only an upper bound of the peak before it.
    newPeak: peakRss > peakBefore,
    peakReset,
    heapGrowth: after.heapUsed - before.heapUsed,
    externalGrowth: after.external - before.external,
    count: entries.length,
    expectedCount: Number(expectedCount),
    sample: sample?.value ?? null,
    first
  })}\n`
)
await api.close()
