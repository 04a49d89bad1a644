/**
 * The Promise API built once over a client's way to run operations: every function of `StorageApi`, the async
 * iterable of `list`, and the errors a client rejects with. Both clients (on a SQLite connection run synchronously,
 * and on an effectful backend such as PostgreSQL) are made of it.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { GenericError, InvalidKeyError, isStorageError, type StorageError } from "../errors/StorageError.js"
import type { ListedRow, Row } from "../internal/backend.js"
import { mapSliced } from "../internal/slices.js"
import type {
  Entry,
  ListOptions,
  Page,
  PageOptions,
  Selector,
  StorageApi,
  StoredEntry,
  StoreOptions,
  StoreSummary,
  UpdateOptions
} from "../promise.js"
import {
  type Begun,
  begin,
  type Change,
  entryOf,
  type Json,
  type ListState,
  makeAtomic,
  startList,
  type WatchOptions,
  type WatchSelector
} from "../services/Storage.js"
import { listen, type OnChangeOptions, type Run } from "./watch.js"

export const closedError = (filename: string): GenericError =>
  new GenericError({ reason: `The storage client of ${JSON.stringify(filename)} is closed` })

export const notAFunction = (f: unknown): InvalidKeyError =>
  new InvalidKeyError({ reason: `transaction needs a function of the transaction, got ${typeof f}` })

/** Turns a failed exit into the error to reject with: the library's own error, never a FiberFailure. */
export const toError = (cause: Cause.Cause<StorageError>): Error => {
  const error = Cause.squash(cause)
  if (isStorageError(error)) return error
  if (Cause.isInterruptedOnly(cause)) {
    return new GenericError({ reason: "The operation was interrupted because the storage was closed", cause: error })
  }
  return new GenericError({ reason: "Unexpected failure in runtime-storage", cause: error })
}

/** Maps the result of a begun operation. */
export const mapBegun = <A, B>(begun: Begun<A>, f: (a: A) => B): Begun<B> => ({
  resume: (primitives) => mapSliced(begun.resume(primitives), f),
  resumeEffect: (connection) => Effect.map(begun.resumeEffect(connection), f)
})

/**
 * The async iterable of `list`: its selector is checked when it is called (a refusal rejects the first step), and
 * each chunk is one call of the client, made when the loop reaches it. The entries of a chunk already read are
 * given at once, each decoded as the loop reaches it: no generator machinery per entry, and a parsed value lives
 * only as long as the loop keeps it, so streaming a large store costs about what reading it row by row costs.
 */
export class ListIterator<T> implements AsyncIterableIterator<Entry<T>> {
  private rows: ReadonlyArray<Row | ListedRow> = []
  private index = 0
  private state: ListState | undefined
  private store = ""
  private json = false
  private refused: unknown
  private pending: Promise<IteratorResult<Entry<T>, undefined>> | undefined
  private closed = false

  constructor(
    private readonly run: Run,
    selector: unknown,
    options: unknown
  ) {
    try {
      this.state = startList(selector, options)
      this.store = this.state?.store ?? ""
      this.json = this.state?.json ?? false
    } catch (refused) {
      this.refused = refused
    }
  }

  next(): Promise<IteratorResult<Entry<T>, undefined>> {
    // Steps asked for while a chunk is being read wait for it, in order.
    if (this.pending !== undefined) {
      const step = (): Promise<IteratorResult<Entry<T>, undefined>> => this.next()
      return this.pending.then(step, step)
    }
    if (this.index < this.rows.length) {
      let entry: Entry<T>
      try {
        entry = entryOf(this.store, this.rows[this.index++]!, this.json) as Entry<T>
      } catch (error) {
        this.return()
        return Promise.reject(error)
      }
      return Promise.resolve({ done: false, value: entry })
    }
    if (this.refused !== undefined) {
      const refused = this.refused
      this.refused = undefined
      return Promise.reject(refused)
    }
    const state = this.state
    if (state === undefined || this.closed) return Promise.resolve({ done: true, value: undefined })
    const pending = this.run(() => begin("listChunk", state)).then(
      ([rows, next]) => {
        this.pending = undefined
        if (this.closed) return { done: true, value: undefined } as const
        this.rows = rows
        this.index = 0
        this.state = next
        return this.next()
      },
      (error: unknown) => {
        this.pending = undefined
        this.state = undefined
        throw error
      }
    )
    this.pending = pending
    return pending
  }

