/**
 * The benchmark of runtime-storage: the built Promise API and Effect API against raw better-sqlite3 used the
 * straightforward way. Run with `npm run bench` (builds first); see `--help`.
 *
 * The three sides run interleaved, workload by workload within each repetition, in a rotating order, each on its
 * own database file in a temp directory, so that machine drift hits them alike. Every result is verified after
 * its timing, so a broken side cannot look fast. Memory and cold start are measured in fresh child processes.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { runCli } from "./cli.mjs"
import { batchesOf, keyAt, makeKeys, makeValues, sameJson, valueAt } from "./data.mjs"
import { runStrict } from "./durability.mjs"
import { runPg } from "./pg.mjs"
import { openRawDatabase } from "./raw.mjs"
import { formatReport } from "./report.mjs"
import { openSide, SIDES } from "./sides.mjs"
import { runSizes, sizesOf } from "./sizes.mjs"
import { runStalls } from "./stall.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")

// ---------------------------------------------------------------------------------------------------------------
// Options

const USAGE = `Usage: npm run bench -- [--n=10000] [--reps=5] [--big=100000] [--huge=1000000] [--quick | --verify] [--out=BENCHMARKS.md]
  --n=N        keys of the per-operation workloads (and entries of setMany)     default 10000 (--quick: 1000)
  --reps=R     measured repetitions, after one warm-up repetition               default 5 (--quick: 2)
  --big=B      keys of the large keys()/entries()/memory/cold-start database    default 100000 (--quick: 10000)
  --huge=H     keys of the ranges database (page, count, list); a power of 10   default 1000000 (--quick: 100000)
  --quick      small sizes and few repetitions: a run takes about two minutes
  --verify     tiny sizes, one repetition, no report written: every workload runs once and every result is
               checked, no timing is (npm test runs it; RUNTIME_STORAGE_BENCH_PG_URL: a PostgreSQL server to use)
  --out=FILE   the markdown report, relative to the package root; --out= writes none   default BENCHMARKS.md`

const parseArgs = (argv) => {
  const given = {}
  for (const arg of argv) {
    if (arg === "--help" || arg === "-h") {
      console.log(USAGE)
      process.exit(0)
    }
    const match = /^--(n|reps|big|huge|out|quick|verify)(?:=(.*))?$/.exec(arg)
    if (match === null) {
      console.error(`Unknown argument ${arg}\n${USAGE}`)
      process.exit(2)
    }
    given[match[1]] = match[2] ?? true
  }
  const verify = given.verify === true || given.verify === "true"
  const quick = verify || given.quick === true || given.quick === "true"
  const integer = (name, fallback, min) => {
    if (given[name] === undefined) return fallback
    const value = Number(given[name])
    if (!Number.isInteger(value) || value < min) {
      console.error(`--${name} must be an integer >= ${min}, got ${given[name]}`)
      process.exit(2)
    }
    return value
  }
  const n = integer("n", verify ? 100 : quick ? 1000 : 10_000, 10)
  const reps = integer("reps", verify ? 1 : quick ? 2 : 5, 1)
  return {
    quick,
    verify,
    n,
    reps,
    // keys() / entries() at `big` keys: one call per side and repetition, so twice as many repetitions.
    bigReps: quick ? reps : 2 * reps,
    // Calls of keys() / entries() per timed sample at n keys: one call of a few ms is too short to time alone.
    listRepeat: Math.max(1, Math.min(10, Math.round(100_000 / n))),
    big: integer("big", verify ? 2000 : quick ? 10_000 : 100_000, 10),
    huge: integer("huge", verify ? 1000 : quick ? 100_000 : 1_000_000, 1000),
    // Megabytes of each of the 3 large values that share a store with the small keys.
    largeValueMb: verify ? 0.25 : quick ? 5 : 20,
    memoryReps: quick ? 1 : 3,
    coldReps: verify ? 1 : quick ? 3 : 9,
    batch: Math.min(1000, n),
    out: verify || given.out === true ? "" : given.out === undefined ? "BENCHMARKS.md" : given.out
  }
}

const options = parseArgs(process.argv.slice(2))
if (!Number.isInteger(Math.log10(options.huge))) {
  console.error(`--huge must be a power of 10 (its prefix then selects a tenth of the keys), got ${options.huge}`)
  process.exit(2)
}

// A collection before each timed section, so one side's garbage is not collected on another side's time.
v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc")

const log = (message) => process.stderr.write(`${message}\n`)

const check = (condition, message) => {
  if (!condition) throw new Error(`Verification failed: ${message}`)
}

/** Rotates the order of the sides by repetition, so no side is always first or last. */
const rotated = (items, by) => items.map((_, i) => items[(i + by) % items.length])

