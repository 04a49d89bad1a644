/**
 * Export and import: newline-delimited JSON, one entry per line, `{"store","key","value"}` (a binary value as
 * `"bytes"`, base64; an expiring entry with `"expiresAt"`, ms since the epoch). Both stream, so memory stays
 * bounded however large the store; an import is one transaction.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import {
  GenericError,
  InvalidKeyError,
  isStorageError,
  SerializationError,
  type StorageError
} from "../errors/StorageError.js"
import { checkKey, resolveStore } from "../internal/validate.js"
import type { Json, JsonText, StorageService, StoredEntry } from "../services/Storage.js"
import { LineReader, progressBar, type Sink } from "./io.js"
import { JsonTextProblem, parseJsonExactly, textField } from "./text.js"

/**
 * One entry, its value as stored JSON text, as a line of an export. The text is spliced in only once it is known
 * to stay inside its field (see {@link staysInItsField}): text that a program other than this library wrote into
 * the database could otherwise break the line or add fields to it. Such a value fails as its read would (9006).
 */
export const exportLine = (store: string, entry: StoredEntry<JsonText>): string => {
  if (typeof entry.value === "string" && !staysInItsField(entry.value)) {
    throw new SerializationError({
      key: entry.key,
      store,
      path: "$",
      reason: "is stored as text that is not one JSON value"
    })
  }
  return lineOf(store, entry)
}

/**
 * Whether JSON text, spliced in as a field's value, stays in that field: no control character (no line break;
 * the serializer escapes them all), brackets balanced, strings closed, and no comma or colon outside them (which
 * could start another field). A scan that allocates nothing, a third of what JSON.parse costs; text that passes
 * but is still not JSON makes the whole line invalid JSON, which import refuses.
 */
export const staysInItsField = (text: string): boolean => {
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index)
    if (char < 0x20) return false
    if (inString) {
      if (char === 0x5c) index++
      else if (char === 0x22) inString = false
    } else if (char === 0x22) {
      inString = true
    } else if (char === 0x7b || char === 0x5b) {
      depth++
    } else if (char === 0x7d || char === 0x5d) {
      if (--depth < 0) return false
    } else if (depth === 0 && (char === 0x2c || char === 0x3a)) {
      return false
    }
  }
  return text.length > 0 && !inString && depth === 0
}

const lineOf = (store: string, entry: StoredEntry<JsonText>): string =>
  `{"store":${JSON.stringify(store)},"key":${JSON.stringify(entry.key)},${textField(entry.value)}${
    entry.expiresAt === null ? "" : `,"expiresAt":${entry.expiresAt}`
  }}\n`

/**
 * Writes the entries of the stores (under `prefix`) to the sink as export lines, store by store, each in key
 * order, read in bounded chunks. Returns how many it wrote.
 */
export const exportStores = (
  storage: StorageService,
  stores: ReadonlyArray<string>,
  prefix: string | undefined,
  sink: Sink,
  total: number
): Effect.Effect<number, StorageError> =>
  Effect.gen(function* () {
    const bar = progressBar("export", total, "entries")
    let written = 0
    for (const store of stores) {
      // Values as stored JSON text: spliced into the line as they are, never parsed and written again.
      yield* storage.list({ store, prefix }, { metadata: true, json: true }).pipe(
        Stream.runForEachChunk((chunk) => {
          let text = ""
          try {
            for (const entry of chunk) text += exportLine(store, entry)
          } catch (error) {
            return Effect.fail(error as StorageError)
          }
          written += chunk.length
          bar.tick(chunk.length, 0)
          return sink.write(text)
        })
      )
    }
    bar.end()
    return written
  })

/** What an import did. */
export interface Imported {
  readonly entries: number
  readonly stores: number
  readonly expired: number
}

/** An entry read from a line of an import. */
interface Line {
  readonly store: string
  readonly key: string
  readonly value: Json | Uint8Array
  readonly expiresAt: number | null
}

