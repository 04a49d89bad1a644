import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { inject } from "vitest"
import { Storage } from "../src/index.js"
import { layerPg } from "../src/pg.js"
import * as storage from "../src/promise.js"
import { conformance } from "../src/testing/vitest.js"
import { adapt } from "./promise-adapter.js"
import { systemTime } from "./support.js"

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

/** A Promise API client on the test server, in a fresh schema, as a Storage layer (closed with it). */
const pgClientLayer = (options: Omit<storage.OpenOptions, "url" | "schema"> = {}) =>
  Layer.scoped(
    Storage,
    Effect.acquireRelease(
      Effect.sync(() => storage.open({ ...options, url, schema: freshSchema() })),
      (client) => Effect.promise(() => client.close())
    ).pipe(Effect.map(adapt))
  )

conformance("the Promise API on PostgreSQL (open({ url }))", pgClientLayer(), {
  withHistory: (history) => pgClientLayer({ history }),
  time: systemTime()
})
