/**
 * `@effect/platform`'s `KeyValueStore` on runtime-storage: Effect code written against that interface (and
 * `@effect/experimental`'s persistence on it) stores its data in a runtime-storage store.
 *
 * @since 0.4.0
 */
import * as PlatformError from "@effect/platform/Error"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { StorageError } from "../errors/StorageError.js"
import { type Json, Storage } from "../services/Storage.js"

/**
 * Options of {@link layerKeyValueStore}.
 *
 * @since 0.4.0
 */
export interface KeyValueStoreOptions {
  /** The store the `KeyValueStore` reads and writes: `"default"` when absent. */
  readonly store?: string | undefined
}

const encoder = new TextEncoder()

/** What `get` gives for a stored value: a string as it is, bytes as base64 (as `KeyValueStore.layerMemory` does). */
const asString = (value: Json): string =>
  value instanceof Uint8Array ? Encoding.encodeBase64(value) : typeof value === "string" ? value : JSON.stringify(value)

/** What `getUint8Array` gives: bytes as they are, a string as its UTF-8 bytes. */
const asBytes = (value: Json): Uint8Array =>
  value instanceof Uint8Array ? value : encoder.encode(typeof value === "string" ? value : JSON.stringify(value))

/**
 * The library's error as a `PlatformError`, keeping it as `cause`: a refused key is a `BadArgument`; a value that
 * cannot be stored or read is `InvalidData`, a busy database `Busy`, anything else `Unknown`.
 */
const toPlatformError =
  (method: string) =>
  (error: StorageError): PlatformError.PlatformError => {
    const description = `${error._tag} (${error.code}): ${error.message}`
    if (error._tag === "InvalidKey") {
      return new PlatformError.BadArgument({ module: "KeyValueStore", method, description, cause: error })
    }
    const busy =
      "sqliteCode" in error && typeof error.sqliteCode === "string" && error.sqliteCode.startsWith("SQLITE_BUSY")
    return new PlatformError.SystemError({
      module: "KeyValueStore",
      method,
      reason: error._tag === "SerializationError" ? "InvalidData" : busy ? "Busy" : "Unknown",
      description,
      cause: error
    })
  }

/**
 * Provides `@effect/platform`'s `KeyValueStore` backed by the `Storage` in context, on one named store. It behaves
 * as Effect's own `KeyValueStore.layerMemory` does: strings and `Uint8Array`s are stored as they are; `get` gives
 * bytes as base64 and `getUint8Array` a string as its UTF-8 bytes; `size` is the number of keys; `forSchema` and
 * `KeyValueStore.prefix` work as on any `KeyValueStore`. `modify` (and `modifyUint8Array`) is atomic, one
 * `update`: concurrent modifies from other fibers or processes are never lost. The store's entries are the library's
 * own, so the `Storage` service (a watch, a page, the CLI) sees them too; keys follow its rules (non-empty,
 * well-formed, at most 2048 UTF-8 bytes): another key fails with `BadArgument`. Every failure is a `PlatformError`
 * whose `cause` is the library's coded error.
 *
 * @since 0.4.0
 */
export const layerKeyValueStore = (
  options?: KeyValueStoreOptions
): Layer.Layer<KeyValueStore.KeyValueStore, never, Storage> =>
  Layer.effect(
    KeyValueStore.KeyValueStore,
    Effect.map(Storage, (storage) => {
      const at = { store: options?.store }
      const modifyWith =
        <A extends string | Uint8Array>(method: string, view: (value: Json) => A) =>
        (key: string, f: (value: A) => A): Effect.Effect<Option.Option<A>, PlatformError.PlatformError> =>
          storage
            .update(key, (current) => f(view(current)), at)
            .pipe(
              Effect.map((written) => Option.some(view(written))),
              Effect.catchTag("NotFound", () => Effect.succeedNone),
              Effect.mapError(toPlatformError(method))
            )
      return KeyValueStore.make({
        get: (key) =>
          storage.get(key, at).pipe(Effect.map(Option.map(asString)), Effect.mapError(toPlatformError("get"))),
        getUint8Array: (key) =>
          storage.get(key, at).pipe(Effect.map(Option.map(asBytes)), Effect.mapError(toPlatformError("getUint8Array"))),
        set: (key, value) => storage.set(key, value, at).pipe(Effect.mapError(toPlatformError("set"))),
        remove: (key) => storage.remove(key, at).pipe(Effect.asVoid, Effect.mapError(toPlatformError("remove"))),
        clear: storage.clear(at).pipe(Effect.mapError(toPlatformError("clear"))),
        size: storage.count(at).pipe(Effect.mapError(toPlatformError("size"))),
        has: (key) => storage.has(key, at).pipe(Effect.mapError(toPlatformError("has"))),
        modify: modifyWith("modify", asString),
        modifyUint8Array: modifyWith("modifyUint8Array", asBytes)
      })
    })
  )
