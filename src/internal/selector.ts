/**
 * Selectors: which keys of a store a `keys`, `entries`, `list`, `page` or `count` reads, checked and turned into
 * one range of code point order that every backend reads the same way; and the cursors of `page`.
 */
import { createHash } from "node:crypto"
import { InvalidKeyError, isStorageError } from "../errors/StorageError.js"
import { compareCodePoints } from "./order.js"
import { checkKey, describeType, MAX_KEY_BYTES, resolveStore, textProblem, unreadable } from "./validate.js"

/**
 * A range of keys in code point order, as a backend reads it: every key `k` with `lower <= k < upper` (a missing
 * bound does not limit), ascending or (`reverse`) descending, at most `limit` of them (all when `undefined`).
 */
export interface Range {
  readonly lower: string | undefined
  readonly upper: string | undefined
  readonly reverse: boolean
  readonly limit: number | undefined
}

/** A checked selector: its store, its range, and what identifies it in a cursor. */
export interface Selection {
  readonly store: string
  readonly range: Range
  /** No key can be in the range (`start >= end`, say): nothing needs to be read. */
  readonly empty: boolean
  /** The selector without its limit, as cursors are bound to it. */
  readonly fingerprint: string
}

/** The entries of a page when its selector gives no `limit`. */
export const DEFAULT_PAGE_SIZE = 100
/** The most entries one page holds: a page is one bounded read. */
export const MAX_PAGE_SIZE = 1000

const SELECTOR_OPTIONS = ["store", "prefix", "start", "end", "reverse", "limit"]
const PAGE_OPTIONS = [...SELECTOR_OPTIONS, "cursor"]

/**
 * The smallest string greater than every string that starts with `prefix`, or `undefined` when there is none (a
 * prefix made only of U+10FFFF). Surrogate code points are skipped: no key contains one.
 */
export const prefixEnd = (prefix: string): string | undefined => {
  const points = Array.from(prefix)
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!
    if (last < 0x10ffff) return points.join("") + String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1)
  }
  return undefined
}

const maxOf = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined || compareCodePoints(a, b) >= 0 ? a : b
const minOf = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined || compareCodePoints(a, b) <= 0 ? a : b

/** Whether a key lies in the range (its limit aside). */
export const inRange = (range: Range, key: string): boolean =>
  (range.lower === undefined || compareCodePoints(key, range.lower) >= 0) &&
  (range.upper === undefined || compareCodePoints(key, range.upper) < 0)

const refuse = (reason: string): InvalidKeyError => new InvalidKeyError({ reason })

const bound = (options: Record<string, unknown>, name: string): string | undefined => {
  const value = options[name]
  if (value === undefined) return undefined
  if (typeof value !== "string") throw refuse(`The selector's ${name} must be a string, got ${describeType(value)}`)
  const problem = textProblem(value, `The selector's ${name}`, MAX_KEY_BYTES)
  if (problem !== undefined) throw refuse(problem)
  return value
}

const positiveInteger = (value: unknown, what: string, max: number): number | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw refuse(
      `${what} must be a positive integer${max < Number.MAX_SAFE_INTEGER ? ` of at most ${max}` : ""}, got ${describeType(value)}`
    )
  }
  return value
}

/**
 * Refuses (9004) an option whose name is not one of `allowed`: a typo such as `prefx` must not silently widen what
 * a call does. `what` names the options' owner ("selector", "watch", …) in the message.
 */
export const checkOptionNames = (given: object, allowed: ReadonlyArray<string>, what: string): void => {
  for (const name of Object.keys(given)) {
    if (!allowed.includes(name)) {
      throw refuse(`Unknown ${what} option ${JSON.stringify(name)}: a ${what} takes ${allowed.join(", ")}`)
    }
  }
}

/**
 * What the options of a list ask for: each entry's metadata, and its value as stored JSON text rather than parsed.
 * Throws `InvalidKey` when they are refused.
 */
export const checkListOptions = (options: unknown): { readonly metadata: boolean; readonly json: boolean } => {
  if (options === undefined) return { metadata: false, json: false }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw refuse(`The options of list must be an object, got ${describeType(options)}`)
  }
  checkOptionNames(options, LIST_OPTIONS, "list")
  const flag = (name: string): boolean => {
    const value = (options as Record<string, unknown>)[name]
    if (value !== undefined && typeof value !== "boolean") {
      throw refuse(`The list option ${name} must be a boolean, got ${describeType(value)}`)
    }
    return value === true
  }
  return { metadata: flag("metadata"), json: flag("json") }
}

const LIST_OPTIONS = ["metadata", "json"]

interface Parsed {
  readonly selection: Selection
  readonly cursor: unknown
}

