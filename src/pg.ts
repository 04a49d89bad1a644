/**
 * runtime-storage on PostgreSQL: `layerPg`, the same `Storage` service on a PostgreSQL server. An entry of its own,
 * so apps on SQLite never load the PostgreSQL driver. (`layerSql`, in the main entry, also takes an app's own
 * `PgClient`.)
 *
 * @since 0.6.0
 */
export { layerPg, layerPgConfig, type PgOptions, pgConfig } from "./layers/Pg.js"
