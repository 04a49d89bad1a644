/**
 * Cost as stores grow: get, has, set, remove and a 100-key page at several store sizes (10,000, 100,000 and
 * 1,000,000 keys; the quick pass 1,000 and 10,000), for the Promise API and raw better-sqlite3, each on a database of
 * its own holding the same keys and values. The goal:
 * at the largest size, each operation's ratio to raw is within 1.2x of its ratio at the smallest.
 */
import * as path from "node:path"
import { keyAt, makeKeys, makeValues, sameJson, valueAt } from "./data.mjs"
import { openSide } from "./sides.mjs"

export const SIZE_OPERATIONS = ["get", "has", "set", "remove", "page"]

/** The store sizes of a run. */
export const sizesOf = (options) =>
  options.verify ? [1000, 2000] : options.quick ? [1000, 10_000] : [10_000, 100_000, 1_000_000]

/** The measure a size's operation is recorded under. */
export const sizeMeasure = (operation, size) => `size:${operation}:${size}`

const PAGE_SIZE = 100
// Every size's pages read the same keys (the prefix "user:000" selects user:0000000 … user:0009999): what grows is
// only the store around them.
const PREFIX = "user:000"

export const runSizes = async ({ options, tmp, record, check, log, rotated }) => {
  const N = options.verify ? 50 : options.quick ? 200 : 2000
  for (const size of sizesOf(options)) {
    // Each side writes its own database of `size` keys (raw's table has no change log and takes no version).
    const started = performance.now()
    const keys = makeKeys(size)
    const values = makeValues(size)
    const sides = {}
    // Then closed and opened again, as an app opens a store of that size: the measures start with no checkpoint of
    // the fill still running beside them (the library's runs on a worker thread, raw's ran inside its commits).
    for (const side of ["raw", "promise"]) {
      const filename = path.join(tmp, `size-${size}-${side}.db`)
      const filling = await openSide(side, filename)
      await filling.fill(keys, values)
      await filling.close()
      sides[side] = await openSide(side, filename)
    }
    log(
      `  ${size.toLocaleString("en-US")} keys written per side in ${((performance.now() - started) / 1000).toFixed(1)} s`
    )
    const pages = Math.min(options.quick ? 5 : 50, Math.floor(Math.min(size, 10_000) / PAGE_SIZE) - 1)
    // Keys spread over the whole store, so a larger store is read across more of its pages.
    const readKeys = Array.from({ length: N }, (_, i) => keyAt((i * 7919) % size))
    const readValues = readKeys.map((_, i) => valueAt((i * 7919) % size))
    for (let rep = 0; rep <= options.reps; rep++) {
      for (const side of rotated(["raw", "promise"], rep)) {
        const a = sides[side]
        const newKeys = Array.from({ length: N }, (_, i) => `new:${side}:${rep}:${String(i).padStart(5, "0")}`)
        const newValues = makeValues(N)
        const timed = async (f) => {
          const start = performance.now()
          const result = await f()
          return [((performance.now() - start) * 1000) / N, result]
        }
        const [get, got] = await timed(() => a.getEach(readKeys))
        check(
          got.every((value, i) => sameJson(value, readValues[i])),
          `sizes ${size} ${side} get: a wrong value`
        )
        const [has, present] = await timed(() => a.hasEach(readKeys))
        check(
          present.every((value) => value === true),
          `sizes ${size} ${side} has: a key missing`
        )
        const [set] = await timed(() => a.setEach(newKeys, newValues))
        const [remove, removed] = await timed(() => a.removeEach(newKeys))
        check(
          removed.every((value) => value === true),
          `sizes ${size} ${side} remove: a key missing`
        )
        const start = performance.now()
        const read = await a.pages(PREFIX, pages, PAGE_SIZE)
        const page = ((performance.now() - start) * 1000) / pages
        read.forEach(({ keys }, p) => {
          check(keys.length === PAGE_SIZE && keys[0] === keyAt(p * PAGE_SIZE), `sizes ${size} ${side} page ${p}`)
        })
        if (rep === 0) continue
        for (const [operation, value] of Object.entries({ get, has, set, remove, page })) {
          record(sizeMeasure(operation, size), side, value)
        }
      }
    }
    for (const side of Object.values(sides)) await side.close()
    log(`  ${size.toLocaleString("en-US")}: done`)
  }
}
