/**
 * The rules for keys, store names and call arguments, shared by every backend. Everything here runs before any
 * SQL does.
 */
import { InvalidKeyError, isStorageError } from "../errors/StorageError.js"
import { quote } from "./quote.js"

/** The longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 2048
/** The longest store name, in UTF-8 bytes. */
export const MAX_STORE_BYTES = 256
/** The store used when a call names none. */
export const DEFAULT_STORE = "default"

/** How a value is named in an error message: its type, and its value when that is short. */
export const describeType = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  switch (typeof value) {
    case "undefined":
      return "undefined"
    case "number":
      return `the number ${String(value)}`
    case "bigint":
      return `the bigint ${String(value)}n`
    case "boolean":
      return `the boolean ${String(value)}`
    case "symbol":
      return "a symbol"
    case "function":
      return "a function"
    default:
      return "an object"
  }
}

/** Why `value` is not a valid name of the given kind and limit, or `undefined` when it is valid. */
const nameProblem = (value: unknown, what: string, maxBytes: number): string | undefined => {
  if (typeof value !== "string") return `${what} must be a string, got ${describeType(value)}`
  if (value.length === 0) return `${what} must not be empty`
  return textProblem(value, what, maxBytes)
}

/**
 * Why a string is not well-formed or longer than `maxBytes` UTF-8 bytes, or `undefined` when it is fine: the rule
 * for keys and store names, and for the bounds of a selector (which may be empty).
 */
export const textProblem = (value: string, what: string, maxBytes: number): string | undefined => {
  if (!value.isWellFormed()) {
    return `${what} ${quote(value)} contains a lone surrogate (it is not well-formed UTF-16 and cannot be stored as UTF-8)`
  }
  // A UTF-16 code unit takes at most 3 UTF-8 bytes, so short strings need no count.
  if (value.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(value, "utf8")
    if (bytes > maxBytes) return `${what} ${quote(value)} is ${bytes} UTF-8 bytes long; the limit is ${maxBytes}`
  }
  return undefined
}

/** Checks a key. */
export const checkKey = (key: unknown): InvalidKeyError | undefined => {
  const problem = nameProblem(key, "A key", MAX_KEY_BYTES)
  return problem === undefined ? undefined : new InvalidKeyError({ reason: problem })
}

/**
 * The error for a caller's object (a getter, a proxy, an iterator) that threw while a check read it, with the thrown
 * value as `cause`; the library's own errors (a refusal thrown from a setMany entry) are rethrown as they are.
 */
export const unreadable = (what: string, cause: unknown): InvalidKeyError => {
  if (isStorageError(cause)) throw cause
  const detail = cause instanceof Error ? `: ${cause.message}` : ""
  return new InvalidKeyError({ reason: `${what} could not be read, it threw${detail}`, cause })
}

/** Resolves the store of a call's options, or tells why the options are invalid. */
export const resolveStore = (options: unknown): string | InvalidKeyError => {
  // Every operation passes here: a plain try, no closure per call.
  try {
    return resolveStoreOf(options)
  } catch (cause) {
    return unreadable("The options", cause)
  }
}

const resolveStoreOf = (options: unknown): string | InvalidKeyError => {
  if (options === undefined || options === null) return DEFAULT_STORE
  if (typeof options !== "object") {
    return new InvalidKeyError({
      reason: `Options must be an object such as { store: "settings" }, got ${describeType(options)}`
    })
  }
  const store: unknown = (options as { readonly store?: unknown }).store
  if (store === undefined) return DEFAULT_STORE
  const problem = nameProblem(store, "A store name", MAX_STORE_BYTES)
  return problem === undefined ? (store as string) : new InvalidKeyError({ reason: problem })
}

/** Checks a list of keys given to a batch operation and returns them without duplicates. */
export const checkKeyList = (keys: unknown): ReadonlyArray<string> | InvalidKeyError => {
  try {
    return Array.from(new Set(keyItems(keys)))
  } catch (cause) {
    return cause instanceof InvalidKeyError ? cause : unreadable("The list of keys", cause)
  }
}

/**
 * The keys of a list (an array or another iterable of strings), each checked, as the caller pulls them, repeats
 * included. Throws the first problem (9004, also when reading the list throws).
 */
export function* keyItems(keys: unknown): Generator<string, void, undefined> {
  if (typeof keys === "string" || keys === null || typeof keys !== "object" || !(Symbol.iterator in keys)) {
    throw new InvalidKeyError({
      reason: `Keys must be an array or another iterable of strings, got ${describeType(keys)}`
    })
  }
  try {
    for (const key of keys as Iterable<unknown>) {
      const error = checkKey(key)
      if (error !== undefined) throw error
      yield key as string
    }
  } catch (cause) {
    throw unreadable("The list of keys", cause)
  }
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * The entries given to `setMany` (a plain record or an iterable of `[key, value]` pairs), pair by pair as the
 * caller pulls them, repeated keys included: each key and the shape of each pair checked, each value read once
 * (a getter or proxy is not asked twice). Throws the first problem (9004, also when reading the entries throws).
 * Values are for the caller to check.
 */
export function* entryPairs(entries: unknown): Generator<readonly [string, unknown], void, undefined> {
  try {
    yield* pairsOf(entries)
  } catch (cause) {
    throw unreadable("The entries", cause)
  }
}

function* pairsOf(entries: unknown): Generator<readonly [string, unknown], void, undefined> {
  if (entries === null || typeof entries !== "object") {
    throw new InvalidKeyError({
      reason: `Entries must be a record or an iterable of [key, value] pairs, got ${describeType(entries)}`
    })
  }
  if (Symbol.iterator in entries) {
    let index = 0
    for (const pair of entries as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new InvalidKeyError({ reason: `Entry ${index} must be a [key, value] pair, got ${describeType(pair)}` })
      }
      const key: unknown = pair[0]
      const error = checkKey(key)
      if (error !== undefined) throw error
      yield [key as string, pair[1]]
      index++
    }
    return
  }
  if (!isPlainObject(entries)) {
    throw new InvalidKeyError({
      reason: "Entries must be a plain record or an iterable of [key, value] pairs, got an instance of a class"
    })
  }
  if (
    Object.getOwnPropertySymbols(entries).some((symbol) => Object.prototype.propertyIsEnumerable.call(entries, symbol))
  ) {
    throw new InvalidKeyError({ reason: "A key must be a string, got a symbol (as a property of the entries record)" })
  }
  for (const key of Object.keys(entries)) {
    const error = checkKey(key)
    if (error !== undefined) throw error
    yield [key, (entries as Record<string, unknown>)[key]]
  }
}
