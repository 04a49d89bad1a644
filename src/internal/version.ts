/**
 * Versions as users see them: the database's write counter as an opaque string of 16 lowercase hex digits, so that
 * versions compare as plain strings in the order their writes committed.
 */

const DIGITS = 16

/** The version string of a counter value. */
export const formatVersion = (version: number): string => version.toString(16).padStart(DIGITS, "0")