/** samples[measure][side] = array of per-op microseconds, one per measured repetition. */
const samples = {}
const record = (measure, side, value) => {
  samples[measure] ??= {}
  samples[measure][side] ??= []
  samples[measure][side].push(value)
}

// ---------------------------------------------------------------------------------------------------------------
// The per-operation workloads

const { n, batch, big, bigReps, listRepeat } = options

const timed = async (f) => {
  gc()
  const start = performance.now()
  const result = await f()
  return { ms: performance.now() - start, result }
}
const perOp = (ms, ops) => (ms * 1000) / ops

/** The same call `times` times in a row; the last result is returned for verification. */
const repeated = (times, f) => async () => {
  let result
  for (let i = 0; i < times; i++) result = await f()
  return result
}

const verifyValues = (side, adapter, results, expected, what) => {
  check(results.length === expected.length, `${side} ${what}: ${results.length} results for ${expected.length} keys`)
  for (let i = 0; i < expected.length; i++) {
    check(sameJson(adapter.value(results[i]), expected[i]), `${side} ${what}: wrong value for index ${i}`)
  }
}

/**
 * The per-operation workloads, in the order each repetition runs them; each leaves the store as the next expects.
 * `run` times one side and returns { measure: microseconds per op }. The data is built here, before any timing,
 * and dropped with the workloads when the phase ends.
 */
const makeWorkloads = () => {
  const keys = makeKeys(n)
  const values = makeValues(n, 0, 0)
  const newValues = makeValues(n, 0, 1)
  const bulkKeys = makeKeys(n, n)
  const bulkValues = makeValues(n, n, 0)
  const bulkPairs = bulkKeys.map((key, i) => [key, bulkValues[i]])
  const getBatches = batchesOf(keys, batch)
  const deleteBatches = batchesOf(bulkKeys, batch)
  return [
    {
      name: "set",
      run: async (_side, a) => {
        const { ms } = await timed(() => a.setEach(keys, values))
        return { set: perOp(ms, n) }
      }
    },
    {
      name: "get",
      run: async (side, a) => {
        const { ms, result } = await timed(() => a.getEach(keys))
        verifyValues(side, a, result, values, "get")
        return { get: perOp(ms, n) }
      }
    },
    {
      name: "has",
      run: async (side, a) => {
        const { ms, result } = await timed(() => a.hasEach(keys))
        check(result.length === n && result.every((present) => present === true), `${side} has: not all true`)
        return { has: perOp(ms, n) }
      }
    },
    {
      name: "concurrent gets",
      run: async (side, a, rep) => {
        const out = {}
        const concurrent = async () => {
          const { ms, result } = await timed(() => a.getConcurrent(getBatches))
          verifyValues(side, a, result.flat(), values, "concurrent get")
          out.concurrent = perOp(ms, getBatches.length)
        }
        // The raw side also runs the same gets sequentially awaited, in alternating order with its Promise.all.
        const sequential = async () => {
          const { ms, result } = await timed(() => a.getEach(keys))
          verifyValues(side, a, result, values, "sequential get")
          out.sequential = perOp(ms, getBatches.length)
        }
        if (side !== "raw") await concurrent()
        else if (rep % 2 === 0) await sequential().then(concurrent)
        else await concurrent().then(sequential)
        return out
      }
    },
    {
      name: "getMany",
      run: async (side, a) => {
        const { ms, result } = await timed(() => a.getManyEach(getBatches))
        check(result.length === getBatches.length, `${side} getMany: ${result.length} results`)
        result.forEach((map, b) => {
          check(map.size === getBatches[b].length, `${side} getMany: ${map.size} values for ${getBatches[b].length}`)
          getBatches[b].forEach((key, j) => {
            check(sameJson(map.get(key), values[b * batch + j]), `${side} getMany: wrong value of ${key}`)
          })
        })
        return { getMany: perOp(ms, getBatches.length) }
      }
    },
    {
      name: "overwrite",
      run: async (_side, a) => {
        const { ms } = await timed(() => a.setEach(keys, newValues))
        return { overwrite: perOp(ms, n) }
      }
    },
    {
      name: "atomic",
      run: async (side, a) => {
        // The versions to check are read before the timing (raw keeps none: it checks its column's default).
        const versions = await a.versionsOf(keys)
        const { ms, result } = await timed(() => a.atomicEach(keys, newValues, versions))
        check(result.length === n && result.every((ok) => ok === true), `${side} atomic: a commit failed its check`)
        return { atomic: perOp(ms, n) }
      }
    },
    {
      name: "keys",
      run: async (side, a) => {
        const { ms, result } = await timed(repeated(listRepeat, () => a.keys()))
        check(result.length === n && result.every((key, i) => key === keys[i]), `${side} keys(): wrong keys`)
        return { keysN: perOp(ms, listRepeat) }
      }
    },
    {
      name: "entries",
      run: async (side, a) => {
        const { ms, result } = await timed(repeated(listRepeat, () => a.entries()))
        check(result.length === n, `${side} entries(): ${result.length} entries`)
        result.forEach((entry, i) => {
          check(entry.key === keys[i] && sameJson(entry.value, newValues[i]), `${side} entries(): wrong ${entry.key}`)
        })
        return { entriesN: perOp(ms, listRepeat) }
      }
    },
    {
      name: "remove",
      run: async (side, a) => {
        const { ms, result } = await timed(() => a.removeEach(keys))
        check(result.length === n && result.every((removed) => removed === true), `${side} remove: not all true`)
        return { remove: perOp(ms, n) }
      }
    },
    {
      name: "setMany",
      run: async (side, a) => {
        const { ms } = await timed(() => a.setMany(bulkPairs))
        const stored = await a.keys()
        check(stored.length === n && stored[0] === bulkKeys[0], `${side} setMany: ${stored.length} keys stored`)
        const sample = await a.getEach([bulkKeys[n - 1]])
        check(sameJson(a.value(sample[0]), bulkValues[n - 1]), `${side} setMany: wrong value`)
        return { setMany: perOp(ms, 1) }
      }
    },
    {
      name: "deleteMany",
      run: async (side, a) => {
        const { ms, result } = await timed(() => a.deleteManyEach(deleteBatches))
        result.forEach((removed, b) => {
          check(removed === deleteBatches[b].length, `${side} deleteMany: ${removed} removed`)
        })
        check((await a.keys()).length === 0, `${side} deleteMany: keys left`)
        return { deleteMany: perOp(ms, deleteBatches.length) }
      }
    }
  ]
}

