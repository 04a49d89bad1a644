// Cold start, the baseline of the Effect entry's: an app that already imports effect (what it needs to run an
// effect and print) and does nothing with storage. Timed as a whole process.
// Usage: node bench/cold-effect-base.mjs <expected text>
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

const [text] = process.argv.slice(2)
await Effect.runPromise(
  Effect.provide(
    Effect.sync(() => console.log(Option.getOrElse(Option.some(text), () => ""))),
    Layer.empty
  )
)
