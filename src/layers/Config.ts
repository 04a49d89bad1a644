/**
 * The layers with their options read from Effect's `Config`: from the environment by default (`RUNTIME_STORAGE_*`),
 * or from any `ConfigProvider` an app installs, or from a `Config` the app builds itself.
 *
 * @since 0.4.0
 */
import type * as KeyValueStore from "@effect/platform/KeyValueStore"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { DatabaseError, InvalidKeyError } from "../errors/StorageError.js"
import { historyConfig } from "../internal/config.js"
import { defaultDatabasePath } from "../location.js"
import type { Storage } from "../services/Storage.js"
import { type KeyValueStoreOptions, layerKeyValueStore } from "./KeyValueStore.js"
import { layerMemoryWith, type MemoryOptions } from "./Memory.js"
import { layerSql, type SqlOptions } from "./Sql.js"
import { layerSqlite, type SqliteOptions } from "./Sqlite.js"

const FILENAME = "RUNTIME_STORAGE_FILENAME"
const APP = "RUNTIME_STORAGE_APP"

/**
 * The options of `layerSqlite` from the environment (or the installed `ConfigProvider`), under `RUNTIME_STORAGE_`:
 *
 * | name | option |
 * | --- | --- |
 * | `RUNTIME_STORAGE_FILENAME` | `filename` |
 * | `RUNTIME_STORAGE_APP` | instead of a filename: the platform's default location for that app |
 * | `RUNTIME_STORAGE_DURABILITY` | `durability`: `relaxed` or `strict` |
 * | `RUNTIME_STORAGE_BUSY_TIMEOUT` | `busyTimeout`: a duration (`"10 seconds"`) or milliseconds |
 * | `RUNTIME_STORAGE_HISTORY_CHANGES` | `history.changes` |
 * | `RUNTIME_STORAGE_HISTORY_MAX_AGE` | `history.maxAge`: a duration |
 *
 * Without `FILENAME` or `APP` it fails with a `ConfigError` naming both.
 *
 * @since 0.4.0
 */
export const sqliteConfig: Config.Config<SqliteOptions> = Config.nested(
  Config.mapOrFail(
    Config.all({
      filename: Config.option(Config.nonEmptyString("FILENAME")),
      app: Config.option(Config.nonEmptyString("APP")),
      durability: Config.option(Config.literal("relaxed", "strict")("DURABILITY")),
      busyTimeout: Config.option(Config.duration("BUSY_TIMEOUT")),
      history: historyConfig
    }),
    ({ filename, app, durability, busyTimeout, history }) => {
      const base = {
        durability: Option.getOrUndefined(durability),
        busyTimeout: Option.getOrUndefined(busyTimeout),
        history
      }
      if (Option.isSome(filename)) return Either.right({ ...base, filename: filename.value })
      if (Option.isNone(app)) {
        return Either.left(
          ConfigError.MissingData([], `Expected ${FILENAME} (a database file) or ${APP} (an app name) to be set`)
        )
      }
      try {
        return Either.right({ ...base, filename: defaultDatabasePath(app.value) })
      } catch (error) {
        return Either.left(ConfigError.InvalidData(["APP"], (error as InvalidKeyError).message))
      }
    }
  ),
  "RUNTIME_STORAGE"
)

/**
 * The options of `layerSql`: `RUNTIME_STORAGE_HISTORY_CHANGES` and `RUNTIME_STORAGE_HISTORY_MAX_AGE`, and on a
 * PostgreSQL client `RUNTIME_STORAGE_SCHEMA` (since 0.6.0).
 *
 * @since 0.4.0
 */
export const sqlConfig: Config.Config<SqlOptions> = Config.nested(
  Config.map(
    Config.all({ history: historyConfig, schema: Config.option(Config.nonEmptyString("SCHEMA")) }),
    ({ history, schema }) => ({ history, schema: Option.getOrUndefined(schema) })
  ),
  "RUNTIME_STORAGE"
)

/**
 * The options of `layerMemoryWith`: as {@link sqlConfig}.
 *
 * @since 0.4.0
 */
export const memoryConfig: Config.Config<MemoryOptions> = Config.nested(
  Config.map(historyConfig, (history) => ({
    history:
      history === undefined
        ? undefined
        : {
            changes: history.changes,
            maxAge: history.maxAge === undefined ? undefined : Duration.toMillis(history.maxAge)
          }
  })),
  "RUNTIME_STORAGE"
)

/**
 * The options of `layerKeyValueStore`: `RUNTIME_STORAGE_STORE`, the store (default `"default"`).
 *
 * @since 0.4.0
 */
export const keyValueStoreConfig: Config.Config<KeyValueStoreOptions> = Config.nested(
  Config.map(Config.option(Config.nonEmptyString("STORE")), (store) => ({ store: Option.getOrUndefined(store) })),
  "RUNTIME_STORAGE"
)

/**
 * `layerSqlite` with its options from `Config`: {@link sqliteConfig} (the environment's `RUNTIME_STORAGE_*`) unless
 * given another, which may be a `Config` of the options or a record of a `Config` per option.
 *
 * @since 0.4.0
 */
export const layerSqliteConfig = (
  config: Config.Config.Wrap<SqliteOptions> = sqliteConfig
): Layer.Layer<Storage, DatabaseError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerSqlite))

/**
 * `layerSql` with its options from `Config` ({@link sqlConfig} unless given another).
 *
 * @since 0.4.0
 */
export const layerSqlConfig = (
  config: Config.Config.Wrap<SqlOptions> = sqlConfig
): Layer.Layer<Storage, DatabaseError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerSql))

/**
 * `layerMemoryWith` with its options from `Config` ({@link memoryConfig} unless given another).
 *
 * @since 0.4.0
 */
export const layerMemoryConfig = (
  config: Config.Config.Wrap<MemoryOptions> = memoryConfig
): Layer.Layer<Storage, InvalidKeyError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerMemoryWith))

/**
 * `layerKeyValueStore` with its options from `Config` ({@link keyValueStoreConfig} unless given another).
 *
 * @since 0.4.0
 */
export const layerKeyValueStoreConfig = (
  config: Config.Config.Wrap<KeyValueStoreOptions> = keyValueStoreConfig
): Layer.Layer<KeyValueStore.KeyValueStore, ConfigError.ConfigError, Storage> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerKeyValueStore))
