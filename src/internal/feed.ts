/**
 * The change feed's rules, written once for every backend: what a watch selects, how long the change log keeps its
 * history and when a backend trims it, and how watchers of one connection are woken when the log moves on.
 */
import * as Duration from "effect/Duration"
import { InvalidKeyError, isStorageError } from "../errors/StorageError.js"
import { compareCodePoints } from "./order.js"
import { checkOptionNames, inRange, type Range, select } from "./selector.js"
import { checkKey, checkKeyList, describeType, resolveStore, unreadable } from "./validate.js"
import { parseVersion } from "./version.js"

// ---------------------------------------------------------------------------------------------------------------
// What a watch selects

/** A checked watch selector: its store, and the ranges of keys it watches (none: it watches nothing). */
export interface WatchSelection {
  readonly store: string
  readonly ranges: ReadonlyArray<Range>
  /** `keys`: the keys watched, for matching changes (else the one range decides). */
  readonly keys: ReadonlySet<string> | undefined
}

/** A checked watch: what it selects, whether it starts with the current entries, and the version it resumes after. */
export interface WatchRequest {
  readonly selection: WatchSelection
  readonly initial: boolean
  readonly since: number | undefined
}

const WATCH_SELECTOR = ["store", "key", "keys", "prefix"]
const WATCH_OPTIONS = ["initial", "since"]

const refuse = (reason: string): InvalidKeyError => new InvalidKeyError({ reason })

/** The range of exactly one key: nothing lies between a key and the key followed by U+0000. */
const keyRange = (key: string): Range => ({ lower: key, upper: `${key}\u0000`, reverse: false, limit: undefined })

const selectWatch = (selector: unknown): WatchSelection => {
  const store = resolveStore(selector)
  if (typeof store !== "string") throw store
  const given = (selector ?? {}) as Record<string, unknown>
  checkOptionNames(given, WATCH_SELECTOR, "watch selector")
  const named = ["key", "keys", "prefix"].filter((name) => given[name] !== undefined)
  if (named.length > 1) throw refuse(`A watch selector takes one of key, keys and prefix, got ${named.join(" and ")}`)
  if (given.key !== undefined) {
    const invalid = checkKey(given.key)
    if (invalid !== undefined) throw invalid
    const key = given.key as string
    return { store, ranges: [keyRange(key)], keys: new Set([key]) }
  }
  if (given.keys !== undefined) {
    if (typeof given.keys === "string")
      throw refuse("The watch selector's keys must be an iterable of keys, not a string")
    const keys = checkKeyList(given.keys)
    if (keys instanceof InvalidKeyError) throw keys
    const unique = new Set(keys)
    return { store, ranges: [...unique].sort(compareCodePoints).map(keyRange), keys: unique }
  }
  // A prefix (or none: the whole store) is a selector's range, checked by the selectors' own rules.
  return { store, ranges: [select({ store, prefix: given.prefix }).range], keys: undefined }
}

/**
 * Checks a watch: its selector `{ store?, key?, keys?, prefix? }` (at most one of the last three; none watches the
 * whole store) and its options `{ initial?, since? }`. Throws `InvalidKeyError` (9004) when they are refused.
 */
export const checkWatch = (selector: unknown, options: unknown): WatchRequest => {
  try {
    const selection = selectWatch(selector)
    const given = (options ?? {}) as Record<string, unknown>
    if (typeof given !== "object") throw refuse(`watch options must be an object, got ${describeType(options)}`)
    checkOptionNames(given, WATCH_OPTIONS, "watch")
    if (given.initial !== undefined && typeof given.initial !== "boolean") {
      throw refuse(`The watch option initial must be a boolean, got ${describeType(given.initial)}`)
    }
    if (given.initial === true && given.since !== undefined) {
      throw refuse("A watch takes initial or since, not both: since replays changes, initial lists entries")
    }
    const since = given.since === undefined ? undefined : parseVersion(given.since)
    if (since === null) throw refuse("The watch option since must be a version string, got null")
    return { selection, initial: given.initial === true, since }
  } catch (cause) {
    if (isStorageError(cause)) throw cause
    throw unreadable("The watch selector", cause)
  }
}

/** Whether a change of a key of a store is one a watch selects (`key` undefined: a `clear` of the store). */
export const matches = (selection: WatchSelection, store: string, key: string | undefined): boolean => {
  if (store !== selection.store) return false
  if (key === undefined) return selection.ranges.length > 0
  return selection.keys !== undefined ? selection.keys.has(key) : inRange(selection.ranges[0]!, key)
}

// ---------------------------------------------------------------------------------------------------------------
// How long the log keeps its history

/**
 * How much history the change log keeps: at least the last `changes` change records, and at least every change of
 * the last `maxAge` milliseconds, whichever is more. Older records are trimmed, a bounded batch at a time.
 */
export interface History {
  readonly changes: number
  readonly maxAge: number
}

/**
 * The history the change feed keeps: at least the last `changes` changes (default 100,000) and every change younger
 * than `maxAge` (default 7 days), whichever is more. A watch resuming from an older version fails.
 *
 * @since 0.3.0
 */
export interface HistoryOptions {
  readonly changes?: number | undefined
  readonly maxAge?: Duration.DurationInput | undefined
}

/** 100,000 changes or 7 days, whichever is more. */
export const DEFAULT_HISTORY: History = { changes: 100_000, maxAge: 7 * 24 * 60 * 60 * 1000 }

/** The most records one trim deletes: trimming never holds the write lock for long. */
export const TRIM_BATCH = 10_000

/**
 * Checks the `history` option of a layer or client: `{ changes?, maxAge? }` (non-negative integers; `maxAge` in
 * milliseconds). Throws `InvalidKeyError` (9004).
 */