const FIELDS = new Set(["store", "key", "value", "bytes", "expiresAt"])
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Reads one line of an import, or throws the error that refuses it, naming its line. */
const readLine = (text: string, number: number, label: string, defaultStore: string): Line => {
  const where = `Line ${number} of ${label}`
  const refuse = (reason: string) => new InvalidKeyError({ reason: `${where}: ${reason}` })
  const parsed = parseJsonExactly(text)
  if (parsed instanceof JsonTextProblem && parsed.syntax) throw refuse(parsed.reason)
  if (parsed instanceof JsonTextProblem) {
    // A valid line whose value holds a number JSON cannot carry: read again (rounded) to name its key and store.
    const line = JSON.parse(text) as { readonly key?: unknown; readonly store?: unknown }
    throw new SerializationError({
      key: String(line.key),
      store: typeof line.store === "string" ? line.store : defaultStore,
      path: "$",
      reason: `(${where.toLowerCase()}) ${parsed.reason}`
    })
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw refuse('must be a JSON object such as {"key":"k","value":1}')
  }
  const fields = parsed as Readonly<Record<string, unknown>>
  for (const name of Object.keys(fields)) {
    if (!FIELDS.has(name))
      throw refuse(`unknown field ${JSON.stringify(name)} (a line has store, key, value or bytes, expiresAt)`)
  }
  const store = resolveStore({ store: fields.store ?? defaultStore })
  if (typeof store !== "string") throw refuse(store.message)
  const keyProblem = checkKey(fields.key)
  if (keyProblem !== undefined) throw refuse(keyProblem.message)
  const hasValue = Object.hasOwn(fields, "value")
  const hasBytes = Object.hasOwn(fields, "bytes")
  if (hasValue === hasBytes) throw refuse('needs exactly one of "value" (JSON) and "bytes" (base64)')
  let value: Json | Uint8Array
  if (hasBytes) {
    const bytes = fields.bytes
    if (typeof bytes !== "string" || bytes.length % 4 !== 0 || !BASE64.test(bytes)) {
      throw refuse('"bytes" must be a base64 string')
    }
    value = new Uint8Array(Buffer.from(bytes, "base64"))
  } else {
    value = fields.value as Json
  }
  const expiresAt = fields.expiresAt ?? null
  if (expiresAt !== null && (typeof expiresAt !== "number" || !Number.isSafeInteger(expiresAt) || expiresAt < 0)) {
    throw refuse('"expiresAt" must be a time in milliseconds since the epoch, or null')
  }
  return { store, key: fields.key as string, value, expiresAt }
}

/** A clock stopped at `at`: a write run on it records `at` as its time. */
const stoppedAt = (at: number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => at,
  currentTimeMillis: Effect.succeed(at),
  unsafeCurrentTimeNanos: () => BigInt(at) * 1_000_000n,
  currentTimeNanos: Effect.succeed(BigInt(at) * 1_000_000n),
  sleep: (duration) => Effect.sleep(duration).pipe(Effect.withClock(Clock.make()))
})

/**
 * Writes an entry that expires at `expiresAt` exactly (`expireIn` counts from the write's time, which is read from
 * the Clock: it is stopped at the moment `expireIn` is computed from). Writes nothing and returns false when that
 * time has passed: the entry would read as absent anyway.
 */
export const setExpiring = (
  storage: StorageService,
  key: string,
  value: unknown,
  store: string,
  expiresAt: number
): Effect.Effect<boolean, StorageError> =>
  Effect.suspend(() => {
    const now = Date.now()
    if (expiresAt <= now) return Effect.succeed(false)
    return storage
      .set(key, value, { store, expireIn: expiresAt - now })
      .pipe(Effect.withClock(stoppedAt(now)), Effect.as(true))
  })

/** Entries written per call: large enough to cost little per entry, small enough to hold little memory. */
const BATCH = 1000

/**
 * Imports the lines of a file (or stdin) in one transaction: every entry, or (a refused line, a failed write)
 * none. Lines are written in order (a key given twice keeps its last value); an entry whose `expiresAt` has
 * passed is not written (it would read as absent anyway) and is counted.
 */
export const importLines = (
  storage: StorageService,
  source: string,
  defaultStore: string,
  label = source
): Effect.Effect<Imported, StorageError> =>
  Effect.suspend(() => {
    const reader = new LineReader(source, label)
    const bar = progressBar("import", reader.total, "bytes")
    const stores = new Set<string>()
    let entries = 0
    let expired = 0
    let number = 0
    return storage
      .transaction((tx) =>
        Effect.gen(function* () {
          // Entries without expiry wait here, by store, to be written together.
          let pending = new Map<string, Array<readonly [string, unknown]>>()
          let pendingCount = 0
          const flush = Effect.suspend(() => {
            const batches = pending
            pending = new Map()
            pendingCount = 0
            return Effect.forEach(batches, ([store, batch]) => tx.setMany(batch, { store }), { discard: true })
          })
          while (true) {
            const lines = yield* Effect.tryPromise({
              try: () => reader.next(),
              catch: (cause) =>
                isStorageError(cause)
                  ? cause
                  : new GenericError({ reason: `Could not read ${label}: ${(cause as Error).message}`, cause })
            })
            if (lines === undefined) break
            let count = 0
            for (const text of lines) {
              number++
              if (text.trim() === "") continue
              const line = yield* Effect.try({
                try: () => readLine(text, number, label, defaultStore),
                catch: (error) => error as StorageError
              })
              count++
              stores.add(line.store)
              if (line.expiresAt === null) {
                const batch = pending.get(line.store)
                if (batch === undefined) pending.set(line.store, [[line.key, line.value]])
                else batch.push([line.key, line.value])
                if (++pendingCount >= BATCH) yield* flush
                continue
              }
              // In order: what waits is written first.
              yield* flush
              if (!(yield* setExpiring(tx, line.key, line.value, line.store, line.expiresAt))) {
                // Already expired: absent, as it would read; an earlier line's value for the key goes too.
                expired++
                yield* tx.remove(line.key, { store: line.store })
              }
            }
            entries += count
            bar.tick(count, reader.bytes)
          }
          yield* flush
        })
      )
      .pipe(
        Effect.ensuring(Effect.sync(() => bar.end())),
        Effect.map(() => ({ entries: entries - expired, stores: stores.size, expired }))
      )
  })
