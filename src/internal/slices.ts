/**
 * Time slices: how a large call leaves the caller's event loop running. A synchronous backend (better-sqlite3,
 * memory) runs on the caller's thread, so a call that reads or writes 100,000 entries in one go would freeze the
 * loop for its whole duration (a frozen window in a desktop app, every request waiting in a server). Instead, the
 * work of a call is cut into bounded pieces (a few hundred rows, or a few hundred values serialized or decoded),
 * and between two pieces it checks how long the library has held the loop since the loop last turned: past
 * {@link SLICE_MS}, it lets the loop turn (`setImmediate`) and goes on after. A call that pauses keeps its
 * connection meanwhile (its transaction open, calls made after it waiting), so it stays one all-or-nothing
 * transaction, and calls still take effect in the order they were made.
 *
 * A cheaper design, measured first: a worker thread owning the connection keeps the loop free for free, but every
 * call then pays a message round trip (a `get` through a worker 35 µs against 7 µs on the caller's thread:
 * `bench/micro/worker-get.mjs`), and values still have to be serialized and decoded on the caller's thread, which
 * is most of a large call's time. What slicing cannot split is one step of SQLite or V8: the COMMIT of a large
 * transaction (~1 ms per MB it wrote: see the README's performance section) and a garbage collection.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { StorageError } from "../errors/StorageError.js"
import type { ListedRow, Row, SyncPrimitives } from "./backend.js"
import { after, type Range } from "./selector.js"

/**
 * How long (ms) the library's work may hold the event loop before letting it turn. Two slices can run back to back
 * when the first ends in the loop's check phase, so half a frame at 60 Hz keeps any stall under one.
 */
export const SLICE_MS = 4

/** How many rows one piece of a large primitive reads or writes: about half a millisecond of SQLite's work. */
export const SLICE_ROWS = 512

let turned = true
let sliceStart = 0
const turn = (): void => {
  turned = true
}

/**
 * Whether the library has held the event loop for a slice since the loop last turned: time to let it turn. The
 * first check after a turn starts the slice (and asks to be told of the next turn); each later one compares.
 */
export const pauseDue = (): boolean => {
  const now = performance.now()
  if (turned) {
    turned = false
    sliceStart = now
    setImmediate(turn).unref()
    return false
  }
  return now - sliceStart >= SLICE_MS
}

/** Lets the event loop turn (timers and I/O run first), then goes on. */
export const nextTurn: Effect.Effect<undefined> = Effect.async((resume) => {
  const immediate = setImmediate(() => resume(Effect.succeed(undefined)))
  return Effect.sync(() => clearImmediate(immediate))
})

/** `effect`, after letting the event loop turn when the slice has run out. */
export const breathing = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => (pauseDue() ? Effect.zipRight(nextTurn, effect) : effect))

/**
 * The rest of a call that paused: `step` runs it until its next pause (returning itself) or its end (returning its
 * result), and throws the library's error when it fails. Whoever runs it lets the event loop turn between steps
 * and holds the connection for it until it ends.
 *
 * @internal
 */
export class Suspended<A> {
  constructor(
    private readonly work: Generator<undefined, A, undefined>,
    private readonly fail: (thrown: unknown) => StorageError
  ) {}

  step(): A | Suspended<A> {
    let result: IteratorResult<undefined, A>
    try {
      result = this.work.next()
    } catch (thrown) {
      throw this.fail(thrown)
    }
    return result.done ? result.value : this
  }

  /** The same work, its result mapped by `f` at the end. */
  map<B>(f: (a: A) => B): Suspended<B> {
    const work = this.work
    return new Suspended(
      (function* () {
        return f(yield* work)
      })(),
      this.fail
    )
  }
}

/** A result, or the rest of a call that paused, mapped by `f`. */
export const mapSliced = <A, B>(result: A | Suspended<A>, f: (a: A) => B): B | Suspended<B> =>
  result instanceof Suspended ? result.map(f) : f(result)

/**
 * Gives a call's result to `done` (or its error to `failed`): at once, or, when the call paused, once its steps
 * have all run, each after the event loop turned.
 */
export const settleSliced = <A>(
  result: A | Suspended<A>,
  done: (value: A) => void,
  failed: (error: unknown) => void
): void => {
  if (!(result instanceof Suspended)) {
    done(result)
    return
  }
  const again = (): void => {
    let next: A | Suspended<A>
    try {
      next = result.step()
    } catch (error) {
      failed(error)
      return
    }
    if (next instanceof Suspended) setImmediate(again)
    else done(next)
  }
  setImmediate(again)
}

/** A piece of work: it pauses (yields) whenever a slice has run out. */
type Sliced<A> = Generator<undefined, A, undefined>

/** Pauses when the slice has run out. */
function* breath(): Sliced<void> {
  if (pauseDue()) yield
}

