/**
 * The Storage service implemented by calling the Promise API, so the conformance suite runs through the Promise API
 * of any client.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Atomic, CommitResult, StorageError, StorageService, WriteError } from "../src/index.js"
import type * as storage from "../src/promise.js"

const call = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (error) => error as StorageError })

/** The Promise API's atomic builder as the Effect API's. */
const adaptAtomic = (
  builder: storage.Atomic<Promise<CommitResult>>
): Atomic<Effect.Effect<CommitResult, WriteError>> => ({
  check: (key, version, options) => adaptAtomic(builder.check(key, version, options)),
  set: (key, value, options) => adaptAtomic(builder.set(key, value, options)),
  remove: (key, options) => adaptAtomic(builder.remove(key, options)),
  commit: () => call(() => builder.commit()) as Effect.Effect<CommitResult, WriteError>
})

/** The Storage service, implemented by calling the Promise API: the conformance suite runs through it. */
export const adapt = (client: storage.StorageApi): StorageService => {
  return {
    // The Promise API reads an absent key as null; `has` tells a stored null from an absent key.
    get: (key, options) =>
      Effect.flatMap(
        call(() => client.get(key, options)),
        (value) =>
          value !== null
            ? Effect.succeed(Option.some(value))
            : Effect.map(
                call(() => client.has(key, options)),
                (present) => (present ? Option.some(null) : Option.none())
              )
      ),
    // The Promise API types expireIn as milliseconds; it takes the Effect API's Durations too.
    set: (key, value, options) => call(() => client.set(key, value, options as storage.SetOptions)),
    remove: (key, options) => call(() => client.remove(key, options)),
    clear: (options) => call(() => client.clear(options)),
    keys: (selector) => call(() => client.keys(selector)),
    has: (key, options) => call(() => client.has(key, options)),
    entries: (selector) => call(() => client.entries(selector)),
    list: ((selector, options) =>
      Stream.fromAsyncIterable(
        client.list(selector, options),
        (error) => error as StorageError
      )) as StorageService["list"],
    watch: (selector, options) =>
      Stream.fromAsyncIterable(client.watch(selector, options), (error) => error as StorageError),
    page: (options) => call(() => client.page(options)),
    count: (selector) => call(() => client.count(selector)),
    atomic: () => adaptAtomic(client.atomic()),
    // The transaction's function is an effect: run to a promise, rejecting with the error it failed with.
    transaction: (f) =>
      call(() =>
        client.transaction(async (tx) => {
          const exit = await Effect.runPromiseExit(f(adapt(tx)) as Effect.Effect<unknown, unknown>)
          if (Exit.isSuccess(exit)) return exit.value
          throw Cause.squash(exit.cause)
        })
      ),
    getEntry: (key, options) =>
      Effect.map(
        call(() => client.getEntry(key, options)),
        Option.fromNullable
      ),
    getMany: (keys, options) => call(() => client.getMany(keys, options)),
    setMany: (entries, options) => call(() => client.setMany(entries, options as storage.SetOptions)),
    deleteMany: (keys, options) => call(() => client.deleteMany(keys, options)),
    size: (options) => call(() => client.size(options)),
    stores: () => call(() => client.stores()),
    update: (key, f, options) =>
      call(() => client.update(key, f as (current: unknown) => never, options as storage.UpdateOptions<unknown>))
  } as StorageService
}
