import { InvalidKeyError } from "../errors/StorageError.js"
import { quote } from "./quote.js"
import { describeType } from "./validate.js"

/**
 * Versions as users see them: the database's write counter as an opaque string of 16 lowercase hex digits, so that
 * versions compare as plain strings in the order their writes committed.
 */

const DIGITS = 16
const VERSION = /^[0-9a-f]{16}$/

/** The version string of a counter value. */
export const formatVersion = (version: number): string => version.toString(16).padStart(DIGITS, "0")

/**
 * The counter value of a version given to `check`: `null` (the key must be absent) as it is; a string this library
 * made (16 hex digits); anything else is refused with `InvalidKey` (9004).
 */
export const parseVersion = (version: unknown): number | null => {
  if (version === null) return null
  if (typeof version === "string" && VERSION.test(version)) {
    const value = Number.parseInt(version, 16)
    if (Number.isSafeInteger(value)) return value
  }
  throw new InvalidKeyError({
    reason: `A version to check must be a string that getEntry or a commit returned (${DIGITS} hex digits), or null for an absent key; got ${describeType(version)}${typeof version === "string" ? ` ${quote(version)}` : ""}`
  })
}