export const resolveHistory = (options: unknown): History => {
  if (options === undefined) return DEFAULT_HISTORY
  if (options === null || typeof options !== "object") {
    throw refuse(`history must be an object { changes?, maxAge? }, got ${describeType(options)}`)
  }
  const given = options as Record<string, unknown>
  checkOptionNames(given, ["changes", "maxAge"], "history")
  const count = (name: "changes" | "maxAge"): number => {
    const value = given[name]
    if (value === undefined) return DEFAULT_HISTORY[name]
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw refuse(`history.${name} must be a non-negative integer, got ${describeType(value)}`)
    }
    return value
  }
  return { changes: count("changes"), maxAge: count("maxAge") }
}

/** The history option of a layer as the log's rules take it; throws `InvalidKeyError` (9004) when it is refused. */
export const historyOf = (options: HistoryOptions | undefined): History => {
  if (options === null || typeof options !== "object" || options.maxAge === undefined) return resolveHistory(options)
  let maxAge: number
  try {
    maxAge = Math.round(Duration.toMillis(options.maxAge))
  } catch (cause) {
    throw unreadable("history.maxAge", cause)
  }
  return resolveHistory({ ...options, maxAge })
}

/**
 * Whether a write whose records took the seqs `first..last` trims the log: once every so many records (an eighth of
 * the kept history, at most 1,024), so the log stays near its size without a trim per write.
 */
export const dueForTrim = (history: History, first: number, last: number): boolean => {
  const every = Math.max(1, Math.min(1024, Math.floor(history.changes / 8)))
  return Math.floor((first - 1) / every) !== Math.floor(last / every)
}

/**
 * Where a trim would cut the log: the seq of the record that becomes its new origin (every record before it is
 * deleted, and it keeps only its version: the newest change no longer held), or `undefined` when nothing may go.
 * The cut keeps at least `history.changes` records after it and removes at most {@link TRIM_BATCH}. It is made only
 * when the record at the cut is old enough too ({@link oldEnough}).
 */
export const trimCandidate = (history: History, origin: number, head: number): number | undefined => {
  const cut = Math.min(head - history.changes, origin + TRIM_BATCH)
  return cut > origin ? cut : undefined
}

/** Whether a record written at `at` (ms; `undefined`: no such record) is older than the kept history's age. */
export const oldEnough = (history: History, at: number | undefined, now: number): boolean =>
  at !== undefined && at <= now - history.maxAge

// ---------------------------------------------------------------------------------------------------------------
// Waking watchers

const NOT_READ: unique symbol = Symbol("not read")

/** How often a connection with watchers looks for other connections' writes (a cheap read of the log's head). */
export const POLL_INTERVAL = 10

/**
 * Wakes the watchers of one connection: at once after this connection commits a write (`notify`), and, while any
 * watcher is registered, when a poll finds that the log's head moved (another connection or process wrote). With
 * no watcher there is no timer; the timer never keeps a process alive.
 */
export class Notifier {
  /** Increases whenever the log may have moved on. */
  generation = 0
  private waiters = new Set<() => void>()
  private watchers = 0
  private timer: ReturnType<typeof setInterval> | undefined
  private lastHead: unknown
  private polling = false

  private stopListening: (() => void) | undefined

  /**
   * `head` reads the log's head (undefined: nothing else writes, there is nothing to poll). `listen`, instead of
   * polling, starts waking on other connections' writes by itself (PostgreSQL's `LISTEN`), returning how to stop.
   */
  constructor(
    private readonly head: (() => unknown) | undefined,
    private readonly listen?: ((wake: () => void) => () => void) | undefined
  ) {}

  /** The log may have moved on: every waiter wakes. */
  notify(): void {
    this.generation++
    const waiters = this.waiters
    if (waiters.size === 0) return
    this.waiters = new Set()
    for (const wake of waiters) wake()
  }

  /** Calls `wake` once the generation is past `generation` (at once if it is); returns a function that cancels. */
  wait(generation: number, wake: () => void): () => void {
    if (this.generation !== generation) {
      wake()
      return () => undefined
    }
    this.waiters.add(wake)
    return () => {
      this.waiters.delete(wake)
    }
  }

  /** Registers a watcher (polling runs while there is one); returns the function that unregisters it. */
  watch(): () => void {
    this.watchers++
    if (this.watchers === 1) {
      if (this.listen !== undefined) this.stopListening = this.listen(() => this.notify())
      else if (this.head !== undefined) this.startPolling()
    }
    let registered = true
    return () => {
      if (!registered) return
      registered = false
      this.watchers--
      if (this.watchers > 0) return
      if (this.timer !== undefined) {
        clearInterval(this.timer)
        this.timer = undefined
      }
      this.stopListening?.()
      this.stopListening = undefined
    }
  }

  /** Stops polling or listening, whatever still watches (the connection is closing). */
  close(): void {
    this.watchers = 0
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.stopListening?.()
    this.stopListening = undefined
  }

  private startPolling(): void {
    const head = this.head!
    // The first poll always wakes the watchers: a write made between a watcher's first read and that poll is seen.
    this.lastHead = NOT_READ
    this.timer = setInterval(() => {
      if (this.polling) return
      let current: unknown
      try {
        current = head()
      } catch {
        // A failing poll wakes the watchers: their read fails with the error that explains it.
        this.notify()
        return
      }
      if (current instanceof Promise) {
        this.polling = true
        current.then(
          (value) => {
            this.polling = false
            this.moved(value)
          },
          () => {
            this.polling = false
            this.notify()
          }
        )
      } else {
        this.moved(current)
      }
    }, POLL_INTERVAL)
    this.timer.unref?.()
  }

  private moved(head: unknown): void {
    if (head !== this.lastHead) this.notify()
    this.lastHead = head
  }
}
