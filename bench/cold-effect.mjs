// Cold start, Effect API: open an existing database, read one key, print it. Timed as a whole process.
// Usage: node bench/cold-effect.mjs <filename> <key>
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { layerSqlite, Storage } from "../dist/index.js"

const [filename, key] = process.argv.slice(2)
const program = Effect.gen(function* () {
  const storage = yield* Storage
  const value = yield* storage.get(key)
  console.log(JSON.stringify(Option.getOrNull(value)))
})
await Effect.runPromise(program.pipe(Effect.provide(layerSqlite({ filename, durability: "relaxed" }))))
