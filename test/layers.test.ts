import * as path from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Layer from "effect/Layer"
import { layerMemory, layerMemoryWith, layerSql, layerSqlite } from "../src/index.js"
import { conformance } from "../src/testing/vitest.js"
import { tempDir } from "./support.js"

const dir = tempDir()
let files = 0
const freshFile = (): string => path.join(dir, `history-${++files}`, "storage.db")

conformance("layerMemory", layerMemory, { withHistory: (history) => layerMemoryWith({ history }) })
conformance("layerSqlite in memory", layerSqlite({ filename: ":memory:" }), {
  withHistory: (history) => layerSqlite({ filename: ":memory:", history })
})
conformance("layerSqlite on a file", layerSqlite({ filename: path.join(dir, "nested", "dir", "storage.db") }), {
  withHistory: (history) => layerSqlite({ filename: freshFile(), history })
})
conformance(
  "layerSql on @effect/sql-sqlite-node",
  layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))),
  { withHistory: (history) => layerSql({ history }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))) }
)
