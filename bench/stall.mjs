/**
 * Event-loop stalls: how long each large call keeps the caller's event loop from running anything else. A 1 ms
 * interval timer runs beside the call; the longest gap between two of its ticks (less the 1 ms it waits) is the
 * longest stall. Raw better-sqlite3 is synchronous: its stall is its whole call. Goal (issue 14): no call of either
 * API stalls the loop for more than 16 ms (a frame at 60 Hz).
 */
import * as path from "node:path"
import { performance } from "node:perf_hooks"

/**
 * Runs `f` with the probe beside it: its time and the longest stall, both in ms. `gc` first, as before every timed
 * section, so the garbage of what ran before is not collected (and counted as a stall) on this call's time.
 */
const probed = async (gc, f) => {
  gc()
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last - 1)
    last = now
  }, 1)
  const start = performance.now()
  const result = await f()
  const end = performance.now()
  clearInterval(timer)
  longest = Math.max(longest, end - last - 1)
  return { ms: end - start, stall: Math.max(0, longest), result }
}

/** The workloads, in order; each leaves the store as the next expects. `size`: keys of the large store. */
export const STALL_WORKLOADS = (size) => [
  ["setMany", `setMany of ${size.toLocaleString("en-US")} new entries`],
  ["getMany", `getMany of ${Math.min(10_000, size).toLocaleString("en-US")} keys`],
  ["entries", `entries() of ${size.toLocaleString("en-US")}`],
  ["list", `list() of ${size.toLocaleString("en-US")}, streamed`],
  ["count", `count of ${size.toLocaleString("en-US")}`],
  ["page", `page of 100 among ${size.toLocaleString("en-US")}`],
  ["deleteMany", `deleteMany of ${size.toLocaleString("en-US")} keys`],
  ["clear", `clear of a ${size.toLocaleString("en-US")}-key store`],
  ["import", `import: a transaction of ${(size / 1000).toLocaleString("en-US")} setMany of 1,000`]
]

/**
 * Runs the large calls on each side, on a database of its own per repetition. `ctx`: { options, tmp, size,
 * makeKeys, makeValues, sameJson, valueAt, record, check, log, rotated, sides, openSide, gc }.
 */
export const runStalls = async (ctx) => {
  const { options, tmp, size, record, check, log, rotated, sides, openSide, gc } = ctx
  const keys = ctx.makeKeys(size)
  const values = ctx.makeValues(size)
  const pairs = keys.map((key, i) => [key, values[i]])
  const few = keys.slice(0, Math.min(10_000, size))
  const batches = []
  for (let start = 0; start < size; start += 1000) batches.push(pairs.slice(start, start + 1000))
  const middle = Math.floor(size / 2)
  for (let rep = 0; rep < options.memoryReps; rep++) {
    for (const side of rotated(sides, rep)) {
      const api = await openSide(side, path.join(tmp, `stall-${side}-${rep}.db`))
      const measure = async (name, f, verify) => {
        const { ms, stall, result } = await probed(gc, f)
        verify(result)
        record(`stall:${name}:time`, side, ms)
        record(`stall:${name}:stall`, side, stall)
      }
      await measure(
        "setMany",
        () => api.setMany(pairs),
        () => undefined
      )
      await measure(
        "getMany",
        () => api.getManyEach([few]),
        ([map]) => {
          check(map.size === few.length, `${side} stall getMany: ${map.size} values`)
          check(ctx.sameJson(map.get(keys[0]), values[0]), `${side} stall getMany: wrong value`)
        }
      )
      await measure(
        "entries",
        () => api.entries(),
        (entries) => {
          check(entries.length === size, `${side} stall entries: ${entries.length}`)
          check(ctx.sameJson(entries[middle].value, values[middle]), `${side} stall entries: wrong value`)
        }
      )
      let streamed = 0
      await measure(
        "list",
        () => api.stream(() => streamed++),
        () => check(streamed === size, `${side} stall list: ${streamed}`)
      )
      await measure(
        "count",
        () => api.countEach("user:", 1),
        (n) => check(n === size, `${side} stall count: ${n}`)
      )
      await measure(
        "page",
        () => api.pages("user:", 1, 100),
        ([page]) => check(page.keys.length === 100 && page.keys[0] === keys[0], `${side} stall page`)
      )
      await measure(
        "deleteMany",
        () => api.deleteManyEach([keys]),
        ([removed]) => check(removed === size, `${side} stall deleteMany: ${removed}`)
      )
      await api.setMany(pairs)
      await measure(
        "clear",
        () => api.clear(),
        () => undefined
      )
      check((await api.keys()).length === 0, `${side} stall clear left keys`)
      await measure(
        "import",
        () => api.importBatches(batches),
        () => undefined
      )
      check((await api.keys()).length === size, `${side} stall import: wrong count`)
      await api.close()
    }
    log(`  rep ${rep + 1}/${options.memoryReps}`)
  }
}
