import * as fs from "node:fs"
import * as path from "node:path"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { main } from "../examples/effect.js"
import { tempDir } from "./support.js"

const readme = fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")

it("the README shows the Effect example exactly as it is tested", () => {
  const example = fs.readFileSync(new URL("../examples/effect.ts", import.meta.url), "utf8")
  expect(readme).toContain(example.trim())
})

it.effect("the README's Effect example runs and returns what it stored", () =>
  Effect.gen(function* () {
    const result = yield* main(path.join(tempDir(), "example", "storage.db"))
    expect(result).toEqual({
      theme: "dark",
      missing: "default",
      everything: [
        { key: "recent_files", value: ["/notes.md"] },
        { key: "window_state", value: { width: 800, height: 600 } }
      ]
    })
  })
)
