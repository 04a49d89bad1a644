import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { layerSqlite, Storage } from "runtime-storage"

const program = Effect.gen(function* () {
  const storage = yield* Storage
  yield* storage.set("theme", "dark", { store: "settings" })
  yield* storage.setMany({ recent_files: ["/notes.md"], window_state: { width: 800, height: 600 } })
  const theme = yield* storage.get("theme", { store: "settings" })
  const missing = yield* storage.get("nothing-here").pipe(Effect.map(Option.getOrElse(() => "default")))
  const everything = yield* storage.entries()
  return { theme: Option.getOrNull(theme), missing, everything }
}).pipe(
  // A refused value is a typed, coded error: SerializationError (9006) here.
  Effect.catchTag("SerializationError", (error) => Effect.die(error))
)

export const main = (filename: string) => program.pipe(Effect.provide(layerSqlite({ filename })))
