/**
 * The Promise API's client on an effectful backend (PostgreSQL): the same `StorageApi` as the SQLite client, with
 * the same guarantees. Calls take effect in the order they are made: they run one after another, each when the one
 * before it has finished (a transaction holds the client until it ends). Gets queued behind another call are
 * answered together when their turn comes, one `getMany` per store: a thousand concurrent gets cost about one query.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { DatabaseError, StorageError } from "../errors/StorageError.js"
import { resolveStore } from "../internal/validate.js"
import type { EffectBackend } from "../layers/Sql.js"
import type { StorageApi, StorageClient, StoreOptions } from "../promise.js"
import {
  type Begun,
  begin,
  type Change,
  type Json,
  make,
  transactionEnded,
  type WatchOptions,
  type WatchSelector,
  watchInTransaction
} from "../services/Storage.js"
import { answerFromMany, beginning, closedError, makeApi, notAFunction, refusedIterator, toError } from "./api.js"
import { WatchIterator } from "./watch.js"

class Backend extends Context.Tag("runtime-storage/promise/EffectBackend")<Backend, EffectBackend>() {}

/** A rejection of the function given to `transaction`, carried through the transaction's effect unchanged. */
class Rejected {
  constructor(readonly error: unknown) {}
}

/** A call waiting for its turn. */
interface Job {
  readonly run: (backend: EffectBackend) => Promise<void>
  readonly fail: (error: unknown) => void
}

/** A get waiting for its turn, in a batch of gets. */
interface PendingGet {
  readonly store: string
  readonly key: string
  readonly begun: Begun<Option.Option<Json>>
  readonly resolve: (value: Json | null) => void
  readonly reject: (error: unknown) => void
}

/** Runs an effect to a promise that rejects with the library's error, never a FiberFailure. */
const promiseOf = <A>(runtime: Runtime.Runtime<never>, effect: Effect.Effect<A, StorageError | Rejected>): Promise<A> =>
  Runtime.runPromiseExit(runtime)(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure) && failure.value instanceof Rejected) throw failure.value.error
    throw toError(exit.cause as Cause.Cause<StorageError>)
  })

/**
 * Opens a client on the backend `acquire` makes (when the first call needs it; a failed open is tried again by the
 * next call). `name` is what the client's `filename` and its errors call the database.
 *
 * @internal
 */
