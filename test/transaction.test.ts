/**
 * Transactions beyond the conformance suite: what only one API can do (interrupting the Effect of a transaction;
 * the Promise API's callback and its client's other calls).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { describe, it as vitest } from "vitest"
import { layerMemory, layerSql, layerSqlite, Storage } from "../src/index.js"
import { open } from "../src/promise.js"
import { tempDir } from "./support.js"

const dir = tempDir()
let counter = 0
const freshFile = (): string => {
  const folder = path.join(dir, `db-${++counter}`)
  fs.mkdirSync(folder, { recursive: true })
  return path.join(folder, "storage.db")
}

const layers = [
  ["layerMemory", layerMemory],
  ["layerSqlite", layerSqlite({ filename: freshFile() })],
  ["layerSql", layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: freshFile() })))]
] as const

for (const [name, layer] of layers) {
  it.layer(layer, { timeout: "60 seconds" })(name, (it) => {
    it.effect("interrupting a transaction rolls it back, and the layer goes on", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          storage.transaction((tx) =>
            Effect.gen(function* () {
              yield* tx.set("interrupted", 1)
              yield* Deferred.succeed(started, undefined)
              return yield* Effect.never
            })
          )
        )
        yield* Deferred.await(started)
        yield* Fiber.interrupt(fiber)
        expect(yield* storage.has("interrupted")).toBe(false)
        yield* storage.set("after", 1)
        expect(yield* storage.get("after")).toEqual(Option.some(1))
      })
    )

    it.effect("read-modify-write transactions from many fibers lose no increment", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* Effect.all(
          Array.from({ length: 40 }, () =>
            storage.transaction((tx) =>
              Effect.gen(function* () {
                const current = Option.getOrElse(yield* tx.get("tx-counter"), () => 0) as number
                yield* Effect.yieldNow()
                yield* tx.set("tx-counter", current + 1)
              })
            )
          ),
          { concurrency: "unbounded" }
        )
        expect(yield* storage.get("tx-counter")).toEqual(Option.some(40))
      })
    )
  })
}

it.effect("a transaction that cannot take the write lock fails with 9002, and the layer goes on", () =>
  Effect.gen(function* () {
    const filename = freshFile()
    const layer = layerSqlite({ filename, busyTimeout: 50 })
    yield* Effect.gen(function* () {
      const storage = yield* Storage
      yield* storage.set("k", 1)
      // Another connection holds the write lock past the busy timeout.
      const other = new Database(filename)
      other.exec("BEGIN IMMEDIATE")
      const error = yield* Effect.flip(storage.transaction((tx) => tx.set("k", 2)))
      expect(error).toMatchObject({ code: 9002, sqliteCode: "SQLITE_BUSY" })
      other.exec("ROLLBACK")
      other.close()
      expect(yield* storage.get("k")).toEqual(Option.some(1))
      yield* storage.transaction((tx) => tx.set("k", 3))
      expect(yield* storage.get("k")).toEqual(Option.some(3))
    }).pipe(Effect.provide(layer))
  })
)

describe("the Promise API's transaction", () => {
  vitest("commits what the callback wrote, resolves with its value, and rejects tx once it settled", async () => {
    const client = open({ filename: freshFile() })
    let kept: Parameters<Parameters<typeof client.transaction>[0]>[0] | undefined
    const value = await client.transaction(async (tx) => {
      kept = tx
      await tx.set("a", 1)
      await tx.setMany({ b: 2 }, { store: "other" })
      return (await tx.get<number>("a"))! + 1
    })
    expect(value).toBe(2)
    expect(await client.get("b", { store: "other" })).toBe(2)
    await expect(kept!.set("late", 1)).rejects.toMatchObject({ code: 9000 })
    await expect(kept!.get("a")).rejects.toMatchObject({ code: 9000 })
    await expect(client.transaction(5 as never)).rejects.toMatchObject({ code: 9004 })
    await client.close()
  })

  vitest("a transaction that cannot take the write lock rejects with 9002; the calls behind it still run", async () => {
    const filename = freshFile()
    const client = open({ filename, busyTimeout: 50 })
    await client.set("k", 1)
    const other = new Database(filename)
    other.exec("BEGIN IMMEDIATE")
    const blocked = client.transaction(async (tx) => tx.set("k", 2))
    const after = client.get("k")
    await expect(blocked).rejects.toMatchObject({ code: 9002, sqliteCode: "SQLITE_BUSY" })
    expect(await after).toBe(1)
    other.exec("ROLLBACK")
    other.close()
    await client.transaction(async (tx) => tx.set("k", 3))
    expect(await client.get("k")).toBe(3)
    await client.close()
  })

  vitest("a rejected callback rolls back; calls made meanwhile wait and then run in order", async () => {
    const client = open({ filename: freshFile() })
    await client.set("k", "before")
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const failing = client.transaction(async (tx) => {
      await tx.set("k", "inside")
      await gate
      throw new RangeError("changed my mind")
    })
    // Made while the transaction is open: they wait for it, and see what it left.
    const order: Array<string> = []
    const read = client.get("k").then((value) => {
      order.push(`read ${value}`)
      return value
    })
    const write = client.set("k", "after").then(() => order.push("write"))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(order).toEqual([])
    release()
    await expect(failing).rejects.toBeInstanceOf(RangeError)
    expect(await read).toBe("before")
    await write
    expect(order).toEqual(["read before", "write"])
    expect(await client.get("k")).toBe("after")
    // A savepoint: the inner rejection undoes the inner writes only.
    await client.transaction(async (tx) => {
      await tx.set("outer", true)
      await tx
        .transaction(async (inner) => {
          await inner.set("inner", true)
          throw new Error("inner")
        })
        .catch(() => undefined)
    })
    expect(await client.has("outer")).toBe(true)
    expect(await client.has("inner")).toBe(false)
    // close() lets an open transaction finish first.
    let finish!: () => void
    const slow = client.transaction(async (tx) => {
      await new Promise<void>((resolve) => {
        finish = resolve
      })
      await tx.set("last", 1)
    })
    const closing = client.close()
    finish()
    await slow
    await closing
    const again = open({ filename: client.filename })
    expect(await again.get("last")).toBe(1)
    await again.close()
  })
})
