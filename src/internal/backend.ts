/**
 * What a backend provides: the few primitives every operation of the service is derived from. A backend sees
 * only validated keys and store names and the JSON text made by the serializer; it never validates, serializes
 * or orders results of `getMany` itself, so these rules cannot differ between backends.
 */
import type * as Effect from "effect/Effect"
import type { DatabaseError, ReadFailedError, WriteFailedError } from "../errors/StorageError.js"

/** The failures of a backend read. */
export type ReadFailure = ReadFailedError | DatabaseError
/** The failures of a backend write. */
export type WriteFailure = WriteFailedError | DatabaseError

/** A stored key with its JSON text. */
export type Row = readonly [key: string, text: string]

export interface Backend {
  /** The JSON text of a key, or `undefined`. */
  readonly get: (store: string, key: string) => Effect.Effect<string | undefined, ReadFailure>
  /** The rows of the given (distinct) keys that exist, in any order. */
  readonly getMany: (store: string, keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Row>, ReadFailure>
  readonly has: (store: string, key: string) => Effect.Effect<boolean, ReadFailure>
  /** All keys of the store, in ascending code point order. */
  readonly keys: (store: string) => Effect.Effect<ReadonlyArray<string>, ReadFailure>
  /** All rows of the store, in ascending code point order of the key. */
  readonly entries: (store: string) => Effect.Effect<ReadonlyArray<Row>, ReadFailure>
  /** Total UTF-8 bytes of the stored JSON texts of the store. */
  readonly size: (store: string) => Effect.Effect<number, ReadFailure>
  /** Inserts or overwrites the rows (distinct keys): all of them or, on failure, none. */
  readonly setMany: (store: string, rows: ReadonlyArray<Row>) => Effect.Effect<void, WriteFailure>
  /** Removes the (distinct) keys, all or none, and returns how many existed. */
  readonly deleteMany: (store: string, keys: ReadonlyArray<string>) => Effect.Effect<number, WriteFailure>
  readonly clear: (store: string) => Effect.Effect<void, WriteFailure>
  /**
   * Reads a key and writes what `f` makes of its text, in one transaction that holds the write lock from its
   * start, so no other writer can come in between. When `f` returns an error instead of a text, nothing is
   * written and the effect fails with it. Returns the written text.
   */
  readonly update: <E extends object>(
    store: string,
    key: string,
    f: (text: string | undefined) => string | E
  ) => Effect.Effect<string, WriteFailure | E>
}
