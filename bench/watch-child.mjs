/**
 * The watching side of the watch-latency benchmark, in a process of its own: watches the store "latency" through the
 * Promise API (`watch`) or the Effect API (`Stream.runForEach(watch())`), and for each change notes how long after
 * its writer stamped it (just before committing it, in another process) it arrived. It watches since the version
 * the writer gives it, so it misses nothing however long it takes to start; the writer's first change is a warm-up
 * (`{ warm: true }`): when it arrives the child prints "ready", and only the changes after it are timed. After
 * `count` of them it prints one JSON line: { latencies: [ms, …] }.
 * Usage: node bench/watch-child.mjs <promise|effect> <filename> <count> <since>
 */
import { performance } from "node:perf_hooks"

const [side, filename, count, since] = process.argv.slice(2)
const expected = Number(count)
const now = () => performance.timeOrigin + performance.now()
const latencies = []
// A watch keeps no process alive by itself: this one holds a timer while it waits for its changes.
const alive = setInterval(() => undefined, 1 << 30)
const done = () => {
  clearInterval(alive)
  process.stdout.write(`${JSON.stringify({ latencies })}\n`)
}
/** Notes a change; true once the last one has come. */
const arrived = (value) => {
  if (value.warm === true) process.stdout.write("ready\n")
  else latencies.push(now() - value.at)
  return latencies.length === expected
}

if (side === "promise") {
  const { open } = await import("../dist/promise.js")
  const client = open({ filename, durability: "relaxed" })
  for await (const change of client.watch({ store: "latency" }, { since })) {
    if (arrived(change.value)) break
  }
  await client.close()
  done()
} else {
  const Effect = await import("effect/Effect")
  const Stream = await import("effect/Stream")
  const { layerSqlite, Storage } = await import("../dist/index.js")
  await Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(Storage, (storage) =>
        Stream.runForEach(Stream.take(storage.watch({ store: "latency" }, { since }), expected + 1), (change) =>
          Effect.sync(() => arrived(change.value))
        )
      ).pipe(Effect.provide(layerSqlite({ filename, durability: "relaxed" })))
    )
  )
  done()
}
