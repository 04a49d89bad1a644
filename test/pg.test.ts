import * as Layer from "effect/Layer"
import { inject } from "vitest"
import { layerPg } from "../src/pg.js"
import { conformance } from "../src/testing/vitest.js"

let schemas = 0
/** A schema of its own per layer: each layer starts on empty tables. */
const freshSchema = (): string => `t${process.pid}_${++schemas}_${Date.now().toString(36)}`
const url = inject("pgUrl")

conformance(
  "layerPg",
  Layer.suspend(() => layerPg({ url, schema: freshSchema() })),
  {
    withHistory: (history) => Layer.suspend(() => layerPg({ url, schema: freshSchema(), history }))
  }
)
