/**
 * The change feed beyond the conformance suite: how fast a watcher hears of a write, `onChange`, ending watches,
 * polling only while something watches, and never keeping a process alive.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { afterEach, describe, expect, it } from "vitest"
import { type Change, layerSqlite, Storage } from "../src/index.js"
import { Notifier, POLL_INTERVAL } from "../src/internal/feed.js"
import * as storage from "../src/promise.js"
import { tempDir } from "./support.js"

const dir = tempDir()
let fileCounter = 0
const freshFile = (): string => path.join(dir, `db-${++fileCounter}`, "storage.db")
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const nextMacrotask = () => new Promise((resolve) => setImmediate(resolve))

const clients: Array<storage.StorageClient> = []
const openClient = (filename = freshFile()): storage.StorageClient => {
  const client = storage.open({ filename })
  clients.push(client)
  return client
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
})

describe("latency", () => {
  it("the Promise API: a write of the same client reaches its watcher before the next macrotask", async () => {
    const client = openClient()
    const changes = client.watch()
    const first = changes.next()
    await sleep(20)
    let seen: Change | undefined
    void first.then((step) => {
      seen = step.value as Change
    })
    await client.set("theme", "dark")
    await nextMacrotask()
    expect(seen).toMatchObject({ type: "set", key: "theme", value: "dark", last: true })
    await changes.return?.()
  })

  it("the Effect API: a write on the same layer reaches its watcher before the next macrotask", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* Storage
          let seen: Change | undefined
          const fiber = yield* Effect.fork(
            Stream.runForEach(Stream.take(storage.watch(), 1), (change) =>
              Effect.sync(() => {
                seen = change
              })
            )
          )
          yield* Effect.promise(() => sleep(20))
          yield* storage.set("theme", "dark")
          yield* Effect.promise(nextMacrotask)
          expect(seen).toMatchObject({ type: "set", key: "theme", value: "dark" })
          yield* Fiber.join(fiber)
        }).pipe(Effect.provide(layerSqlite({ filename: freshFile() })))
      )
    )
  })

  it("another client on the same file is heard within a few polls", async () => {
    const filename = freshFile()
    const writer = openClient(filename)
    const reader = openClient(filename)
    await writer.set("warm", 1)
    const changes = reader.watch()
    const first = changes.next()
    await sleep(30)
    const start = performance.now()
    await writer.set("theme", "dark")
    expect((await first).value).toMatchObject({ type: "set", key: "theme", value: "dark" })
    // One poll interval plus scheduling; generous for a loaded machine, and far below a timeout.
    expect(performance.now() - start).toBeLessThan(1000)
    await changes.return?.()
  })
})

describe("onChange", () => {
  it("calls the listener with each change in order, awaiting an async listener, until unsubscribed", async () => {
    const client = openClient()
    const seen: Array<string> = []
    let inside = 0
    let overlapped = false
    const unsubscribe = client.onChange({ store: "settings" }, async (change) => {
      inside++
      if (inside > 1) overlapped = true
      await sleep(5)
      seen.push(change.type === "set" ? `${change.key}=${JSON.stringify(change.value)}` : change.type)
      inside--
    })
    await sleep(20)
    await client.set("theme", "dark", { store: "settings" })
    await client.set("theme", "light", { store: "settings" })
    await client.set("elsewhere", 1)
    await client.clear({ store: "settings" })
    while (seen.length < 3) await sleep(5)
    expect(seen).toEqual(['theme="dark"', 'theme="light"', "clear"])
    expect(overlapped).toBe(false)
    unsubscribe()
    await client.set("theme", "after", { store: "settings" })
    await sleep(50)
    expect(seen).toHaveLength(3)
  })

  it("gives a listener's error to onError and goes on; a failed watch ends with its error", async () => {
    const client = openClient()
    const errors: Array<unknown> = []
    const seen: Array<string> = []
    const unsubscribe = client.onChange(
      undefined,
      (change) => {
        if (change.type === "set" && change.key === "bad") throw new Error("listener failed")
        if (change.type === "set") seen.push(change.key)
      },
      { onError: (error) => errors.push(error) }
    )
    await sleep(20)
    await client.set("bad", 1)
    await client.set("good", 2)
    while (seen.length < 1) await sleep(5)
    expect(seen).toEqual(["good"])
    expect((errors[0] as Error).message).toBe("listener failed")
    unsubscribe()

    const trimmed = storage.open({ filename: freshFile(), history: { changes: 2, maxAge: 0 } })
    clients.push(trimmed)
    await trimmed.set("first", 1)
    const old = (await trimmed.getEntry("first"))!.version
    for (let index = 0; index < 20; index++) await trimmed.set("k", index)
    const failures: Array<unknown> = []
    trimmed.onChange(undefined, () => undefined, { since: old, onError: (error) => failures.push(error) })
    while (failures.length === 0) await sleep(5)
    expect(failures[0]).toMatchObject({ _tag: "HistoryTrimmed", code: 9001 })
  })

  it("the module-level watch and onChange use the default instance", async () => {
    storage.configure({ filename: freshFile() })
    const seen: Array<Change> = []
    const unsubscribe = storage.onChange({ key: "theme" }, (change) => {
      seen.push(change)
    })
    const changes = storage.watch({ key: "theme" }, { initial: true })
    await storage.set("theme", "dark")
    expect((await changes.next()).value).toMatchObject({ type: "set", key: "theme", value: "dark" })
    while (seen.length === 0) await sleep(5)
    expect(seen[0]).toMatchObject({ type: "set", key: "theme", value: "dark" })
    unsubscribe()
    await changes.return?.()
    await storage.close()
  })
})

describe("ending a watch", () => {
  it("return() (break) ends a step that waits for changes; close() ends every watch of the client", async () => {
    const client = openClient()
    const first = client.watch()
    const waiting = first.next()
    await sleep(20)
    await first.return?.()
    expect(await waiting).toEqual({ done: true, value: undefined })
    const second = client.watch({ prefix: "a" })
    const pending = second.next()
    await sleep(20)
    await client.close()
    expect(await pending).toEqual({ done: true, value: undefined })
    await expect(client.watch().next()).rejects.toMatchObject({ code: 9000 })
  })

  it("a refused selector rejects the first step with 9004", async () => {
    const client = openClient()
    await expect(client.watch({ prefx: "a" } as never).next()).rejects.toMatchObject({ _tag: "InvalidKey", code: 9004 })
    await expect(client.transaction((tx) => tx.watch().next())).rejects.toMatchObject({ code: 9000 })
  })
})

describe("polling", () => {
  it("polls the head only while something watches", async () => {
    let polls = 0
    const notifier = new Notifier(() => ++polls)
    await sleep(POLL_INTERVAL * 5)
    expect(polls).toBe(0)
    const unregister = notifier.watch()
    const other = notifier.watch()
    await sleep(POLL_INTERVAL * 8)
    expect(polls).toBeGreaterThan(1)
    unregister()
    const afterOne = polls
    await sleep(POLL_INTERVAL * 5)
    expect(polls).toBeGreaterThan(afterOne)
    other()
    const stopped = polls
    await sleep(POLL_INTERVAL * 8)
    expect(polls).toBe(stopped)
  })

  it("a moved head wakes the waiters once; an unmoved one does not", async () => {
    let head = 1
    const notifier = new Notifier(() => head)
    const unregister = notifier.watch()
    let woken = 0
    // The first poll wakes: a write between a watcher's first read and that poll is not missed.
    notifier.wait(notifier.generation, () => woken++)
    await sleep(POLL_INTERVAL * 4)
    expect(woken).toBe(1)
    notifier.wait(notifier.generation, () => woken++)
    await sleep(POLL_INTERVAL * 4)
    expect(woken).toBe(1)
    head = 2
    await sleep(POLL_INTERVAL * 4)
    expect(woken).toBe(2)
    unregister()
  })

  it("a process whose only work left is watching (and entries to expire) exits on its own", () => {
    const script = `
      import { open } from ${JSON.stringify(path.resolve("dist/promise.js"))}
      import { layerSqlite, Storage } from ${JSON.stringify(path.resolve("dist/index.js"))}
      import * as Effect from "effect/Effect"
      import * as Stream from "effect/Stream"
      const client = open({ filename: ${JSON.stringify(freshFile())} })
      client.onChange(undefined, () => {})
      const changes = client.watch()
      changes.next()
      await client.set("a", 1)
      // Entries that expire in a minute: the sweepers wait for them on timers that keep nothing alive.
      await client.set("e", 1, { expireIn: 60_000 })
      Effect.runFork(Effect.scoped(Effect.flatMap(Storage, (s) => Effect.zipRight(s.set("e", 1, { expireIn: "1 minute" }), Stream.runDrain(s.watch()))).pipe(
        Effect.provide(layerSqlite({ filename: ${JSON.stringify(freshFile())} })))))
      setTimeout(() => process.stdout.write("watching\\n"), 100)
    `
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
      cwd: path.resolve(".")
    })
    expect(result.stderr).toBe("")
    expect(result.stdout).toBe("watching\n")
    expect(result.status).toBe(0)
  })
})