const parse = (options: unknown, allowed: ReadonlyArray<string>, maxLimit: number): Parsed => {
  const store = resolveStore(options)
  if (typeof store !== "string") throw store
  const given = (options ?? {}) as Record<string, unknown>
  checkOptionNames(given, allowed, "selector")
  const prefix = bound(given, "prefix")
  const start = bound(given, "start")
  const end = bound(given, "end")
  const reverse = given.reverse
  if (reverse !== undefined && typeof reverse !== "boolean") {
    throw refuse(`The selector's reverse must be a boolean, got ${describeType(reverse)}`)
  }
  const limit = positiveInteger(given.limit, "The selector's limit", maxLimit)
  const lower = maxOf(prefix === "" ? undefined : prefix, start === "" ? undefined : start)
  const upper = minOf(prefix === undefined ? undefined : prefixEnd(prefix), end)
  const empty = upper !== undefined && (upper === "" || (lower !== undefined && compareCodePoints(lower, upper) >= 0))
  return {
    selection: {
      store,
      range: { lower, upper, reverse: reverse === true, limit },
      empty,
      fingerprint: JSON.stringify([store, prefix ?? null, start ?? null, end ?? null, reverse === true])
    },
    cursor: given.cursor
  }
}

/** Reads a caller's selector; a refusal is thrown (always `InvalidKeyError`, 9004) before anything is read. */
const read = <A>(f: () => A): A => {
  try {
    return f()
  } catch (cause) {
    if (isStorageError(cause)) throw cause
    throw unreadable("The selector", cause)
  }
}

/**
 * Checks the selector of `keys`, `entries`, `list` or `count`: `{ store?, prefix?, start?, end?, reverse?, limit? }`.
 * Throws `InvalidKeyError` (9004) when it is refused.
 */
export const select = (options: unknown): Selection =>
  read(() => parse(options, SELECTOR_OPTIONS, Number.MAX_SAFE_INTEGER).selection)

// A cursor is "1.<the last key of the page, base64url>.<digest>", the digest covering the key and the selector. It
// needs nothing but itself to be read (so it outlives the process), and one that was altered or made for another
// selector fails the digest. A cursor forged with a correct digest can only name a key inside the selector's range,
// so it still reads a page of that selector.

const CURSOR_VERSION = "1"

const digest = (fingerprint: string, payload: string): string =>
  createHash("sha256").update(fingerprint).update("\u0000").update(payload).digest("base64url").slice(0, 22)

/** The cursor of the page that ends at `lastKey`. */
export const encodeCursor = (selection: Selection, lastKey: string): string => {
  const payload = Buffer.from(lastKey, "utf8").toString("base64url")
  return `${CURSOR_VERSION}.${payload}.${digest(selection.fingerprint, payload)}`
}

const badCursor = (detail: string): InvalidKeyError =>
  refuse(
    `The cursor was not returned by page() for this selector (${detail}): pass back the cursor of the previous page with the same store, prefix, start, end and reverse`
  )

const decodeCursor = (selection: Selection, cursor: unknown): string => {
  if (cursor === null) {
    throw refuse("The cursor is null: the previous page was the last one. Omit the cursor to read the first page")
  }
  if (typeof cursor !== "string") throw refuse(`The cursor must be a string, got ${describeType(cursor)}`)
  if (cursor.length > 8 * MAX_KEY_BYTES) throw badCursor("it is too long")
  const parts = cursor.split(".")
  if (parts.length !== 3 || parts[0] !== CURSOR_VERSION || !/^[A-Za-z0-9_-]+$/.test(parts[1]!)) {
    throw badCursor("it is malformed")
  }
  const payload = parts[1]!
  if (parts[2] !== digest(selection.fingerprint, payload))
    throw badCursor("it was altered or made for another selector")
  const key = Buffer.from(payload, "base64url").toString("utf8")
  if (
    checkKey(key) !== undefined ||
    Buffer.from(key, "utf8").toString("base64url") !== payload ||
    !inRange(selection.range, key)
  ) {
    throw badCursor("it names no key of this selector")
  }
  return key
}

/** A checked `page` request: the selection, the range of this page (limit: one more than the page holds). */
export interface PageRequest {
  readonly selection: Selection
  readonly range: Range
  readonly size: number
}

/**
 * Checks the options of `page`: a selector (whose `limit` is the page size, default {@link DEFAULT_PAGE_SIZE}, at
 * most {@link MAX_PAGE_SIZE}) and an optional `cursor`. Throws `InvalidKeyError` (9004) when they are refused.
 */
export const selectPage = (options: unknown): PageRequest =>
  read(() => {
    const { selection, cursor } = parse(options, PAGE_OPTIONS, MAX_PAGE_SIZE)
    const size = selection.range.limit ?? DEFAULT_PAGE_SIZE
    let range: Range = { ...selection.range, limit: size + 1 }
    if (cursor !== undefined) range = after(range, decodeCursor(selection, cursor))
    return { selection, range, size }
  })

/** The rest of a range after `key` (in its direction). */
export const after = (range: Range, key: string): Range =>
  // The smallest string greater than `key` is `key` followed by U+0000.
  range.reverse ? { ...range, upper: key } : { ...range, lower: `${key}\u0000` }
