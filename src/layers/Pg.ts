/**
 * The backend on PostgreSQL: `layerPg` opens its own pool through `@effect/sql-pg` and runs `layerSql` on it.
 *
 * @since 0.6.0
 */

import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import pg from "pg"
import { DatabaseError } from "../errors/StorageError.js"
import { historyConfig } from "../internal/config.js"
import { openFailure } from "../internal/failure.js"
import type { HistoryOptions } from "../internal/feed.js"
import { describeServer } from "../internal/pg.js"
import { make, Storage } from "../services/Storage.js"
import { type EffectBackend, makeSqlBackend } from "./Sql.js"

/**
 * Options of {@link layerPg}: where the server is (a `url`, or its parts), the pool, and the library's own options.
 * A password is never part of an error message: give it in the URL or as `password`, plain or `Redacted`.
 *
 * @since 0.6.0
 */
export interface PgOptions {
  /** `postgres://user:password@host:port/database` (`?sslmode=…` and the other libpq parameters node-postgres reads). */
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** TLS: `true`, or node's `tls.ConnectionOptions`. */
  readonly ssl?: boolean | object | undefined
  /** The schema the tables live in (default `public`), created when missing. */
  readonly schema?: string | undefined
  /** The most connections the pool opens (default 10). */
  readonly maxConnections?: number | undefined
  /** How long to wait for a connection (default 5 seconds). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** The history the change feed keeps: see `SqliteOptions.history`. */
  readonly history?: HistoryOptions | undefined
}

const redacted = (value: string | Redacted.Redacted<string> | undefined): Redacted.Redacted<string> | undefined =>
  value === undefined ? undefined : Redacted.isRedacted(value) ? value : Redacted.make(value)

const checkUrl = (url: Redacted.Redacted<string> | undefined): Effect.Effect<void, DatabaseError> => {
  if (url === undefined) return Effect.void
  try {
    const parsed = new URL(Redacted.value(url))
    if (parsed.protocol === "postgres:" || parsed.protocol === "postgresql:") return Effect.void
    return Effect.fail(
      new DatabaseError({
        reason: `A PostgreSQL URL starts with postgres:// or postgresql://, not ${parsed.protocol}//`
      })
    )
  } catch {
    // The URL itself is never repeated: it may hold a password.
    return Effect.fail(new DatabaseError({ reason: "The PostgreSQL URL is not a valid URL" }))
  }
}

/**
 * A `Storage` on a PostgreSQL server, with a pool of its own (closed with the layer). The same service, with the
 * same semantics, as `layerSqlite`: every operation, versions and atomic commits, transactions, the change feed
 * across processes and machines (woken by `LISTEN/NOTIFY`), expiry. Building it connects, checks the database is
 * UTF-8 and migrates the schema (created when missing); it fails with `DatabaseError` (9005) when the server cannot
 * be reached or the password is refused.
 *
 * To use a `PgClient` the app already has, give it to `layerSql` instead.
 *
 * @since 0.6.0
 */
export const layerPg = (options: PgOptions = {}): Layer.Layer<Storage, DatabaseError> =>
  Layer.scoped(Storage, Effect.flatMap(pgBackend(options), make))

/**
 * The backend of {@link layerPg}, its pool open for as long as the scope lasts.
 *
 * @internal
 */
export const pgBackend = (options: PgOptions): Effect.Effect<EffectBackend, DatabaseError, Scope.Scope> =>
  Effect.gen(function* () {
    const url = redacted(options.url)
    yield* checkUrl(url)
    const server = describeServer(options)
    const password = redacted(options.password)
    const connectTimeout = options.connectTimeout === undefined ? 5000 : Duration.toMillis(options.connectTimeout)
    // The pool is made here rather than by PgClient.layer for one option: idle connections must not keep the
    // process alive (allowExitOnIdle), as nothing of this library does; a script that writes and ends, ends.
    const client = yield* Layer.build(
      PgClient.layerFromPool({
        acquire: Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              const pool = new pg.Pool({
                connectionString: url === undefined ? undefined : Redacted.value(url),
                host: options.host,
                port: options.port,
                database: options.database,
                user: options.username,
                password: password === undefined ? undefined : Redacted.value(password),
                ssl: options.ssl as pg.PoolConfig["ssl"],
                max: options.maxConnections ?? 10,
                connectionTimeoutMillis: connectTimeout,
                application_name: "runtime-storage",
                allowExitOnIdle: true
              })
              // A connection that fails while idle leaves the pool; the next call opens another.
              pool.on("error", () => undefined)
              try {
                await pool.query("SELECT 1")
              } catch (cause) {
                await pool.end().catch(() => undefined)
                throw cause
              }
              return pool
            },
            catch: (cause) => new SqlError({ cause, message: "Failed to connect" })
          }),
          (pool) => Effect.promise(() => pool.end()).pipe(Effect.timeoutOption(1000))
        ),
        applicationName: "runtime-storage"
      })
    ).pipe(Effect.mapError((cause) => openFailure(`Could not connect to ${server}`, undefined, cause)))
    return yield* Effect.provide(makeSqlBackend({ history: options.history, schema: options.schema }), client)
  })

/**
 * The options of `layerPg` from the environment (or the installed `ConfigProvider`), under `RUNTIME_STORAGE_`:
 *
 * | name | option |
 * | --- | --- |
 * | `RUNTIME_STORAGE_URL` | `url` (kept `Redacted`) |
 * | `RUNTIME_STORAGE_SCHEMA` | `schema` |
 * | `RUNTIME_STORAGE_MAX_CONNECTIONS` | `maxConnections` |
 * | `RUNTIME_STORAGE_CONNECT_TIMEOUT` | `connectTimeout`: a duration |
 * | `RUNTIME_STORAGE_HISTORY_CHANGES` | `history.changes` |
 * | `RUNTIME_STORAGE_HISTORY_MAX_AGE` | `history.maxAge`: a duration |
 *
 * @since 0.6.0
 */
export const pgConfig: Config.Config<PgOptions> = Config.nested(
  Config.map(
    Config.all({
      url: Config.redacted("URL"),
      schema: Config.option(Config.nonEmptyString("SCHEMA")),
      maxConnections: Config.option(Config.integer("MAX_CONNECTIONS")),
      connectTimeout: Config.option(Config.duration("CONNECT_TIMEOUT")),
      history: historyConfig
    }),
    ({ url, schema, maxConnections, connectTimeout, history }) => ({
      url,
      schema: Option.getOrUndefined(schema),
      maxConnections: Option.getOrUndefined(maxConnections),
      connectTimeout: Option.getOrUndefined(connectTimeout),
      history
    })
  ),
  "RUNTIME_STORAGE"
)

/**
 * `layerPg` with its options from `Config`: {@link pgConfig} (the environment's `RUNTIME_STORAGE_*`) unless given
 * another, a `Config` of the options or a record of a `Config` per option.
 *
 * @since 0.6.0
 */
export const layerPgConfig = (
  config: Config.Config.Wrap<PgOptions> = pgConfig
): Layer.Layer<Storage, DatabaseError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerPg))
