/**
 * PostgreSQL with real processes and a real server that stops and crashes: counters and check-and-set across four
 * processes, the change feed across processes, the server stopped and restarted under a client, a batch in flight
 * when the server crashes, and passwords kept out of every error.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { isStorageError, Storage, type StorageError } from "../src/index.js"
import { layerPg } from "../src/pg.js"
import { open } from "../src/promise.js"
import { type PgServer, startPgServer } from "./pg-server.js"
import { countersAcrossProcesses, feedAcrossProcesses, fixture, kill, run, sleep, startUntil } from "./processes.js"

const url = inject("pgUrl")
let schemas = 0
const freshSchema = (): string => `proc_${process.pid}_${++schemas}`
const targetOf = (options: { readonly url: string; readonly schema: string }): string => JSON.stringify(options)

/** Runs SQL on a server with a connection of its own. */
const query = async <A>(server: string, text: string, params: ReadonlyArray<unknown> = []): Promise<Array<A>> => {
  const client = new pg.Client(server)
  await client.connect()
  try {
    return (await client.query(text, params as Array<unknown>)).rows as Array<A>
  } finally {
    await client.end()
  }
}

describe("several processes on one server", () => {
  it("four processes incrementing counters (update, atomic check-and-set) and writing keys lose nothing", async () => {
    const schema = freshSchema()
    await countersAcrossProcesses(targetOf({ url, schema }), 100, () => open({ url, schema }))
  })

  it("four writers (one killed and restarted) and a watcher killed and resumed: the watcher sees the log exactly, and replaying it gives the data", async () => {
    const schema = freshSchema()
    const setup = open({ url, schema })
    await setup.set("created", true, { store: "other" })
    await setup.close()
    const table = (name: string) => `"${schema}".${name}`
    await feedAcrossProcesses(targetOf({ url, schema }), async () => ({
      log: await query(
        url,
        `SELECT version, kind, convert_from(key, 'UTF8') AS key, value FROM ${table("runtime_storage_changes")}
          WHERE store = convert_to('f1', 'UTF8') AND kind > 0 ORDER BY seq`
      ),
      stored: await query(
        url,
        `SELECT convert_from(key, 'UTF8') AS key, value FROM ${table("runtime_storage")} WHERE store = convert_to('f1', 'UTF8')`
      )
    }))
  })
})

describe("a process on PostgreSQL", () => {
  it("that wrote through the default instance and has nothing left to do exits, without close()", async () => {
    // Idle pool connections must not keep it alive (node-postgres's idle timeout is 10 s).
    const script = `
      import { configure, get, set } from ${JSON.stringify(new URL("../dist/promise.js", import.meta.url).href)}
      configure({ url: ${JSON.stringify(url)}, schema: ${JSON.stringify(freshSchema())} })
      await set("k", { written: true })
      process.stdout.write(JSON.stringify(await get("k")) + "\\n")`
    const child = run(["--input-type=module", "-e", script])
    const exited = await Promise.race([child.exited, sleep(8000).then(() => "still running")])
    await kill(child.child)
    expect(exited, child.stderr()).toBe(0)
    expect(child.lines).toEqual(['{"written":true}'])
  })
})