// ---------------------------------------------------------------------------------------------------------------
// Runs

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-bench-"))
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true })
process.on("exit", cleanup)

const runPerOperation = async () => {
  const workloads = makeWorkloads()
  const adapters = {}
  for (const side of SIDES) adapters[side] = await openSide(side, path.join(tmp, `ops-${side}.db`))
  for (let rep = 0; rep <= options.reps; rep++) {
    const warmup = rep === 0
    const started = performance.now()
    for (const workload of workloads) {
      for (const side of rotated(SIDES, rep)) {
        const measured = await workload.run(side, adapters[side], rep)
        if (warmup) continue
        for (const [measure, value] of Object.entries(measured)) {
          // The raw side's sequential gets are the baseline of the concurrent-gets goal: a side of their own.
          if (measure === "sequential") record("concurrent", "rawSequential", value)
          else record(measure, side, value)
        }
      }
    }
    for (const side of SIDES) await adapters[side].clear()
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    log(`  ${warmup ? "warm-up" : `rep ${rep}/${options.reps}`}: ${seconds} s`)
  }
  for (const side of SIDES) await adapters[side].close()
}

const bigFile = (side) => path.join(tmp, `big-${side}.db`)
const sampleIndex = Math.floor(big / 2)
const sampleKey = keyAt(sampleIndex)

/**
 * keys() and entries() at `big` keys. Nothing big is kept alive in this process meanwhile (the values are made
 * chunk by chunk to fill, and again for verification), so the garbage collector sees the same heap on each side.
 */
const runBig = async () => {
  const adapters = {}
  for (const side of SIDES) {
    adapters[side] = await openSide(side, bigFile(side))
    for (let start = 0; start < big; start += 10_000) {
      const count = Math.min(10_000, big - start)
      await adapters[side].fill(makeKeys(count, start), makeValues(count, start))
    }
  }
  const step = Math.max(1, Math.floor(big / 1000))
  const lists = {
    keysBig: {
      call: (a) => a.keys(),
      verify: (side, result) => {
        check(result.length === big, `${side} keys() at ${big}: ${result.length} keys`)
        for (let i = 0; i < big; i += step) check(result[i] === keyAt(i), `${side} keys() at ${big}: key ${i}`)
        check(result[big - 1] === keyAt(big - 1), `${side} keys() at ${big}: last key`)
      }
    },
    entriesBig: {
      call: (a) => a.entries(),
      verify: (side, result) => {
        check(result.length === big, `${side} entries() at ${big}: ${result.length} entries`)
        for (let i = 0; i < big; i += step) {
          const entry = result[i]
          check(entry.key === keyAt(i) && sameJson(entry.value, valueAt(i)), `${side} entries() at ${big}: ${i}`)
        }
      }
    }
  }
  for (let rep = 0; rep <= bigReps; rep++) {
    for (const [measure, { call, verify }] of Object.entries(lists)) {
      for (const side of rotated(SIDES, rep)) {
        const { ms, result } = await timed(() => call(adapters[side]))
        verify(side, result)
        if (rep > 0) record(measure, side, perOp(ms, 1))
      }
    }
    log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${bigReps}`}`)
  }
  for (const side of SIDES) await adapters[side].close()
}

