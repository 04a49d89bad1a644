/**
 * The calls of one synchronous connection (or of one transaction on it), run one at a time in the order they were
 * made. A call runs at once when nothing holds the connection and nothing waits before it; otherwise it waits in
 * line. What holds the connection: a transaction (for as long as its function runs), or a call that paused midway to
 * let the event loop turn (see `slices.ts`), until it ends. A run of calls that has held the event loop for a slice
 * lets it turn before going on, so a loop of awaited calls never freezes the app either.
 *
 * @internal
 */
import type { SyncPrimitives } from "../internal/backend.js"
import { pauseDue, Suspended, settleSliced } from "../internal/slices.js"

interface Waiting {
  readonly run: (primitives: SyncPrimitives) => void
  readonly fail: (error: unknown) => void
}

export class Lane {
  private waiting: Array<Waiting> = []
  private held = false
  private drainScheduled = false
  private idleWaiters: Array<() => void> = []

  /**
   * `connection`: the connection when it is open (`undefined` while it opens: waiting calls run when `drain` is
   * called); `opening`: asks for it to be opened; `idle`: told whenever nothing holds the lane and nothing waits.
   */
  constructor(
    private readonly connection: () => SyncPrimitives | undefined,
    private readonly opening: () => void = () => undefined,
    private readonly idle: () => void = () => undefined
  ) {}

  /** Resolves once nothing holds the connection and no call waits (at once when that is so now). */
  whenIdle(): Promise<void> {
    if (this.isIdle) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Whether nothing holds the connection and no call waits. */
  get isIdle(): boolean {
    return !this.held && this.waiting.length === 0
  }

  /** The connection, when a call may run on it now: free, nobody before it, and the loop not due to turn. */
  now(): SyncPrimitives | undefined {
    if (this.held || this.waiting.length > 0) return undefined
    const primitives = this.connection()
    return primitives === undefined || pauseDue() ? undefined : primitives
  }

  /** Runs `run` now, or after the calls before it once the connection is free. */
  schedule(run: (primitives: SyncPrimitives) => void, fail: (error: unknown) => void): void {
    const primitives = this.now()
    if (primitives !== undefined) {
      run(primitives)
      return
    }
    this.waiting.push({ run, fail })
    if (this.connection() === undefined) this.opening()
    else if (!this.held) this.drainSoon()
  }

  /** Holds the connection (a transaction starts) until `release`. */
  hold(): void {
    this.held = true
  }

  release(): void {
    this.held = false
    this.drain()
  }

  /**
   * Settles a call with the result of a begun operation: at once, or, when it paused, once its rest has run, the
   * lane held meanwhile.
   */
  settle<A>(result: A | Suspended<A>, resolve: (value: A) => void, reject: (error: unknown) => void): void {
    if (!(result instanceof Suspended)) {
      resolve(result)
      return
    }
    this.hold()
    settleSliced(
      result,
      (value) => {
        this.release()
        resolve(value)
      },
      (error) => {
        this.release()
        reject(error)
      }
    )
  }

  /** Runs the waiting calls in order while the connection is free, letting the loop turn when a slice runs out. */
  drain(): void {
    const primitives = this.connection()
    let index = 0
    while (primitives !== undefined && !this.held && index < this.waiting.length) {
      if (index > 0 && pauseDue()) {
        this.drainSoon()
        break
      }
      this.waiting[index++]!.run(primitives)
    }
    this.waiting = this.waiting.slice(index)
    this.checkIdle()
  }

  /** Fails every waiting call (the connection could not be opened). */
  failAll(error: unknown): void {
    const calls = this.waiting
    this.waiting = []
    for (const call of calls) call.fail(error)
    this.checkIdle()
  }

  private checkIdle(): void {
    if (!this.isIdle) return
    this.idle()
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  private drainSoon(): void {
    if (this.drainScheduled) return
    this.drainScheduled = true
    setImmediate(() => {
      this.drainScheduled = false
      this.drain()
    })
  }
}
