/**
 * The rules of expiring entries, written once for every backend: which option sets an expiry, what it may be, and
 * how often the background sweeper deletes expired entries.
 */
import * as Duration from "effect/Duration"
import { InvalidKeyError, isStorageError } from "../errors/StorageError.js"
import { compareCodePoints } from "./order.js"
import { Kind } from "./schema.js"
import { checkOptionNames } from "./selector.js"
import { describeType, unreadable } from "./validate.js"

/** The longest `expireIn`, in milliseconds: the span of a JavaScript `Date` (about 273,790 years). */
const MAX_EXPIRE_IN = 8.64e15

/** The option names of a write of values (`set`, `setMany`, an atomic `set`). */
export const WRITE_OPTIONS: ReadonlyArray<string> = ["store", "expireIn"]

const refuse = (reason: string): InvalidKeyError => new InvalidKeyError({ reason })

const describeExpireIn = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : describeType(value)

/** The milliseconds of an `expireIn` (a number of milliseconds or any Effect `DurationInput`); throws when refused. */
const millisOf = (value: unknown): number => {
  // Checked before Duration sees them: Duration turns a negative or NaN number into zero, and Infinity into an
  // infinite duration, silently.
  const millis =
    typeof value === "number"
      ? value
      : Duration.decodeUnknown(value).pipe((decoded) =>
          decoded._tag === "Some" ? Duration.toMillis(decoded.value) : undefined
        )
  if (millis === undefined) {
    throw refuse(
      `expireIn must be a number of milliseconds (or an Effect Duration, such as "10 minutes"), got ${describeExpireIn(value)}`
    )
  }
  if (Number.isNaN(millis) || millis <= 0 || millis > MAX_EXPIRE_IN) {
    throw refuse(
      `expireIn must be a positive, finite number of milliseconds, got ${describeExpireIn(value)}${typeof value === "number" ? "" : ` (${millis} ms)`}`
    )
  }
  return millis
}

/**
 * Checks the options of a write of values: `{ store?, expireIn? }` (the `names` it takes) and nothing else (a
 * misspelt `ttl` must not quietly store an entry forever). Returns the milliseconds after which the written entries expire, or `undefined`
 * when they never do. Throws `InvalidKeyError` (9004).
 */
export const checkExpireIn = (options: unknown, names: ReadonlyArray<string>): number | undefined => {
  if (options === undefined || options === null || typeof options !== "object") return undefined
  try {
    checkOptionNames(options, names, "write")
    const value: unknown = (options as { readonly expireIn?: unknown }).expireIn
    return value === undefined ? undefined : millisOf(value)
  } catch (cause) {
    if (isStorageError(cause)) throw cause
    throw unreadable("The options", cause)
  }
}

/** When an entry written at `now` expires (ms since the epoch), or `null` when it never does. */
export const expiresAtOf = (now: number, expireIn: number | undefined): number | null =>
  expireIn === undefined ? null : Math.ceil(now + expireIn)

/** Whether an entry with this expiry time has expired at `now`. */
export const expired = (expiresAt: number | null, now: number): boolean => expiresAt !== null && expiresAt <= now

/**
 * How the change log records the removal of a row by a write: as an expiry when it had expired (the write did not
 * remove a live key, and does not count it), else as a remove.
 */
export const removalOf = (expiresAt: number | null, now: number): typeof Kind.Remove | typeof Kind.Expire =>
  expired(expiresAt, now) ? Kind.Expire : Kind.Remove

/** The most expired entries one sweep deletes: a sweep never holds the write lock for long. */
export const SWEEP_BATCH = 500

/**
 * The entries a sweep deleted, in the order their records go into the change log: the longest expired first, then
 * by store and key (a `DELETE … RETURNING` gives its rows in no particular order, on either engine).
 */
export const expiredInOrder = <R extends readonly [store: string, key: string, expiresAt: number]>(
  rows: Array<R>
): Array<R> => rows.sort((a, b) => a[2] - b[2] || compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]))

/**
 * The longest the sweeper waits between two sweeps. It wakes sooner when it knows of an entry that expires sooner;
 * this bounds how late it notices entries that other processes wrote.
 */
export const SWEEP_INTERVAL = 1000

/**
 * What a sweep did: how many expired entries it deleted, and when the next known entry expires (`undefined`: none
 * expires).
 */
export interface Swept {
  readonly removed: number
  readonly next: number | undefined
}

/** How long the sweeper waits after a sweep at `now`: at once when the batch was full, else until the next expiry. */
export const sweepDelay = (swept: Swept, now: number): number => {
  if (swept.removed >= SWEEP_BATCH) return 0
  if (swept.next === undefined) return SWEEP_INTERVAL
  return Math.max(0, Math.min(SWEEP_INTERVAL, swept.next - now))
}

/**
 * When the sweeper next runs, and how to make it run sooner: a write of an entry that expires before then rings it,
 * so that an entry that expires in less than `SWEEP_INTERVAL` is deleted (and its removal in the feed) when it
 * expires, not up to a second later.
 */
export class SweepAlarm {
  private due = Number.POSITIVE_INFINITY
  private ring: (() => void) | undefined
  /** The sweeper waits until `at`; `ring` wakes it sooner. */
  set(at: number, ring: () => void): void {
    this.due = at
    this.ring = ring
  }
  /** The sweeper is running (or gone): nothing to wake. */
  clear(): void {
    this.due = Number.POSITIVE_INFINITY
    this.ring = undefined
  }
  /** An entry written now expires at `at`: wakes the sweeper when it would sleep past it. */
  expiring(at: number): void {
    if (at >= this.due) return
    const ring = this.ring
    this.clear()
    ring?.()
  }
}