describe("a server that stops and crashes", () => {
  let server: PgServer
  beforeAll(async () => {
    server = await startPgServer()
  })
  afterAll(() => server?.destroy())

  const expectCoded = (error: unknown, codes: ReadonlyArray<number>) => {
    expect(isStorageError(error), String(error)).toBe(true)
    expect(codes).toContain((error as StorageError).code)
    expect((error as Error).message).not.toContain(server.password)
  }

  it("stopped mid-run: operations fail with coded errors during the outage and succeed after it restarts, with the same clients", async () => {
    const schema = freshSchema()
    const runtime = ManagedRuntime.make(layerPg({ url: server.url, schema }))
    const client = open({ url: server.url, schema })
    try {
      const storage = await runtime.runPromise(Storage)
      await runtime.runPromise(storage.set("before", 1))
      await client.set("before", 1)
      await server.stop()
      for (const attempt of [storage.set("during", 1), storage.get("before")]) {
        const exit = await runtime.runPromiseExit(attempt as Effect.Effect<unknown, StorageError>)
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expectCoded(exit.cause._tag === "Fail" ? exit.cause.error : exit.cause, [9005])
      }
      for (const attempt of [client.set("during", 1), client.get("before"), client.keys()]) {
        expectCoded(
          await attempt.then(
            () => undefined,
            (error: unknown) => error
          ),
          [9005]
        )
      }
      await server.start()
      await runtime.runPromise(storage.set("after", 2))
      expect(Option.getOrNull(await runtime.runPromise(storage.get("after")))).toBe(2)
      await client.set("after", 3)
      expect(await client.get("after")).toBe(3)
      expect(await client.get("during")).toBeNull()
    } finally {
      await client.close()
      await runtime.dispose()
    }
  })

  it("crashed under a batch: every batch is all-or-nothing, and nothing whose promise resolved is lost", async () => {
    const schema = freshSchema()
    const target = targetOf({ url: server.url, schema })
    for (let crash = 0; crash < 3; crash++) {
      const { child, lines } = await startUntil([fixture("pg-round-writer.mjs"), target], (line) => Number(line) >= 3)
      await sleep(Math.random() * 100)
      await server.crash()
      // The writer's rounds fail while the server is down, with coded errors.
      for (let waited = 0; !lines.some((line) => line.startsWith("error")) && waited < 10_000; waited += 20) {
        await sleep(20)
      }
      const errors = lines.filter((line) => line.startsWith("error"))
      expect(errors.length).toBeGreaterThan(0)
      for (const line of errors) expect(["error 9005", "error 9002"]).toContain(line)
      const acknowledged = Math.max(...lines.filter((line) => !line.startsWith("error")).map(Number))
      await server.start()
      // The same client writes again once the server is back.
      const before = lines.length
      for (let waited = 0; !lines.slice(before).some((line) => /^\d+$/.test(line)) && waited < 10_000; waited += 20) {
        await sleep(20)
      }
      expect(lines.slice(before).some((line) => /^\d+$/.test(line))).toBe(true)
      await kill(child)
      const rows = await query<{ value: string }>(server.url, `SELECT value FROM "${schema}".runtime_storage`)
      const values = new Set(rows.map((row) => row.value))
      // 500 keys and "round", all written by one setMany each time: one value, never a mix of two rounds.
      expect(rows).toHaveLength(501)
      expect(values.size).toBe(1)
      expect(Number([...values][0])).toBeGreaterThanOrEqual(acknowledged)
    }
  })

  it("a password never appears in an error: refused, unreachable, or a malformed URL", async () => {
    const wrong = "not-the-password-3141"
    const refused = new URL(server.url)
    refused.password = wrong
    const client = open({ url: refused.toString(), schema: freshSchema() })
    const error = await client.get("k").then(
      () => undefined,
      (e: unknown) => e
    )
    expectCoded(error, [9005])
    expect((error as { sqlState?: string }).sqlState).toBe("28P01")
    for (const text of [(error as Error).message, String(error), JSON.stringify(error), client.filename]) {
      expect(text).not.toContain(wrong)
    }
    await client.close()

    const down = new URL(server.url)
    down.port = "1"
    const layer = layerPg({ url: down.toString(), schema: freshSchema() })
    const exit = await Effect.runPromiseExit(Layer.build(layer).pipe(Effect.scoped))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
      expectCoded(exit.cause.error, [9005])
      expect(exit.cause.error.message).toContain("127.0.0.1:1")
    }

    const malformed = `postgres://user:${server.password}@host:port/db`
    const bad = await Effect.runPromiseExit(Layer.build(layerPg({ url: malformed })).pipe(Effect.scoped))
    expect(Exit.isFailure(bad)).toBe(true)
    if (Exit.isFailure(bad) && bad.cause._tag === "Fail") {
      expectCoded(bad.cause.error, [9005])
    }
  })
})