  /** Ends the list (what `break` calls): nothing more is read. */
  return(): Promise<IteratorResult<Entry<T>, undefined>> {
    this.closed = true
    this.state = undefined
    this.rows = []
    this.refused = undefined
    return Promise.resolve({ done: true, value: undefined })
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Entry<T>> {
    return this
  }
}

/** An async iterable whose first step rejects with `error`. */
export const refusedIterator = <T>(error: unknown): AsyncIterableIterator<T> => {
  let failed = false
  const iterator: AsyncIterableIterator<T> = {
    next: () => {
      if (failed) return Promise.resolve({ done: true, value: undefined })
      failed = true
      return Promise.reject(error)
    },
    return: () => {
      failed = true
      return Promise.resolve({ done: true, value: undefined })
    },
    [Symbol.asyncIterator]: () => iterator
  }
  return iterator
}

export const makeApi = (
  run: Run,
  transaction: <A>(f: (tx: StorageApi) => Promise<A>) => Promise<A>,
  watch: <T>(selector?: WatchSelector, options?: WatchOptions) => AsyncIterableIterator<Change<T>>
): StorageApi => ({
  transaction,
  watch,
  onChange: <T>(
    selector: WatchSelector | undefined,
    listener: (change: Change<T>) => unknown,
    options?: OnChangeOptions
  ) => {
    const { onError, ...watchOptions } = options ?? {}
    return listen(watch<T>(selector, watchOptions), listener, onError)
  },
  get: <T>(key: string, options?: StoreOptions) =>
    run(() => mapBegun(begin("get", key, options), (value) => Option.getOrNull(value) as T | null)),
  set: (key, value, options) => run(() => begin("set", key, value, options)),
  remove: (key, options) => run(() => begin("remove", key, options)),
  clear: (options) => run(() => begin("clear", options)),
  keys: (selector) => run(() => begin("keys", selector) as Begun<Array<string>>),
  has: (key, options) => run(() => begin("has", key, options)),
  entries: <T>(selector?: Selector) => run(() => begin("entries", selector) as Begun<Array<Entry<T>>>),
  list: (<T>(selector?: Selector, options?: ListOptions) =>
    new ListIterator<T>(run, selector, options)) as StorageApi["list"],
  page: <T>(options?: PageOptions) => run(() => begin("page", options) as Begun<Page<T>>),
  count: (selector) => run(() => begin("count", selector)),
  atomic: () => makeAtomic((operations) => run(() => begin("commitAtomic", operations))),
  getEntry: <T>(key: string, options?: StoreOptions) =>
    run(() => mapBegun(begin("getEntry", key, options), (entry) => Option.getOrNull(entry) as StoredEntry<T> | null)),
  getMany: <T>(keys: Iterable<string>, options?: StoreOptions) =>
    run(() => begin("getMany", keys, options) as Begun<Map<string, T>>),
  setMany: (entries, options) => run(() => begin("setMany", entries, options)),
  deleteMany: (keys, options) => run(() => begin("deleteMany", keys, options)),
  size: (options) => run(() => begin("size", options)),
  stores: () => run(() => begin("stores") as Begun<Array<StoreSummary>>),
  update: <T>(key: string, f: (current: T) => T, options?: UpdateOptions<T>) =>
    run(() => begin("update", key, f as (current: Json) => unknown, options) as Begun<T>)
})

/**
 * Answers the gets of one store from the values one `getMany` read for them. A key asked more than once is answered
 * from the values once; the gets that asked it again are returned, to be answered on their own (each caller gets a
 * value of its own, never one it shares with another).
 */
export const answerFromMany = <P extends { readonly key: unknown; readonly resolve: (value: Json | null) => void }>(
  group: ReadonlyArray<P>,
  values: ReadonlyMap<string, Json>
): Array<P> => {
  const again: Array<P> = []
  const answered = new Set<unknown>()
  for (const pending of group) {
    if (answered.has(pending.key)) {
      again.push(pending)
      continue
    }
    answered.add(pending.key)
    pending.resolve(values.get(pending.key as string) ?? null)
  }
  return again
}

/**
 * Begins an operation and hands it on: `start` checks its arguments and serializes its values now, in the caller's
 * call. A refusal rejects instead, and so does `refused`, when the client cannot take calls (it is closed, or the
 * transaction ended).
 */
export const beginning = <A, B>(
  refused: Error | undefined,
  start: () => Begun<A>,
  then: (begun: Begun<A>) => Promise<B>
): Promise<B> => {
  if (refused !== undefined) return Promise.reject(refused)
  let begun: Begun<A>
  try {
    begun = start()
  } catch (error) {
    return Promise.reject(error)
  }
  return then(begun)
}
