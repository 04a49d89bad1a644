import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterEach, describe, expect, it } from "vitest"
import { Storage } from "../src/index.js"
import * as storage from "../src/promise.js"
import { countTurns } from "../src/testing/conformance-large.js"
import { conformance } from "../src/testing/vitest.js"
import { adapt } from "./promise-adapter.js"
import { systemTime, tempDir } from "./support.js"

const dir = tempDir()
let fileCounter = 0
const freshFile = (): string => path.join(dir, `db-${++fileCounter}`, "storage.db")

/** A Storage layer over a Promise API client of a fresh database. */
const clientLayer = (options: Omit<storage.OpenOptions, "filename"> = {}) =>
  Layer.scoped(
    Storage,
    Effect.acquireRelease(
      Effect.sync(() => storage.open({ ...options, filename: freshFile() })),
      (client) => Effect.promise(() => client.close())
    ).pipe(Effect.map(adapt))
  )

conformance("the Promise API (open)", clientLayer(), {
  withHistory: (history) => clientLayer({ history }),
  time: systemTime()
})

describe("open()", () => {
  it("rejects with the tagged error itself, never a FiberFailure, and never throws before the promise", async () => {
    const client = storage.open({ filename: freshFile() })
    const pending = client.get(42 as never)
    expect(pending).toBeInstanceOf(Promise)
    const error = await pending.catch((error: unknown) => error)
    expect(error).toBeInstanceOf(storage.InvalidKeyError)
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ _tag: "InvalidKey", code: 9004 })
    expect((error as Error).message).toBe("A key must be a string, got the number 42")
    expect(String(error)).not.toContain("FiberFailure")
    const refused = await client.set("when", { at: new Date(0) }).catch((error: unknown) => error)
    expect(refused).toMatchObject({ _tag: "SerializationError", code: 9006, path: "$.at" })
    await expect(client.set(undefined as never, 1)).rejects.toMatchObject({ code: 9004 })
    await expect(client.keys({ store: 5 as never })).rejects.toMatchObject({ code: 9004 })
    await client.close()
  })

  it("types get<T>, entries<T> and getMany<T> as the documentation shows, and reads an absent key as null", async () => {
    const client = storage.open({ filename: freshFile() })
    await client.set("recent_files", ["/a.txt", "/b.txt"])
    const files: Array<string> | null = await client.get<Array<string>>("recent_files")
    expect(files).toEqual(["/a.txt", "/b.txt"])
    const missing: number | null = await client.get<number>("missing")
    expect(missing).toBeNull()
    const listed: Array<{ key: string; value: Array<string> }> = await client.entries<Array<string>>()
    expect(listed).toEqual([{ key: "recent_files", value: ["/a.txt", "/b.txt"] }])
    const many: Map<string, Array<string>> = await client.getMany<Array<string>>(["recent_files"])
    expect(many.get("recent_files")).toEqual(["/a.txt", "/b.txt"])
    await client.close()
  })

  it("concurrent gets (batched after the first of a tick) each answer exactly as a lone get would", async () => {
    const filename = freshFile()
    const client = storage.open({ filename })
    await client.setMany({ a: { n: 1 }, b: [2], c: null })
    await client.set("a", "other store", { store: "s2" })
    const raw = new Database(filename)
    raw
      .prepare(
        "INSERT INTO runtime_storage (store, key, value, created_at, updated_at, version) VALUES ('default', 'broken', '{oops', 0, 0, 1)"
      )
      .run()
    raw.close()
    const results = await Promise.allSettled([
      // The first get of a tick runs at once; the ones after it are answered together.
      client.get("first"),
      client.get("a"),
      client.get("a"),
      client.get("b"),
      client.get("c"),
      client.get("missing"),
      client.get("a", { store: "s2" }),
      client.get(42 as never),
      client.get("broken"),
      client.get("b", { store: "" })
    ])
    const values = results.map((result) =>
      result.status === "fulfilled" ? result.value : (result.reason as { code: number }).code
    )
    expect(values).toEqual([null, { n: 1 }, { n: 1 }, [2], null, null, "other store", 9004, 9006, 9004])
    // Two gets of one key get two fresh objects.
    expect((results[1] as PromiseFulfilledResult<unknown>).value).not.toBe(
      (results[2] as PromiseFulfilledResult<unknown>).value
    )
    await client.close()
  })

  it("calls take effect in the order they are made, batched gets included", async () => {
    const client = storage.open({ filename: freshFile() })
    await client.set("k", 1)
    const before = client.get("k")
    const write = client.set("k", 2)
    const after = client.get("k")
    const removal = client.remove("k")
    const gone = client.get("k")
    expect(await Promise.all([before, write, after, removal, gone])).toEqual([1, undefined, 2, true, null])
    const pending = client.get("k")
    await client.close()
    expect(await pending).toBeNull()
    await expect(client.get("k")).rejects.toMatchObject({ code: 9000 })
  })

  it("calls made while a large call lets the event loop turn wait for it, in order; so do a transaction's", async () => {
    const client = storage.open({ filename: freshFile() })
    const big = Array.from({ length: 30_000 }, (_, index) => [`k${index}`, { index }] as const)
    const stopCounting = countTurns()
    const results = await Promise.all([
      client.setMany(big),
      client.get("k0"),
      client.count(),
      client.set("k0", "after"),
      client.get("k0"),
      client.keys(),
      client.clear(),
      client.has("k1")
    ])
    expect(stopCounting()).toBeGreaterThanOrEqual(3)
    expect(results.slice(0, 5)).toEqual([undefined, { index: 0 }, 30_000, undefined, "after"])
    expect((results[5] as Array<string>).length).toBe(30_000)
    expect(results.slice(6)).toEqual([undefined, false])
    // Inside a transaction, calls not awaited one by one take effect in order too, and end before it commits.
    await client.transaction(async (tx) => {
      void tx.setMany(big)
      void tx.set("k1", "inside")
      const [count, value] = await Promise.all([tx.count(), tx.get("k1")])
      expect([count, value]).toEqual([30_000, "inside"])
      void tx.deleteMany(big.map(([key]) => key).slice(0, 20_000))
    })
    expect(await client.count()).toBe(10_000)
    await client.close()
  })

  it("calls made while the client opens run in order, before any later call, checked when they are made", async () => {
    const filename = freshFile()
    const first = storage.open({ filename })
    await first.set("k", "old")
    await first.close()
    const client = storage.open({ filename })
    const state = { n: 1 }
    const write = client.set("k", state)
    const stateWrite = client.set("state", state)
    // Changing an object after passing it changes nothing: it was serialized when set was called.
    state.n = 2
    const refused = client.set("bad", { when: new Date() }).catch((error: unknown) => error)
    // Gets issued on every turn and on chains of microtasks until the set has resolved, so some are made while
    // the connection opens and some just as it becomes ready: each was made after the set and must see it.
    let written = false
    void write.then(() => {
      written = true
    })
    const seen: Array<Promise<unknown>> = []
    while (!written) {
      await new Promise((resolve) => setImmediate(resolve))
      let chain: Promise<unknown> = Promise.resolve()
      for (let i = 0; i < 20; i++) {
        chain = chain.then(() => {
          seen.push(client.get("k"))
        })
      }
      await chain
    }
    await write
    expect(seen.length).toBeGreaterThan(0)
    expect(await Promise.all(seen)).toEqual(seen.map(() => ({ n: 1 })))
    await stateWrite
    expect(await client.get("state")).toEqual({ n: 1 })
    expect(await refused).toMatchObject({ code: 9006 })
    await client.close()
  })

  it("close() lets the calls made before it finish, even while the client was still opening", async () => {
    const filename = freshFile()
    const client = storage.open({ filename })
    const write = client.set("k", 1)
    const read = client.get("missing")
    await client.close()
    await expect(write).resolves.toBeUndefined()
    await expect(read).resolves.toBeNull()
    const again = storage.open({ filename })
    expect(await again.get("k")).toBe(1)
    await again.close()
  })

  it("refuses an unknown durability instead of quietly using another one", () => {
    for (const durability of ["Strict", "full", 42]) {
      expect(() => storage.open({ filename: freshFile(), durability: durability as never })).toThrow(
        storage.InvalidKeyError
      )
    }
  })

  it("two clients on one file see each other's writes", async () => {
    const filename = freshFile()
    const first = storage.open({ filename })
    const second = storage.open({ filename })
    await first.set("from", "first")
    expect(await second.get("from")).toBe("first")
    await second.setMany({ a: 1, b: 2 }, { store: "shared" })
    expect(await first.entries({ store: "shared" })).toEqual([
      { key: "a", value: 1 },
      { key: "b", value: 2 }
    ])
    expect(await first.deleteMany(["a"], { store: "shared" })).toBe(1)
    expect(await second.has("a", { store: "shared" })).toBe(false)
    // Versions increase in commit order across both clients (two connections, as two processes have).
    const versions: Array<string> = []
    for (let i = 0; i < 40; i++) {
      const client = i % 3 === 0 ? first : second
      await client.set(`v${i}`, i, { store: "versions" })
      versions.push((await (i % 2 === 0 ? first : second).getEntry(`v${i}`, { store: "versions" }))!.version)
    }
    expect([...versions].sort()).toEqual(versions)
    expect(new Set(versions).size).toBe(versions.length)
    await Promise.all([first.close(), second.close()])
  })

  it("after close() every call rejects with 9000 and nothing is reopened; closing again is harmless", async () => {
    const filename = freshFile()
    const client = storage.open({ filename })
    await client.set("k", 1)
    await client.close()
    await client.close()
    fs.rmSync(path.dirname(filename), { recursive: true })
    for (const call of [client.get("k"), client.set("k", 2), client.keys(), client.size()]) {
      const error = await call.catch((error: unknown) => error)
      expect(error).toBeInstanceOf(storage.GenericError)
      expect(error).toMatchObject({ _tag: "Generic", code: 9000 })
      expect((error as Error).message).toContain("closed")
    }
    expect(fs.existsSync(path.dirname(filename))).toBe(false)
  })

  it("list is an async iterable that checks its selector at once, rejects its first step, and stops on break", async () => {
    const client = storage.open({ filename: freshFile() })
    await client.setMany(Array.from({ length: 2000 }, (_, i) => [`k${String(i).padStart(4, "0")}`, i] as const))
    // A refused selector: no synchronous throw; the first step of the loop rejects with 9004.
    const refused = client.list({ limit: -1 })
    const error = await refused.next().catch((error: unknown) => error)
    expect(error).toMatchObject({ _tag: "InvalidKey", code: 9004 })
    // Breaking out of the loop ends it: later calls, writes included, run at once.
    const seen: Array<string> = []
    for await (const { key, value } of client.list<number>({ prefix: "k1" })) {
      const typed: number = value
      seen.push(`${key}=${typed}`)
      if (seen.length === 3) break
    }
    expect(seen).toEqual(["k1000=1000", "k1001=1001", "k1002=1002"])
    await client.set("after", true)
    expect(await client.count()).toBe(2001)
    // Two lists at once, interleaved, each in its own order.
    const up = client.list({ limit: 1500 })
    const down = client.list({ reverse: true, limit: 1500 })
    const pairs: Array<[string, string]> = []
    for (let i = 0; i < 1500; i++) {
      const [a, b] = await Promise.all([up.next(), down.next()])
      pairs.push([(a.value as { key: string }).key, (b.value as { key: string }).key])
    }
    expect(pairs[0]).toEqual(["after", "k1999"])
    expect(pairs[1499]).toEqual(["k1498", "k0500"])
    expect((await up.next()).done).toBe(true)
    // A list whose client is closed rejects its next chunk with 9000.
    const open = client.list()
    for (let i = 0; i < 32; i++) await open.next()
    await client.close()
    await expect(
      (async () => {
        for (let i = 0; i < 2000; i++) await open.next()
      })()
    ).rejects.toMatchObject({ code: 9000 })
  })

  it("page, count and getEntry type their results; a cursor outlives its client; an absent entry is null", async () => {
    const filename = freshFile()
    const writer = storage.open({ filename })
    await writer.setMany({ "note:1": { title: "a" }, "note:2": { title: "b" }, other: 1 })
    const first = await writer.page<{ title: string }>({ prefix: "note:", limit: 1 })
    const title: string = first.entries[0]!.value.title
    expect(title).toBe("a")
    await writer.close()
    // Another client (as after a restart) reads the next page with the cursor.
    const client = storage.open({ filename })
    const second = await client.page<{ title: string }>({ prefix: "note:", limit: 1, cursor: first.cursor! })
    expect(second).toEqual({ entries: [{ key: "note:2", value: { title: "b" } }], cursor: null })
    expect(await client.count({ prefix: "note:" })).toBe(2)
    expect(await client.getEntry("missing")).toBeNull()
    const entry = await client.getEntry<{ title: string }>("note:2")
    expect(entry?.value.title).toBe("b")
    expect(entry?.createdAt).toBe(entry?.updatedAt)
    await client.close()
  })

  it("closes with Symbol.asyncDispose, for `await using`", async () => {
    const filename = freshFile()
    const client = storage.open({ filename })
    await client.set("k", 1)
    await client[Symbol.asyncDispose]()
    await expect(client.get("k")).rejects.toMatchObject({ code: 9000 })
    expect(fs.existsSync(`${filename}-wal`)).toBe(false)
  })

  it("opens the platform's default location for { app }, and refuses app names that could escape it", async () => {
    const previous = process.env.XDG_DATA_HOME
    process.env.XDG_DATA_HOME = path.join(dir, "xdg")
    try {
      const client = storage.open({ app: "my-app" })
      expect(client.filename).toBe(path.join(dir, "xdg", "my-app", "storage.db"))
      await client.set("k", "v")
      await client.close()
      expect(fs.existsSync(client.filename)).toBe(true)
    } finally {
      if (previous === undefined) delete process.env.XDG_DATA_HOME
      else process.env.XDG_DATA_HOME = previous
    }
    expect(() => storage.open({ app: "../escape" })).toThrow(storage.InvalidKeyError)
    expect(() => storage.open({})).toThrow(/app.*filename/)
  })

  it("a database file that cannot be opened rejects every call with DatabaseError (9005)", async () => {
    const filename = freshFile()
    fs.mkdirSync(path.dirname(filename), { recursive: true })
    fs.writeFileSync(filename, "not a database ".repeat(100))
    const client = storage.open({ filename })
    await expect(client.get("k")).rejects.toMatchObject({ _tag: "DatabaseError", code: 9005 })
    await expect(client.keys()).rejects.toMatchObject({ _tag: "DatabaseError", code: 9005 })
    await client.close()
  })
})

