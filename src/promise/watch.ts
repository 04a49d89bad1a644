/**
 * The change feed of the Promise API: `watch` as an async iterable, and `onChange` over it.
 */
import * as Effect from "effect/Effect"
import { checkWatch, type Notifier, type WatchRequest } from "../internal/feed.js"
import { mapSliced } from "../internal/slices.js"
import {
  type Begun,
  begin,
  type Change,
  type WatchOptions,
  type WatchSelector,
  type WatchState
} from "../services/Storage.js"

/** How a client runs a begun operation: in order with its other calls, on its connection. */
export type Run = <A>(start: () => Begun<A>) => Promise<A>

/**
 * The options of `onChange`: where the watch starts (as `watch` takes them), and `onError`, which receives a
 * failure of the watch (the watch then ends) or an error thrown or rejected by the listener (the watch goes on).
 * Without `onError`, such an error is thrown where nothing catches it (an uncaught exception, from a microtask), as
 * an `EventEmitter` throws an `"error"` nobody listens to: it is never silently dropped.
 *
 * @since 0.3.0
 */
export interface OnChangeOptions extends WatchOptions {
  readonly onError?: ((error: unknown) => void) | undefined
}

/**
 * The async iterable of `watch`: its selector and options are checked when it is called (a refusal rejects the first
 * step), and it starts then, in order with the client's other calls (a watch of the changes "from now on" made
 * before a `set` sees that set). It reads the change log as the loop asks for changes, waiting for the log to move
 * when it has given every change so far; other connections' writes are polled for from the first step on.
 * `return()` (what `break` calls) ends it at once, a step that waits included.
 */
export class WatchIterator<T> implements AsyncIterableIterator<Change<T>> {
  private buffer: ReadonlyArray<Change> = []
  private index = 0
  private started: Promise<readonly [ReadonlyArray<Change>, WatchState, Notifier]> | undefined
  private refused: unknown
  private state: WatchState | undefined
  private feed: Notifier | undefined
  private unregister: (() => void) | undefined
  private pending: Promise<IteratorResult<Change<T>, undefined>> | undefined
  private stopWaiting: (() => void) | undefined
  private closed = false

  constructor(
    private readonly run: Run,
    selector: WatchSelector | undefined,
    options: WatchOptions | undefined,
    private readonly onEnd: (iterator: WatchIterator<T>) => void
  ) {
    let request: WatchRequest
    try {
      request = checkWatch(selector, options)
    } catch (refused) {
      this.refused = refused
      return
    }
    this.started = this.run(() => {
      const started = begin("watchStart", request)
      return {
        resume: (primitives) =>
          mapSliced(started.resume(primitives), (result) => [...result, primitives.feed] as const),
        resumeEffect: (connection) =>
          Effect.map(started.resumeEffect(connection), (result) => [...result, connection.feed] as const)
      }
    })
    // A failure to start is the first step's; one that no step asks for is not unhandled.
    this.started.catch(() => undefined)
  }

  next(): Promise<IteratorResult<Change<T>, undefined>> {
    // Steps asked for while one is being read wait for it, in order.
    if (this.pending !== undefined) {
      const step = (): Promise<IteratorResult<Change<T>, undefined>> => this.next()
      return this.pending.then(step, step)
    }
    if (this.index < this.buffer.length) {
      return Promise.resolve({ done: false, value: this.buffer[this.index++] as Change<T> })
    }
    if (this.refused !== undefined) {
      const refused = this.refused
      this.end()
      return Promise.reject(refused)
    }
    if (this.closed) return Promise.resolve({ done: true, value: undefined })
    const pending = this.fill().then(
      () => {
        this.pending = undefined
        return this.next()
      },
      (error: unknown) => {
        this.pending = undefined
        const closed = this.closed
        this.end()
        if (closed) return { done: true, value: undefined } as const
        throw error
      }
    )
    this.pending = pending
    return pending
  }

  /** Reads until there are changes to give, or the iterator is ended. */
  private async fill(): Promise<void> {
    if (this.state === undefined || this.feed === undefined) {
      const [initial, state, feed] = await this.started!
      if (this.closed) return
      this.state = state
      this.feed = feed
      this.unregister = feed.watch()
      if (initial.length > 0) {
        this.buffer = initial
        this.index = 0
        return
      }
    }
    const feed = this.feed
    while (!this.closed) {
      const generation = feed.generation
      const step = await this.run(() => begin("watchChunk", this.state!))
      if (this.closed) return
      this.state = step.state
      if (step.changes.length > 0) {
        this.buffer = step.changes
        this.index = 0
        return
      }
      if (!step.more) {
        await new Promise<void>((resolve) => {
          const cancel = feed.wait(generation, resolve)
          this.stopWaiting = () => {
            cancel()
            resolve()
          }
        })
        this.stopWaiting = undefined
      }
    }
  }

  private end(): void {
    this.closed = true
    this.buffer = []
    this.refused = undefined
    this.stopWaiting?.()
    this.unregister?.()
    this.unregister = undefined
    this.onEnd(this)
  }

  /** Ends the watch (what `break` calls): a step waiting for changes ends too. */
  return(): Promise<IteratorResult<Change<T>, undefined>> {
    this.end()
    return Promise.resolve({ done: true, value: undefined })
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Change<T>> {
    return this
  }
}

/** Calls `listener` with each change of `changes`, one at a time, until the returned function is called. */
export const listen = <T>(
  changes: AsyncIterableIterator<Change<T>>,
  listener: (change: Change<T>) => unknown,
  onError: ((error: unknown) => void) | undefined
): (() => void) => {
  const report = (error: unknown): void => {
    if (onError !== undefined) onError(error)
    else
      queueMicrotask(() => {
        throw error
      })
  }
  let stopped = false
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const step = await changes.next()
      if (step.done === true || stopped) return
      try {
        await listener(step.value)
      } catch (error) {
        report(error)
      }
    }
  }
  loop().catch((error: unknown) => {
    if (!stopped) report(error)
  })
  return () => {
    stopped = true
    void changes.return?.()
  }
}