const runMemory = () => {
  const child = path.join(here, "memory-child.mjs")
  const expected = valueAt(sampleIndex)
  const details = {}
  for (let rep = 0; rep < options.memoryReps; rep++) {
    for (const side of rotated(SIDES, rep)) {
      const result = spawnSync(process.execPath, ["--expose-gc", child, side, bigFile(side), String(big), sampleKey], {
        encoding: "utf8"
      })
      check(result.status === 0, `${side} memory child failed: ${result.stderr}`)
      const report = JSON.parse(result.stdout)
      check(report.count === big, `${side} memory child: ${report.count} entries`)
      check(sameJson(report.sample, expected) && sameJson(report.first, expected), `${side} memory child: value`)
      record("memoryPeak", side, report.peakRssGrowth / 2 ** 20)
      record("memoryHeap", side, report.heapGrowth / 2 ** 20)
      details[side] ??= []
      details[side].push(report)
    }
  }
  return details
}

const runCold = () => {
  const expected = JSON.stringify(valueAt(sampleIndex))
  const commands = {
    raw: [path.join(here, "cold-raw.mjs"), bigFile("raw"), sampleKey],
    promise: [path.join(here, "cold-promise.mjs"), bigFile("promise"), sampleKey],
    effect: [path.join(here, "cold-effect.mjs"), bigFile("effect"), sampleKey],
    node: ["-e", "0"],
    // An app that already imports effect, printing the same line: the Effect entry's extra cost is over this.
    effectBase: [path.join(here, "cold-effect-base.mjs"), expected]
  }
  const order = [...SIDES, "node", "effectBase"]
  // One untimed run each first: the files and modules are then in the OS cache for every side alike.
  // (No untimed run when verifying: nothing is timed.)
  for (let rep = options.verify ? 0 : -1; rep < options.coldReps; rep++) {
    for (const side of rotated(order, Math.max(0, rep))) {
      const start = performance.now()
      const result = spawnSync(process.execPath, commands[side], { encoding: "utf8", cwd: root })
      const ms = performance.now() - start
      check(result.status === 0, `${side} cold start failed: ${result.stderr}`)
      if (side !== "node") check(result.stdout.trim() === expected, `${side} cold start printed ${result.stdout}`)
      if (rep >= 0) record("cold", side, ms * 1000)
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ranges: page, count and list on one database of `huge` keys, read by the three sides

const { huge } = options
const rangesFile = path.join(tmp, "ranges.db")
/** A prefix that selects a tenth of the `huge` keys: "user:04" of user:0000000 … user:0999999. */
const rangePrefix = `user:${String(Math.floor(huge * 0.4))
  .padStart(7, "0")
  .slice(0, 8 - Math.log10(huge))}`
const rangeFirst = Math.floor(huge * 0.4)
const PAGE_SIZE = 100
// Consecutive pages per timed sample: a page takes a fraction of a millisecond, so one sample reads many.
const PAGES = Math.min(400, huge / 10 / PAGE_SIZE - 1)
const COUNTS = 5

/** Fills the ranges database once, through the Promise API (the library's schema), then closes it. */
const fillRanges = async () => {
  const { open } = await import("../dist/promise.js")
  const client = open({ filename: rangesFile, durability: "relaxed" })
  for (let start = 0; start < huge; start += 10_000) {
    const count = Math.min(10_000, huge - start)
    const keys = makeKeys(count, start)
    const values = makeValues(count, start)
    await client.setMany(keys.map((key, i) => [key, values[i]]))
  }
  await client.close()
}

const runRanges = async () => {
  await fillRanges()
  const adapters = {}
  for (const side of SIDES) adapters[side] = await openSide(side, rangesFile)
  const workloads = {
    page: async (side, a) => {
      const { ms, result } = await timed(() => a.pages(rangePrefix, PAGES, PAGE_SIZE))
      check(result.length === PAGES, `${side} page: ${result.length} pages`)
      result.forEach(({ keys, first }, p) => {
        check(keys.length === PAGE_SIZE, `${side} page ${p}: ${keys.length} entries`)
        keys.forEach((key, j) => {
          check(key === keyAt(rangeFirst + p * PAGE_SIZE + j), `${side} page ${p}: ${key}`)
        })
        const i = rangeFirst + p * PAGE_SIZE
        check(first.key === keyAt(i) && sameJson(first.value, valueAt(i)), `${side} page ${p}: first entry`)
      })
      return perOp(ms, PAGES)
    },
    count: async (side, a) => {
      const { ms, result } = await timed(() => a.countEach(rangePrefix, COUNTS))
      check(result === huge / 10, `${side} count: ${result}, not ${huge / 10}`)
      return perOp(ms, COUNTS)
    },
    stream: async (side, a) => {
      let index = 0
      let wrong
      const visit = (entry) => {
        if (wrong === undefined && entry.key !== keyAt(index)) wrong = `key ${entry.key} at ${index}`
        if (wrong === undefined && index % 10_000 === 0 && !sameJson(entry.value, valueAt(index))) {
          wrong = `value of ${entry.key}`
        }
        index++
      }
      const { ms } = await timed(() => a.stream(visit))
      check(wrong === undefined && index === huge, `${side} stream: ${wrong ?? `${index} entries`}`)
      return perOp(ms, 1)
    }
  }
  for (let rep = 0; rep <= options.reps; rep++) {
    for (const [measure, run] of Object.entries(workloads)) {
      for (const side of rotated(SIDES, rep)) {
        const value = await run(side, adapters[side])
        if (rep > 0) record(measure, side, value)
      }
    }
    log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${options.reps}`}`)
  }
  for (const side of SIDES) await adapters[side].close()
}

/** Peak RSS growth while streaming every entry of the ranges database, in a fresh process per side. */
const runStreamMemory = () => {
  const child = path.join(here, "memory-child.mjs")
  const sample = keyAt(rangeFirst)
  const details = {}
  for (let rep = 0; rep < options.memoryReps; rep++) {
    for (const side of rotated(SIDES, rep)) {
      const result = spawnSync(
        process.execPath,
        ["--expose-gc", child, side, rangesFile, String(huge), sample, "list"],
        { encoding: "utf8" }
      )
      check(result.status === 0, `${side} stream memory child failed: ${result.stderr}`)
      const report = JSON.parse(result.stdout)
      check(report.count === huge, `${side} stream memory child: ${report.count} entries`)
      check(sameJson(report.sample, valueAt(rangeFirst)), `${side} stream memory child: value`)
      record("streamPeak", side, report.peakRssGrowth / 2 ** 20)
      details[side] ??= []
      details[side].push(report)
    }
  }
  return details
}

// ---------------------------------------------------------------------------------------------------------------
// Small keys next to large values: the same workloads on a store without and with 3 large values in it

const LARGE_BATCH = options.verify ? 100 : 1000

const runLargeNeighbours = async () => {
  const large = "x".repeat(options.largeValueMb * 2 ** 20)
  const keys = makeKeys(LARGE_BATCH, 5_000_000)
  const values = makeValues(LARGE_BATCH, 5_000_000)
  const pairs = keys.map((key, i) => [key, values[i]])
  const adapters = {}
  for (const side of SIDES) {
    for (const withLarge of [false, true]) {
      const adapter = await openSide(side, path.join(tmp, `neighbours-${side}-${withLarge}.db`))
      // Resident small keys around the new ones, and (in one of the two) the large values among them.
      const resident = options.verify ? 1000 : 10_000
      await adapter.fill(makeKeys(resident, 4_995_000), makeValues(resident, 4_995_000))
      if (withLarge) {
        await adapter.setMany([0, 1, 2].map((i) => [`${keyAt(4_999_000 + i * 300)}-large`, `${i}${large}`]))
      }
      adapters[`${side}:${withLarge}`] = adapter
    }
  }
  const workloads = {
    set: async (a) => timed(() => a.setEach(keys, values)).then(({ ms }) => perOp(ms, LARGE_BATCH)),
    get: async (a, side) => {
      const { ms, result } = await timed(() => a.getEach(keys))
      verifyValues(side, a, result, values, "get next to large values")
      return perOp(ms, LARGE_BATCH)
    },
    overwrite: async (a) => timed(() => a.setEach(keys, values)).then(({ ms }) => perOp(ms, LARGE_BATCH)),
    remove: async (a, side) => {
      const { ms, result } = await timed(() => a.removeEach(keys))
      check(
        result.every((removed) => removed === true),
        `${side} remove next to large values: not all removed`
      )
      return perOp(ms, LARGE_BATCH)
    },
    setMany: async (a) => timed(() => a.setMany(pairs)).then(({ ms }) => perOp(ms, 1)),
    getMany: async (a, side) => {
      const { ms, result } = await timed(() => a.getManyEach([keys]))
      check(result[0].size === LARGE_BATCH, `${side} getMany next to large values: ${result[0].size} values`)
      return perOp(ms, 1)
    },
    deleteMany: async (a, side) => {
      const { ms, result } = await timed(() => a.deleteManyEach([keys]))
      check(result[0] === LARGE_BATCH, `${side} deleteMany next to large values: ${result[0]} removed`)
      return perOp(ms, 1)
    }
  }
  for (let rep = 0; rep <= options.reps; rep++) {
    for (const [name, run] of Object.entries(workloads)) {
      for (const side of rotated(SIDES, rep)) {
        for (const withLarge of rep % 2 === 0 ? [false, true] : [true, false]) {
          const value = await run(adapters[`${side}:${withLarge}`], side)
          if (rep > 0) record(`neighbours:${name}:${withLarge ? "large" : "small"}`, side, value)
        }
      }
    }
    log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${options.reps}`}`)
  }
  for (const adapter of Object.values(adapters)) await adapter.close()
}

// ---------------------------------------------------------------------------------------------------------------
// Binary values: set and get of 64 KB Uint8Arrays; raw stores and reads a BLOB

const BINARY_BYTES = 64 * 1024

const runBinary = async () => {
  const count = options.verify ? 50 : options.quick ? 200 : 1000
  const keys = makeKeys(count, 7_000_000)
  const bytes = keys.map((_, i) => {
    const value = new Uint8Array(BINARY_BYTES)
    for (let j = 0; j < BINARY_BYTES; j += 97) value[j] = (i + j) & 0xff
    return value
  })
  const same = (a, b) => a !== null && a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
  for (let rep = 0; rep <= options.reps; rep++) {
    for (const side of rotated(SIDES, rep)) {
      const adapter = await openSide(side, path.join(tmp, `binary-${side}-${rep}.db`))
      const set = await timed(() => adapter.setBytesEach(keys, bytes))
      const get = await timed(() => adapter.getBytesEach(keys))
      check(
        get.result.every((value, i) => same(value, bytes[i])),
        `${side} binary get: wrong bytes`
      )
      await adapter.close()
      fs.rmSync(path.join(tmp, `binary-${side}-${rep}.db`), { force: true })
      if (rep > 0) {
        record("binarySet", side, perOp(set.ms, count))
        record("binaryGet", side, perOp(get.ms, count))
      }
    }
    log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${options.reps}`}`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Expiry: count and pages of a store whose every other entry has expired (before the sweeper has deleted them),
// against a store of only the live half. Raw has no expiry: each library side is compared with itself.

const DAY = 24 * 60 * 60 * 1000
const EXPIRY_PAGES = 100
const EXPIRY_COUNTS = 5

const runExpiry = async () => {
  const { open } = await import("../dist/promise.js")
  const files = { half: path.join(tmp, "expiry-half.db"), live: path.join(tmp, "expiry-live.db") }
  // The half that expires does so in a day: reads are then timed with the clock (Date.now, which Effect's live
  // Clock reads too) a day and a minute ahead, so they see it expired while the sweepers, whose next run is a second
  // away (their first, at open, has found nothing expired yet), have not deleted it; the check after each proves it.
  for (const [which, filename] of Object.entries(files)) {
    const client = open({ filename, durability: "relaxed" })
    for (let start = 0; start < big; start += 10_000) {
      const keys = makeKeys(Math.min(10_000, big - start), start)
      const values = makeValues(keys.length, start)
      const pairs = keys.map((key, i) => [key, values[i]])
      await client.setMany(pairs.filter((_, i) => (start + i) % 2 === 0))
      if (which === "half")
        await client.setMany(
          pairs.filter((_, i) => (start + i) % 2 === 1),
          { expireIn: DAY }
        )
    }
    await client.close()
  }
  const realNow = Date.now
  const ahead = () => realNow() + DAY + 60_000
  const rows = (filename) => {
    const db = openRawDatabase(filename)
    const total = db.prepare("SELECT count(*) FROM runtime_storage").pluck().get()
    db.close()
    return total
  }
  const pageCount = Math.min(EXPIRY_PAGES, Math.floor(big / 2 / PAGE_SIZE) - 1)
  for (let rep = 0; rep <= options.reps; rep++) {
    for (const side of rotated(["promise", "effect"], rep)) {
      for (const which of rep % 2 === 0 ? ["half", "live"] : ["live", "half"]) {
        const adapter = await openSide(side, files[which])
        // The sweeper's first run, at open, on the real clock.
        await adapter.countEach("user:", 1)
        await new Promise((resolve) => setTimeout(resolve, 50))
        Date.now = ahead
        try {
          const counted = await timed(() => adapter.countEach("user:", EXPIRY_COUNTS))
          const paged = await timed(() => adapter.pages("user:", pageCount, PAGE_SIZE))
          check(counted.result === big / 2, `${side} expiry count (${which}): ${counted.result}`)
          paged.result.forEach(({ keys }, p) => {
            keys.forEach((key, j) => {
              check(key === keyAt(2 * (p * PAGE_SIZE + j)), `${side} expiry page ${p} (${which}): ${key}`)
            })
          })
          if (rep > 0) {
            record(`expiry:count:${which}`, side, perOp(counted.ms, EXPIRY_COUNTS))
            record(`expiry:page:${which}`, side, perOp(paged.ms, pageCount))
          }
        } finally {
          Date.now = realNow
        }
        await adapter.close()
        check(rows(files[which]) === (which === "half" ? big : big / 2), `${side}: the sweeper ran during timing`)
      }
    }
    log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${options.reps}`}`)
  }
  // Then the sweeper's own cost: the time one client takes to delete the expired half, in batches, the event loop
  // free between them (as an app would leave it).
  const client = open({ filename: files.half, durability: "relaxed" })
  Date.now = ahead
  try {
    const started = performance.now()
    await client.size()
    const db = openRawDatabase(files.half)
    const left = db.prepare("SELECT count(*) FROM runtime_storage").pluck()
    while (left.get() > big / 2) await new Promise((resolve) => setTimeout(resolve, 1))
    record("expiry:sweep", "promise", performance.now() - started)
    db.close()
  } finally {
    Date.now = realNow
    await client.close()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Watch latency: from a write's commit in one process to its change arriving in another

const WATCH_CHANGES = options.verify ? 30 : 200

/**
 * A watcher process per library side; this process writes WATCH_CHANGES sets through the Promise API, each stamped
 * with the time just before it commits, a few milliseconds apart (as an app's writes come), and the watcher notes
 * when each arrives. Raw better-sqlite3 has no change feed: the goals are absolute (median ≤ 25 ms, p99 ≤ 100 ms).
 */
const runWatchLatency = async () => {
  const { open } = await import("../dist/promise.js")
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  for (let rep = 0; rep < options.memoryReps; rep++) {
    for (const side of rotated(["promise", "effect"], rep)) {
      const filename = path.join(tmp, `watch-${side}-${rep}.db`)
      const writer = open({ filename, durability: "relaxed" })
      await writer.set("created", true)
      const since = (await writer.getEntry("created")).version
      const child = spawn(
        process.execPath,
        [path.join(here, "watch-child.mjs"), side, filename, String(WATCH_CHANGES), since],
        { stdio: ["ignore", "pipe", "pipe"] }
      )
      let stdout = ""
      let stderr = ""
      child.stdout.setEncoding("utf8").on("data", (chunk) => {
        stdout += chunk
      })
      child.stderr.setEncoding("utf8").on("data", (chunk) => {
        stderr += chunk
      })
      const exited = new Promise((resolve) => child.on("exit", resolve))
      await writer.set("k", { warm: true }, { store: "latency" })
      while (!stdout.includes("ready\n")) {
        check(child.exitCode === null, `${side} watch child exited: ${stderr}`)
        await sleep(10)
      }
      for (let i = 0; i < WATCH_CHANGES; i++) {
        await writer.set("k", { i, at: performance.timeOrigin + performance.now() }, { store: "latency" })
        await sleep(2 + Math.random() * 8)
      }
      const code = await exited
      await writer.close()
      check(code === 0, `${side} watch child failed: ${stderr}`)
      const { latencies } = JSON.parse(stdout.slice(stdout.indexOf("ready\n") + 6))
      check(latencies.length === WATCH_CHANGES, `${side} watch child saw ${latencies.length} changes`)
      const sorted = [...latencies].sort((a, b) => a - b)
      record("watchMedian", side, sorted[Math.floor(sorted.length / 2)])
      record("watchP99", side, sorted[Math.ceil(sorted.length * 0.99) - 1])
    }
    log(`  rep ${rep + 1}/${options.memoryReps}`)
  }
}

const versionOf = (name) => {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version
  } catch {
    return "unknown"
  }
}

const commandLine = () => {
  const args = process.argv.slice(2).join(" ")
  if (process.env.npm_lifecycle_event === "bench") return `npm run bench${args === "" ? "" : ` -- ${args}`}`
  return `node bench/bench.mjs${args === "" ? "" : ` ${args}`}`
}

/** What every section of the benchmark works with (each imports the data and sides it needs itself). */
const section = { options, tmp, record, check, log, rotated }

const main = async () => {
  const started = performance.now()
  log(`runtime-storage benchmark: n=${n}, reps=${options.reps} (+1 warm-up), big=${big}, temp dir ${tmp}`)
  log("per-operation workloads (raw, Promise API, Effect API interleaved):")
  await runPerOperation()
  log(`keys()/entries() at ${big} keys (${bigReps} repetitions + 1 warm-up):`)
  await runBig()
  log(`peak memory of entries() at ${big} keys (${options.memoryReps} child process(es) per side):`)
  const memory = runMemory()
  log(`cold start (${options.coldReps} processes per side):`)
  runCold()
  log(`ranges: page, count and list on ${huge} keys (${options.reps} repetitions + 1 warm-up):`)
  await runRanges()
  log(`peak memory of streaming ${huge} entries (${options.memoryReps} child process(es) per side):`)
  const streamMemory = runStreamMemory()
  log(`command line: get (${options.coldReps} processes per side), export and import of ${huge} entries:`)
  runCli({
    options,
    tmp,
    rangesFile,
    huge,
    sampleIndex: rangeFirst,
    keyAt,
    valueAt,
    sameJson,
    record,
    check,
    log,
    rotated
  })
  log(`small keys next to 3 values of ${options.largeValueMb} MB (${options.reps} repetitions + 1 warm-up):`)
  await runLargeNeighbours()
  log(`binary values of 64 KB (${options.reps} repetitions + 1 warm-up):`)
  await runBinary()
  log(`expiry: count and pages of ${big} keys, half of them expired (${options.reps} repetitions + 1 warm-up):`)
  await runExpiry()
  log(`event-loop stalls of large calls at ${big} keys (${options.memoryReps} run(s) per side):`)
  await runStalls({
    options,
    tmp,
    size: big,
    makeKeys,
    makeValues,
    sameJson,
    record,
    check,
    log,
    rotated,
    sides: SIDES,
    openSide,
    gc
  })
  log(`watch latency across processes (${options.memoryReps} run(s) of ${WATCH_CHANGES} changes per side):`)
  await runWatchLatency()
  log(
    `cost as stores grow: get, has, set, remove, page at ${sizesOf(options)
      .map((size) => size.toLocaleString("en-US"))
      .join(", ")} keys:`
  )
  await runSizes(section)
  log(`strict durability: set with one fsync per write (${options.reps} repetitions + 1 warm-up):`)
  await runStrict(section)
  log(`PostgreSQL: the library against node-postgres on an embedded server (${options.reps} repetitions + 1 warm-up):`)
  await runPg(section)
  const seconds = (performance.now() - started) / 1000
  log(`done in ${seconds.toFixed(1)} s`)

  const cpus = os.cpus()
  const base = path.basename(options.out === "" ? "BENCHMARKS.md" : options.out, ".md")
  const chartNames = { ratios: `${base}-ratios.svg`, sizes: `${base}-sizes.svg` }
  const report = formatReport({
    chartNames,
    options,
    samples,
    memory,
    streamMemory,
    machine: {
      cpu: cpus[0]?.model.trim() ?? "unknown",
      cores: cpus.length,
      memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
      os: `${os.type()} ${os.release()} ${os.arch()}`
    },
    versions: {
      library: JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version,
      node: process.version,
      betterSqlite3: versionOf("better-sqlite3"),
      effect: versionOf("effect")
    },
    date: new Date().toISOString(),
    command: commandLine(),
    seconds
  })
  console.log(report.table)
  if (options.out !== "") {
    const file = path.resolve(root, options.out)
    fs.writeFileSync(file, report.markdown)
    log(`wrote ${path.relative(process.cwd(), file) || file}`)
    // The charts, next to the report that embeds them, from the same run.
    for (const [name, svg] of Object.entries(report.charts)) {
      const chart = path.join(path.dirname(file), chartNames[name])
      fs.writeFileSync(chart, svg)
      log(`wrote ${path.relative(process.cwd(), chart) || chart}`)
    }
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