describe("the default instance", () => {
  afterEach(() => storage.close())

  it("uses configure()'s options, refuses configure() once open, and rejects after close() until configured again", async () => {
    const filename = freshFile()
    storage.configure({ filename })
    expect(storage.databasePath()).toBe(filename)
    await storage.set("theme", "dark", { store: "settings" })
    expect(await storage.get("theme", { store: "settings" })).toBe("dark")
    expect(await storage.keys({ store: "settings" })).toEqual(["theme"])
    expect(() => storage.configure({ filename: freshFile() })).toThrow(/before the first use/)
    const refused = (() => {
      try {
        storage.configure({ app: "x" })
        return undefined
      } catch (error) {
        return error
      }
    })()
    expect(refused).toMatchObject({ _tag: "Generic", code: 9000 })
    await storage.close()
    await expect(storage.get("theme", { store: "settings" })).rejects.toMatchObject({ code: 9000 })
    storage.configure({ filename })
    expect(await storage.get("theme", { store: "settings" })).toBe("dark")
    expect(await storage.remove("theme", { store: "settings" })).toBe(true)
  })

  it("accepts configure() again after the first call failed to open the database", async () => {
    const bad = freshFile()
    fs.mkdirSync(path.dirname(bad), { recursive: true })
    fs.writeFileSync(bad, "not a database ".repeat(100))
    storage.configure({ filename: bad })
    await expect(storage.get("k")).rejects.toMatchObject({ code: 9005 })
    const good = freshFile()
    storage.configure({ filename: good })
    await storage.set("k", "works")
    expect(await storage.get("k")).toBe("works")
    expect(storage.databasePath()).toBe(good)
  })

  it("refuses an invalid app name in configure() with 9004", () => {
    expect(() => storage.configure({ app: "CON" })).toThrow(storage.InvalidKeyError)
  })
})
