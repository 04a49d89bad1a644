/**
 * What a backend provides: the few primitives every operation of the service is derived from. A backend sees
 * only validated keys and store names and the JSON text made by the serializer; it never validates, serializes
 * or orders results of `getMany` itself, so these rules cannot differ between backends.
 *
 * A backend is synchronous (its primitives return values and throw the library's errors: better-sqlite3 and
 * memory) or effectful (its primitives are effects: any `SqlClient`). The operations are written once, as programs
 * over these primitives, and run by either kind.
 */
import type * as Effect from "effect/Effect"
import type { StorageError } from "../errors/StorageError.js"

/** A stored key with its JSON text. */
export type Row = readonly [key: string, text: string]

/** The primitives, in their synchronous form. They throw `ReadFailed`, `WriteFailed` or `DatabaseError`. */
export interface Primitives {
  /** The JSON text of a key, or `undefined`. */
  readonly get: (store: string, key: string) => string | undefined
  /** The rows of the given (distinct) keys that exist, in any order. */
  readonly getMany: (store: string, keys: ReadonlyArray<string>) => ReadonlyArray<Row>
  readonly has: (store: string, key: string) => boolean
  /** All keys of the store, in ascending code point order. */
  readonly keys: (store: string) => ReadonlyArray<string>
  /** All rows of the store, in ascending code point order of the key. */
  readonly entries: (store: string) => ReadonlyArray<Row>
  /** Total UTF-8 bytes of the stored JSON texts of the store. */
  readonly size: (store: string) => number
  /** Inserts or overwrites the rows (distinct keys): all of them or, on failure, none. */
  readonly setMany: (store: string, rows: ReadonlyArray<Row>) => void
  /** Removes the (distinct) keys, all or none, and returns how many existed. */
  readonly deleteMany: (store: string, keys: ReadonlyArray<string>) => number
  readonly clear: (store: string) => void
  /**
   * Reads a key and writes what `f` makes of its text, in one transaction that holds the write lock from its
   * start, so no other writer can come in between. When `f` returns an error instead of a text, nothing is
   * written and the error is the failure. Returns the written text.
   */
  readonly update: (store: string, key: string, f: (text: string | undefined) => string | StorageError) => string
}

/** The primitives as effects. */
export type EffectPrimitives = {
  readonly [K in keyof Primitives]: (
    ...args: Parameters<Primitives[K]>
  ) => Effect.Effect<ReturnType<Primitives[K]>, StorageError>
}

/** A backend: synchronous or effectful primitives. */
export type Backend =
  | { readonly _tag: "Sync"; readonly primitives: Primitives }
  | { readonly _tag: "Effect"; readonly primitives: EffectPrimitives }