/**
 * Runs `body` as one level of a transaction of `primitives` (a read-only one when `read`: a snapshot, taking no
 * write lock; a savepoint inside a transaction already open): committed when it ends, rolled back when it throws.
 */
function* inTransaction<A>(primitives: SyncPrimitives, read: boolean, body: Sliced<A>): Sliced<A> {
  primitives.transactions.begin(read)
  let result: A
  try {
    result = yield* body
  } catch (thrown) {
    primitives.transactions.rollback()
    throw thrown
  }
  primitives.transactions.commit()
  return result
}

function* pieces<T, A>(items: ReadonlyArray<T>, f: (piece: ReadonlyArray<T>) => A): Sliced<Array<A>> {
  const results: Array<A> = []
  for (let start = 0; start < items.length; start += SLICE_ROWS) {
    if (start > 0) yield* breath()
    results.push(f(items.slice(start, start + SLICE_ROWS)))
  }
  return results
}

/** A range read in pieces: each piece the next SLICE_ROWS of what is left of it. */
function* rangePieces<R extends string | readonly [string, ...ReadonlyArray<unknown>]>(
  range: Range,
  read: (piece: Range) => ReadonlyArray<R>
): Sliced<Array<R>> {
  const rows: Array<R> = []
  let rest = range
  while (true) {
    const want = rest.limit === undefined ? SLICE_ROWS : Math.min(SLICE_ROWS, rest.limit)
    const piece = read({ ...rest, limit: want })
    for (const row of piece) rows.push(row)
    if (piece.length < want || want === rest.limit) return rows
    const last = piece[piece.length - 1]!
    rest = {
      ...after(rest, typeof last === "string" ? last : last[0]),
      limit: rest.limit === undefined ? undefined : rest.limit - want
    }
    yield* breath()
  }
}

const large = (range: Range): boolean => range.limit === undefined || range.limit > SLICE_ROWS

/**
 * A call of a synchronous primitive cut into pieces, when it is large: writes in one transaction (one version, all
 * or nothing, as the whole call would be), reads in one snapshot. `undefined` when the call is small enough to run
 * whole.
 *
 * @internal
 */
export const sliced = (
  primitives: SyncPrimitives,
  name: string,
  args: ReadonlyArray<unknown>
): Sliced<unknown> | undefined => {
  switch (name) {
    case "setMany": {
      const [store, rows, now, expiresAt] = args as [string, ReadonlyArray<Row>, number, number | null]
      if (rows.length <= SLICE_ROWS) return undefined
      return inTransaction(
        primitives,
        false,
        (function* () {
          const versions = yield* pieces(rows, (piece) => primitives.setMany(store, piece, now, expiresAt))
          return versions[0]!
        })()
      )
    }
    case "deleteMany": {
      const [store, keys, now] = args as [string, ReadonlyArray<string>, number]
      if (keys.length <= SLICE_ROWS) return undefined
      return inTransaction(
        primitives,
        false,
        (function* () {
          const removed = yield* pieces(keys, (piece) => primitives.deleteMany(store, piece, now))
          return removed.reduce((sum, n) => sum + n, 0)
        })()
      )
    }
    case "getMany": {
      const [store, keys, now] = args as [string, ReadonlyArray<string>, number]
      if (keys.length <= SLICE_ROWS) return undefined
      return inTransaction(
        primitives,
        true,
        (function* () {
          return (yield* pieces(keys, (piece) => primitives.getMany(store, piece, now))).flat()
        })()
      )
    }
    case "scanKeys": {
      const [store, range, now] = args as [string, Range, number]
      if (!large(range)) return undefined
      return inTransaction(
        primitives,
        true,
        rangePieces(range, (piece) => primitives.scanKeys(store, piece, now))
      )
    }
    case "scan":
    case "scanMeta": {
      const [store, range, maxBytes, now] = args as [string, Range, number, number]
      // A byte budget bounds the read already (a list's chunk).
      if (!large(range) || maxBytes !== Number.POSITIVE_INFINITY) return undefined
      const scan: (store: string, range: Range, maxBytes: number, now: number) => ReadonlyArray<Row | ListedRow> =
        name === "scan" ? primitives.scan : primitives.scanMeta
      return inTransaction(
        primitives,
        true,
        rangePieces(range, (piece) => scan(store, piece, maxBytes, now))
      )
    }
    case "clear": {
      const { clearSome } = primitives
      if (clearSome === undefined) return undefined
      const [store, now] = args as [string, number]
      return inTransaction(
        primitives,
        false,
        (function* () {
          let cleared = false
          while (true) {
            const removed = clearSome(store, now, SLICE_ROWS * 4, cleared)
            if (removed < SLICE_ROWS * 4) return undefined
            cleared = true
            yield* breath()
          }
        })()
      )
    }
    default:
      return undefined
  }
}