export const openEffectClient = (
  name: string,
  acquire: Effect.Effect<EffectBackend, DatabaseError, Scope.Scope>
): {
  readonly client: StorageClient
  readonly inUse: () => boolean
  readonly run: <A>(start: () => Begun<A>) => Promise<A>
} => {
  // The layer's scope also runs the service's sweeper of expired entries.
  const layer = Layer.scoped(
    Backend,
    Effect.flatMap(acquire, (backend) => Effect.as(make(backend), backend))
  )
  let runtime: ManagedRuntime.ManagedRuntime<Backend, DatabaseError> | undefined
  let opening: Promise<EffectBackend> | undefined
  let ready: EffectBackend | undefined
  let base: Runtime.Runtime<never> | undefined
  let closed: Promise<void> | undefined
  let queue: Array<Job> = []
  let busy = false
  let whenIdle: (() => void) | undefined
  /** The gets waiting at the end of the queue, answered together (undefined once their turn has come). */
  let gets: Array<PendingGet> | undefined

  const connect = (): Promise<EffectBackend> => {
    if (opening !== undefined) return opening
    const made = ManagedRuntime.make(layer)
    runtime = made
    const attempt = made.runPromiseExit(Backend).then(async (exit) => {
      if (Exit.isSuccess(exit)) {
        ready = exit.value
        base = await made.runtime()
        return exit.value
      }
      // A failed open is not kept: the next call tries again (the server may be back).
      if (opening === attempt) opening = undefined
      void made.dispose()
      throw toError(exit.cause)
    })
    opening = attempt
    return attempt
  }

  /** Runs the queued calls in order, one at a time. */
  const pump = async (): Promise<void> => {
    if (busy) return
    busy = true
    while (queue.length > 0) {
      let backend: EffectBackend
      try {
        backend = ready ?? (await connect())
      } catch (error) {
        // A failed open fails every call waiting for it; the next call tries again.
        const failed = queue
        queue = []
        gets = undefined
        for (const job of failed) job.fail(error)
        continue
      }
      const job = queue.shift()!
      try {
        await job.run(backend)
      } catch (error) {
        // A job settles its own promise; whatever escapes it must not stop the calls after it.
        job.fail(error)
      }
    }
    busy = false
    whenIdle?.()
  }
  /**
   * Queues a call. Gets made after it wait for it: only a batch of gets at the end of the queue (`batch`, this job
   * itself) takes in later gets, so a get never jumps over another call.
   */
  const enqueue = (job: Job, batch?: Array<PendingGet>): void => {
    gets = batch
    queue.push(job)
    void pump()
  }

  /** Runs the rest of a begun operation on the backend (an `EffectConnection`), in `runtime`'s context. */
  const runOn = <A>(runtime: Runtime.Runtime<never>, begun: Begun<A>, backend: EffectBackend): Promise<A> =>
    promiseOf(runtime, begun.resumeEffect(backend))

  const run = <A>(start: () => Begun<A>): Promise<A> =>
    beginning(
      closed === undefined ? undefined : closedError(name),
      start,
      (begun) =>
        new Promise<A>((resolve, reject) =>
          enqueue({ run: (backend) => runOn(base!, begun, backend).then(resolve, reject), fail: reject })
        )
    )

  /** Answers a batch of gets: one getMany per store, and on their own the gets a getMany cannot answer. */
  const answer = async (batch: ReadonlyArray<PendingGet>, backend: EffectBackend): Promise<void> => {
    const one = (pending: PendingGet) =>
      runOn(base!, pending.begun, backend).then((value) => pending.resolve(Option.getOrNull(value)), pending.reject)
    if (batch.length === 1) return one(batch[0]!)
    const byStore = new Map<string, Array<PendingGet>>()
    for (const pending of batch) {
      const group = byStore.get(pending.store)
      if (group === undefined) byStore.set(pending.store, [pending])
      else group.push(pending)
    }
    const alone: Array<PendingGet> = []
    for (const [store, group] of byStore) {
      let values: ReadonlyMap<string, Json>
      try {
        values = await runOn(
          base!,
          begin(
            "getMany",
            group.map((pending) => pending.key),
            { store }
          ),
          backend
        )
      } catch {
        alone.push(...group)
        continue
      }
      alone.push(...answerFromMany(group, values))
    }
    for (const pending of alone) await one(pending)
  }

  const get = <T>(key: string, options?: StoreOptions): Promise<T | null> =>
    beginning(
      closed === undefined ? undefined : closedError(name),
      () => begin("get", key, options),
      (begun) => queueGet<T>(key, resolveStore(options) as string, begun)
    )

  /** Queues a checked get (its store is valid): into the batch at the end of the queue, or as a new one. */
  const queueGet = <T>(key: string, store: string, begun: Begun<Option.Option<Json>>): Promise<T | null> =>
    new Promise<T | null>((resolve, reject) => {
      const pending: PendingGet = { store, key, begun, resolve: resolve as (value: Json | null) => void, reject }
      if (gets !== undefined) {
        gets.push(pending)
        return
      }
      const batch: Array<PendingGet> = [pending]
      enqueue(
        {
          run: (backend) => {
            if (gets === batch) gets = undefined
            return answer(batch, backend)
          },
          fail: (error) => {
            if (gets === batch) gets = undefined
            for (const waiting of batch) waiting.reject(error)
          }
        },
        batch
      )
    })

  /** One level of a transaction: `f` runs with `tx` bound to it, on the runtime that carries its connection. */
  const transactionOn = <A>(
    backend: EffectBackend,
    outer: Runtime.Runtime<never>,
    f: (tx: StorageApi) => Promise<A>
  ): Promise<A> => {
    const scope = { open: true }
    const body = Effect.flatMap(Effect.runtime<never>(), (inner) => {
      const txRun = <B>(start: () => Begun<B>): Promise<B> =>
        beginning(scope.open ? undefined : transactionEnded(), start, (begun) => runOn(inner, begun, backend))
      const tx = makeApi(
        txRun,
        <B>(g: (nested: StorageApi) => Promise<B>) => {
          if (!scope.open) return Promise.reject(transactionEnded())
          if (typeof g !== "function") return Promise.reject(notAFunction(g))
          return transactionOn(backend, inner, g)
        },
        () => refusedIterator(watchInTransaction())
      )
      return Effect.tryPromise({ try: () => f(tx), catch: (error) => new Rejected(error) })
    })
    return promiseOf(
      outer,
      backend.withTransaction(body).pipe(Effect.ensuring(Effect.sync(() => (scope.open = false))))
    )
  }

  const transaction = <A>(f: (tx: StorageApi) => Promise<A>): Promise<A> => {
    if (closed !== undefined) return Promise.reject(closedError(name))
    if (typeof f !== "function") return Promise.reject(notAFunction(f))
    return new Promise<A>((resolve, reject) =>
      enqueue({ run: (backend) => transactionOn(backend, base!, f).then(resolve, reject), fail: reject })
    )
  }

  const watches = new Set<WatchIterator<unknown>>()
  const watch = <T>(selector?: WatchSelector, options?: WatchOptions): AsyncIterableIterator<Change<T>> => {
    if (closed !== undefined) return refusedIterator(closedError(name))
    const iterator = new WatchIterator<T>(run, selector, options, (ended) => {
      watches.delete(ended as WatchIterator<unknown>)
    })
    watches.add(iterator as WatchIterator<unknown>)
    return iterator
  }

  const close = (): Promise<void> => {
    if (closed !== undefined) return closed
    for (const iterator of [...watches]) void iterator.return()
    // Calls made before close() complete, then the pool closes.
    closed = new Promise<void>((idle) => {
      whenIdle = idle
      if (!busy && queue.length === 0) idle()
    }).then(async () => {
      ready = undefined
      await opening?.catch(() => undefined)
      await runtime?.dispose()
    })
    return closed
  }

  const api = makeApi(run, transaction, watch)
  const client: StorageClient = {
    ...api,
    get,
    filename: name,
    close,
    [Symbol.asyncDispose]: close
  }
  return { client, inUse: () => opening !== undefined, run }
}
