import * as path from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Layer from "effect/Layer"
import { layerMemory, layerSql, layerSqlite } from "../src/index.js"
import { conformance } from "./conformance.js"
import { tempDir } from "./support.js"

conformance("layerMemory", layerMemory)
conformance("layerSqlite in memory", layerSqlite({ filename: ":memory:" }))
conformance("layerSqlite on a file", layerSqlite({ filename: path.join(tempDir(), "nested", "dir", "storage.db") }))
conformance(
  "layerSql on @effect/sql-sqlite-node",
  layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
)
