/**
 * runtime-storage: persistent key-value storage for applications, on SQLite (or PostgreSQL: `runtime-storage/pg`),
 * as an Effect service.
 *
 * @since 0.1.0
 */
export * from "./errors/StorageError.js"
export type { HistoryOptions } from "./internal/feed.js"
export {
  keyValueStoreConfig,
  layerKeyValueStoreConfig,
  layerMemoryConfig,
  layerSqlConfig,
  layerSqliteConfig,
  memoryConfig,
  sqlConfig,
  sqliteConfig
} from "./layers/Config.js"
export { type KeyValueStoreOptions, layerKeyValueStore } from "./layers/KeyValueStore.js"
export { layerMemory, layerMemoryWith, type MemoryOptions } from "./layers/Memory.js"
export { layerSql, type SqlOptions } from "./layers/Sql.js"
export { type Durability, layerSqlite, type SqliteOptions } from "./layers/Sqlite.js"
export {
  type Atomic,
  type Change,
  type CommitResult,
  type Entry,
  type Json,
  type JsonText,
  type JsonValue,
  type Page,
  type PageOptions,
  type ReadError,
  type ReadValueError,
  type RemoveError,
  type Selector,
  type SetManyEntries,
  type SetOptions,
  Storage,
  type StorageService,
  type StoredEntry,
  type StoreSummary,
  type UpdateError,
  type UpdateOptions,
  type WatchError,
  type WatchOptions,
  type WatchSelector,
  type WriteError
} from "./services/Storage.js"
export { forSchema, layerTyped, type TypedStore } from "./services/TypedStore.js"
