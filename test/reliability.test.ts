/**
 * Crashes, several processes, held locks, full disks, unwritable files: real child processes killed with SIGKILL,
 * a real tmpfs that fills up, a real unprivileged user. Each scenario checks that nothing committed is lost, that
 * batches stay all-or-nothing, and that every failure is a coded error.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterAll, describe, expect, it } from "vitest"
import { layerSql, Storage, type StorageError } from "../src/index.js"
import { open } from "../src/promise.js"
import {
  countersAcrossProcesses,
  feedAcrossProcesses,
  fixture,
  kill,
  type LogRow,
  type StoredRow,
  sleep,
  startUntil
} from "./processes.js"
import { tempDir } from "./support.js"

const dir = tempDir()
const cleanups: Array<() => void> = []
afterAll(() => {
  for (const cleanup of cleanups) cleanup()
})
let fileCounter = 0
const freshFile = (): string => path.join(dir, `db-${++fileCounter}`, "storage.db")

const integrity = (filename: string): unknown => {
  const db = new Database(filename)
  try {
    return db.pragma("integrity_check", { simple: true })
  } finally {
    db.close()
  }
}

describe("crashes", () => {
  /** Kills a process writing batches of `BATCH` keys (deleting the one before) at random moments, `rounds` times. */
  const killBatchWriter = async (BATCH: number, rounds: number, wait: number) => {
    const filename = freshFile()
    let sawWal = 0
    for (let round = 0; round < rounds; round++) {
      const { child } = await startUntil(
        [fixture("batch-writer.mjs"), filename, String(BATCH)],
        (line) => line === "ready"
      )
      await sleep(Math.random() * wait)
      await kill(child)
      if (fs.existsSync(`${filename}-wal`)) sawWal++
      expect(integrity(filename)).toBe("ok")
      const db = new Database(filename)
      const counts = db
        .prepare(
          "SELECT substr(key, 3, instr(substr(key, 3), ':') - 1) AS batch, count(*) AS n FROM runtime_storage WHERE key LIKE 'b:%' GROUP BY batch"
        )
        .all() as Array<{ batch: string; n: number }>
      db.close()
      // A kill between a batch's setMany and the deleteMany of the one before leaves both, each whole.
      expect(counts.length).toBeGreaterThanOrEqual(1)
      for (const { n } of counts) expect(n).toBe(BATCH)
    }
    // The kills left a -wal behind; opening again recovered it, and a clean close removes it.
    expect(sawWal).toBeGreaterThan(0)
    const client = open({ filename })
    expect(await client.get("next-batch")).toBeGreaterThan(0)
    await client.close()
    expect(fs.existsSync(`${filename}-wal`)).toBe(false)
    expect(fs.existsSync(`${filename}-shm`)).toBe(false)
  }

  it("SIGKILL at random moments during setMany/deleteMany leaves every batch all-or-nothing and the file intact", () =>
    killBatchWriter(200, 24, 120))

  // Batches of 3,000 are written in pieces, letting the event loop turn between them: the kills land between pieces.
  it("SIGKILL at random moments during large setMany/deleteMany (written in pieces) leaves every batch whole", () =>
    killBatchWriter(3000, 6, 400))

  it("SIGKILL at random moments during transactions and atomic commits leaves each batch whole, with one version", async () => {
    const filename = freshFile()
    const BATCH = 100
    for (let round = 0; round < 12; round++) {
      const { child } = await startUntil(
        [fixture("transaction-writer.mjs"), filename, String(BATCH)],
        (line) => line === "ready"
      )
      await sleep(Math.random() * 120)
      await kill(child)
      expect(integrity(filename)).toBe("ok")
      const db = new Database(filename)
      const batches = db
        .prepare(
          "SELECT substr(key, 3, instr(substr(key, 3), ':') - 1) AS batch, count(*) AS n, count(DISTINCT version) AS versions, count(DISTINCT store) AS stores FROM runtime_storage WHERE key LIKE 't:%' GROUP BY batch"
        )
        .all() as Array<{ batch: string; n: number; versions: number; stores: number }>
      const next = db.prepare("SELECT value FROM runtime_storage WHERE key = 'next'").pluck().get() as string
      db.close()
      // The batch the counter names as the last one written is there, whole, in both stores, with one version.
      expect(batches.map((row) => Number(row.batch))).toEqual([Number(next) - 1])
      for (const row of batches) expect(row).toMatchObject({ n: BATCH, versions: 1, stores: 2 })
    }
  })

  it("a set whose promise has resolved survives a SIGKILL right after it", async () => {
    for (const durability of ["relaxed", "strict", "relaxed"]) {
      const filename = freshFile()
      const target = 20 + Math.floor(Math.random() * 200)
      const { child, lines } = await startUntil(
        [fixture("ack-writer.mjs"), filename, durability],
        (line) => Number(line) >= target
      )
      await kill(child)
      const acknowledged = Number(lines[lines.length - 1])
      expect(acknowledged).toBeGreaterThanOrEqual(target)
      const client = open({ filename })
      const values = await client.getMany(Array.from({ length: acknowledged + 1 }, (_, i) => `k${i}`))
      await client.close()
      expect(values.size).toBe(acknowledged + 1)
      for (let i = 0; i <= acknowledged; i++) expect(values.get(`k${i}`)).toBe(i)
    }
  })

  it("checkpoints run on a worker thread that never keeps the process alive, and a clean close removes the WAL", () => {
    // 3,000 commits are enough to start the checkpoint worker; the script neither closes nor waits.
    const filename = freshFile()
    // A CommonJS script importing the module (an ES module entry hid the bug this test found: a 'message' listener
    // added after unref() refs the worker again, and the process never exited).
    const script = (
      close: boolean
    ) => `import(${JSON.stringify(new URL("../dist/promise.js", import.meta.url).href)}).then(async ({ open }) => {
      const c = open({ filename: ${JSON.stringify(filename)} })
      for (let i = 0; i < 3000; i++) await c.set("k" + i, { i, pad: "x".repeat(200) })
      ${close ? "await c.close()" : ""}
      process.stdout.write("wrote\\n")
    })`
    for (const close of [false, true]) {
      const writer = spawnSync(process.execPath, ["-e", script(close)], {
        encoding: "utf8",
        timeout: 30_000
      })
      expect({ status: writer.status, signal: writer.signal, stderr: writer.stderr }).toEqual({
        status: 0,
        signal: null,
        stderr: ""
      })
      expect(writer.stdout).toBe("wrote\n")
    }
    expect(fs.existsSync(`${filename}-wal`)).toBe(false)
    const db = new Database(filename, { readonly: true })
    expect(db.prepare("SELECT count(*) FROM runtime_storage").pluck().get()).toBe(3000)
    db.close()
  })

  it("truncates the WAL after a burst of writes made while a reader held an old snapshot", async () => {
    const filename = freshFile()
    const client = open({ filename })
    await client.set("seed", 1)
    const reader = new Database(filename)
    reader.exec("BEGIN")
    reader.prepare("SELECT count(*) FROM runtime_storage").get()
    const big = "x".repeat(10_000)
    for (let i = 0; i < 10; i++) {
      await client.setMany(Array.from({ length: 200 }, (_, j) => [`burst:${i}:${j}`, big] as const))
    }
    const grown = fs.statSync(`${filename}-wal`).size
    expect(grown).toBeGreaterThan(16 * 1024 * 1024)
    reader.exec("COMMIT")
    reader.close()
    // The next commit asks for a checkpoint of the whole WAL (no reader holds it now; the checkpoint runs on a worker
    // thread), and the first commit after it restarts and truncates the WAL.
    const deadline = Date.now() + 10_000
    let size = fs.statSync(`${filename}-wal`).size
    for (let i = 0; size > 4 * 1024 * 1024 && Date.now() < deadline; i++) {
      await client.set(`after:${i}`, i)
      await sleep(20)
      size = fs.statSync(`${filename}-wal`).size
    }
    expect(size).toBeLessThanOrEqual(4 * 1024 * 1024)
    expect(await client.size()).toBeGreaterThan(2000 * 10_000)
    await client.close()
  })
})

describe("several processes", () => {
  it("four processes incrementing counters (update, atomic check-and-set) and writing keys lose nothing, no SQLITE_BUSY", async () => {
    const filename = freshFile()
    await countersAcrossProcesses(filename, 150, () => open({ filename }))
    expect(integrity(filename)).toBe("ok")
  })

  it("a getMany of more keys than one statement takes never sees half of another process's batch", async () => {
    const filename = freshFile()
    const SIZE = 1200
    const { child } = await startUntil(
      [fixture("round-writer.mjs"), filename, String(SIZE)],
      (line) => line === "ready"
    )
    const client = open({ filename })
    const keys = Array.from({ length: SIZE }, (_, i) => `r${String(i).padStart(5, "0")}`)
    let reads = 0
    const rounds = new Set<unknown>()
    try {
      const until = performance.now() + 1500
      while (performance.now() < until) {
        const values = new Set((await client.getMany(keys)).values())
        // Concurrent gets after the first of a tick are answered by one getMany: they agree with each other too.
        const gets = new Set((await Promise.all(keys.map((key) => client.get(key)))).slice(1))
        expect(values.size).toBe(1)
        expect(gets.size).toBe(1)
        for (const value of values) rounds.add(value)
        reads++
        await new Promise((resolve) => setImmediate(resolve))
      }
    } finally {
      await kill(child)
      await client.close()
    }
    // The writer made progress while we read, so the reads really raced its batches.
    expect(reads).toBeGreaterThan(5)
    expect(rounds.size).toBeGreaterThan(1)
  })

  it("a write lock held past the busy timeout fails writes with WriteFailed (9002) in about the timeout", async () => {
    const filename = freshFile()
    const client = open({ filename, busyTimeout: 300 })
    await client.set("k", "before")
    const holder = new Database(filename)
    holder.exec("BEGIN IMMEDIATE")
    try {
      for (const write of [
        () => client.set("k", "after"),
        () => client.setMany({ a: 1 }),
        () => client.update("k", () => 1)
      ]) {
        const started = performance.now()
        const error = await write().catch((error: unknown) => error)
        const elapsed = performance.now() - started
        expect(error).toMatchObject({ _tag: "WriteFailed", code: 9002 })
        expect((error as { sqliteCode: string }).sqliteCode).toMatch(/^SQLITE_BUSY/)
        expect(elapsed).toBeGreaterThanOrEqual(250)
        expect(elapsed).toBeLessThan(300 + 1500)
      }
      // Reads go on while another connection writes (WAL).
      expect(await client.get("k")).toBe("before")
    } finally {
      holder.exec("ROLLBACK")
      holder.close()
    }
    await client.set("k", "after")
    expect(await client.get("k")).toBe("after")
    await client.close()
  })

  it("a database locked exclusively past the busy timeout fails the opening call with 9005 SQLITE_BUSY; the client opens once it is free", async () => {
    const filename = freshFile()
    const writer = open({ filename })
    await writer.set("k", 1)
    await writer.close()
    // In WAL mode a reader on an open connection is never blocked by another process; only opening can be, by a
    // connection in exclusive locking mode.
    const holder = new Database(filename)
    holder.pragma("locking_mode = EXCLUSIVE")
    holder.exec("BEGIN EXCLUSIVE")
    holder.prepare("UPDATE runtime_storage SET updated_at = updated_at").run()
    const client = open({ filename, busyTimeout: 300 })
    try {
      const started = performance.now()
      const error = await client.get("k").catch((error: unknown) => error)
      const elapsed = performance.now() - started
      expect(error).toMatchObject({ _tag: "DatabaseError", code: 9005 })
      expect((error as { sqliteCode: string }).sqliteCode).toMatch(/^SQLITE_BUSY/)
      expect(elapsed).toBeGreaterThanOrEqual(250)
      expect(elapsed).toBeLessThan(300 + 1500)
    } finally {
      holder.exec("COMMIT")
      holder.close()
    }
    expect(await client.get("k")).toBe(1)
    await client.close()
  })
})

describe("expiry across processes", () => {
  it("entries that an exited process wrote to expire are swept by a running one, whose watchers hear of it", async () => {
    const filename = freshFile()
    const client = open({ filename })
    await client.set("stays", 1)
    const since = (await client.getEntry("stays"))!.version
    const writer = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { open } from ${JSON.stringify(new URL("../dist/promise.js", import.meta.url).href)}
         const c = open({ filename: ${JSON.stringify(filename)} })
         await c.setMany({ a: 1, b: 2 }, { expireIn: 200 })
         await c.close()`
      ],
      { encoding: "utf8", timeout: 20_000 }
    )
    expect(writer.stderr).toBe("")
    const seen: Array<string> = []
    for await (const change of client.watch({}, { since })) {
      seen.push(
        `${change.type} ${change.type === "clear" ? "" : change.key}${change.type === "remove" && change.expired ? " expired" : ""}`
      )
      if (seen.length === 4) break
    }
    expect(seen).toEqual(["set a", "set b", "remove a expired", "remove b expired"])
    const db = new Database(filename, { readonly: true })
    expect(db.prepare("SELECT key FROM runtime_storage").pluck().all()).toEqual(["stays"])
    db.close()
    await client.close()
  }, 20_000)
})

describe("the change feed across processes", () => {
  it("four writers (one killed and restarted) and a watcher killed and resumed: the watcher sees the log exactly, and replaying it gives the data", async () => {
    const filename = freshFile()
    const setup = open({ filename })
    await setup.set("created", true, { store: "other" })
    await setup.close()
    await feedAcrossProcesses(filename, async () => {
      const db = new Database(filename, { readonly: true })
      const log = db
        .prepare(
          "SELECT version, kind, key, value FROM runtime_storage_changes WHERE store = 'f1' AND kind > 0 ORDER BY seq"
        )
        .all() as Array<LogRow>
      const stored = db.prepare("SELECT key, value FROM runtime_storage WHERE store = 'f1'").all() as Array<StoredRow>
      db.close()
      return { log, stored }
    })
    expect(integrity(filename)).toBe("ok")
  })
})

describe("one process, many concurrent calls", () => {
  it("batches never interleave and no reader sees half a batch", async () => {
    const client = open({ filename: freshFile() })
    // Connected first, so the calls below run as they are made rather than queued behind the opening.
    await client.keys()
    const BATCHES = 40
    const SIZE = 50
    const writes = Array.from({ length: BATCHES }, (_, batch) =>
      client.setMany(Array.from({ length: SIZE }, (_, j) => [`b${batch}:${j}`, batch] as const))
    )
    const reads = Array.from({ length: BATCHES }, () => client.entries())
    const snapshots = await Promise.all(
      [...writes, ...reads].map((promise, index) => promise.then((value) => [index, value] as const))
    )
    for (const [, value] of snapshots) {
      if (!Array.isArray(value)) continue
      const perBatch = new Map<unknown, number>()
      for (const entry of value as Array<{ value: unknown }>)
        perBatch.set(entry.value, (perBatch.get(entry.value) ?? 0) + 1)
      for (const count of perBatch.values()) expect(count).toBe(SIZE)
    }
    expect(await client.keys()).toHaveLength(BATCHES * SIZE)
    await client.close()
  })
})

describe("faults", () => {
  const expectUntouched = async (filename: string, content: Buffer, code: number) => {
    const client = open({ filename })
    for (const call of [client.get("k"), client.set("k", 1), client.keys()]) {
      await expect(call).rejects.toMatchObject({ _tag: "DatabaseError", code })
    }
    await client.close()
    expect(fs.readFileSync(filename).equals(content)).toBe(true)
    expect(fs.existsSync(`${filename}-wal`)).toBe(false)
  }

  it("a zero-length file is refused with 9005 and left as it is", async () => {
    const filename = freshFile()
    fs.mkdirSync(path.dirname(filename), { recursive: true })
    fs.writeFileSync(filename, "")
    await expectUntouched(filename, Buffer.alloc(0), 9005)
  })

  it("a truncated database is refused with 9005 and left as it is", async () => {
    const filename = freshFile()
    const client = open({ filename })
    await client.setMany(Array.from({ length: 2000 }, (_, i) => [`k${i}`, "v".repeat(200)] as const))
    await client.close()
    const whole = fs.readFileSync(filename)
    const truncated = whole.subarray(0, Math.floor(whole.length / 3))
    fs.writeFileSync(filename, truncated)
    const reopened = open({ filename })
    const error = await reopened
      .getMany(Array.from({ length: 2000 }, (_, i) => `k${i}`))
      .catch((error: unknown) => error)
    expect(error).toMatchObject({ _tag: "DatabaseError", code: 9005 })
    expect((error as { sqliteCode: string }).sqliteCode).toMatch(/^SQLITE_CORRUPT/)
    await reopened.close()
    expect(fs.readFileSync(filename).equals(truncated)).toBe(true)
  })

  it("a file that is not SQLite is refused with 9005 and left as it is", async () => {
    const filename = freshFile()
    fs.mkdirSync(path.dirname(filename), { recursive: true })
    const content = Buffer.from('{"settings": "this is JSON, not SQLite"}\n'.repeat(300))
    fs.writeFileSync(filename, content)
    await expectUntouched(filename, content, 9005)
  })

  const canRunAsNobody = process.getuid?.() === 0

  /** A database holding k = "stored", in a directory an unprivileged user can reach, owned by that user. */
  const databaseForNobody = (): string => {
    // Not under the test's temporary directory, which is private (0700) to root.
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-ro-"))
    cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }))
    fs.chmodSync(base, 0o755)
    const filename = path.join(base, "app", "storage.db")
    execFileSync(process.execPath, [
      "--input-type=module",
      "-e",
      `import { open } from ${JSON.stringify(new URL("../dist/promise.js", import.meta.url).href)}; const c = open({ filename: ${JSON.stringify(filename)} }); await c.set("k", "stored"); await c.close()`
    ])
    fs.chownSync(path.dirname(filename), 65534, 65534)
    fs.chownSync(filename, 65534, 65534)
    return filename
  }
  const runAsNobody = (filename: string) => {
    const run = spawnSync(process.execPath, [fixture("readonly-user.mjs"), filename], {
      uid: 65534,
      gid: 65534,
      encoding: "utf8"
    })
    expect(run.stderr).toBe("")
    return JSON.parse(run.stdout)
  }

  it.runIf(canRunAsNobody)(
    "a read-only file (unprivileged user): reads work, writes fail with 9002 SQLITE_READONLY",
    () => {
      const filename = databaseForNobody()
      fs.chmodSync(filename, 0o400)
      const before = fs.readFileSync(filename)
      const result = runAsNobody(filename)
      expect(result.get).toEqual({ ok: "stored" })
      expect(result.keys).toEqual({ ok: ["k"] })
      for (const write of ["set", "setMany", "remove", "update"]) {
        expect(result[write], write).toMatchObject({ code: 9002, tag: "WriteFailed" })
        expect(result[write].sqliteCode, write).toMatch(/^SQLITE_READONLY/)
      }
      expect(fs.readFileSync(filename).equals(before)).toBe(true)
    }
  )

  it.runIf(canRunAsNobody)(
    "a read-only directory (unprivileged user): every call is a coded error, nothing changes",
    () => {
      const filename = databaseForNobody()
      fs.chmodSync(filename, 0o400)
      fs.chmodSync(path.dirname(filename), 0o500)
      const before = fs.readFileSync(filename)
      const result = runAsNobody(filename)
      // SQLite cannot read a WAL database whose -shm file it cannot create, so even reads fail, with a coded error.
      for (const call of ["get", "keys", "set", "setMany", "remove", "update"]) {
        expect(result[call], call).toMatchObject({
          code: 9005,
          tag: "DatabaseError",
          sqliteCode: "SQLITE_READONLY_DIRECTORY"
        })
      }
      expect(fs.readFileSync(filename).equals(before)).toBe(true)
      expect(fs.readdirSync(path.dirname(filename))).toEqual(["storage.db"])
    }
  )

  describe.runIf(process.getuid?.() === 0)("a full disk (a 2 MiB tmpfs)", () => {
    const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-full-"))
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint]).status === 0
    cleanups.push(() => {
      if (mounted) spawnSync("umount", [mountPoint])
      fs.rmSync(mountPoint, { recursive: true, force: true })
    })

    it("mounts its tmpfs", () => {
      expect(mounted).toBe(true)
    })

    /** Fills the disk through `write` until it fails; checks the failure and that everything before it is intact. */
    const fillUp = async (
      filename: string,
      write: (key: string, value: string) => Promise<unknown>,
      batch: (entries: Array<readonly [string, string]>) => Promise<unknown>,
      read: (keys: Array<string>) => Promise<ReadonlyMap<string, unknown>>
    ) => {
      const filler = path.join(mountPoint, `filler-${fileCounter++}`)
      fs.writeFileSync(filler, Buffer.alloc(256 * 1024))
      const value = "v".repeat(20_000)
      const written: Array<string> = []
      let failure: unknown
      for (let i = 0; i < 500 && failure === undefined; i++) {
        try {
          await write(`k${i}`, value)
          written.push(`k${i}`)
        } catch (error) {
          failure = error
        }
      }
      expect(failure).toMatchObject({ _tag: "WriteFailed", code: 9002, sqliteCode: "SQLITE_FULL" })
      expect(written.length).toBeGreaterThan(5)
      const batchFailure = await batch(Array.from({ length: 20 }, (_, i) => [`batch${i}`, value] as const)).catch(
        (error: unknown) => error
      )
      expect(batchFailure).toMatchObject({ code: 9002, sqliteCode: "SQLITE_FULL" })
      const back = await read([...written, "batch0", "batch19"])
      expect(back.size).toBe(written.length)
      expect(integrity(filename)).toBe("ok")
      fs.rmSync(filler)
      await write("after-space-freed", "ok")
      expect((await read(["after-space-freed"])).get("after-space-freed")).toBe("ok")
    }

    it.runIf(mounted)(
      "layerSqlite: the failing write is 9002 SQLITE_FULL, earlier data is intact, writes work once space is freed",
      async () => {
        const filename = path.join(mountPoint, "sqlite", "storage.db")
        const client = open({ filename })
        await fillUp(
          filename,
          (key, value) => client.set(key, value),
          (entries) => client.setMany(entries),
          (keys) => client.getMany(keys)
        )
        await client.close()
        fs.rmSync(path.dirname(filename), { recursive: true })
      }
    )

    it.runIf(mounted)("layerSql: the same, although @effect/sql reports a failed COMMIT as a defect", async () => {
      const filename = path.join(mountPoint, "sql", "storage.db")
      fs.mkdirSync(path.dirname(filename))
      const layer = layerSql().pipe(Layer.provide(SqliteClient.layer({ filename })))
      await Effect.runPromise(
        Effect.gen(function* () {
          const storage = yield* Storage
          const run = <A>(effect: Effect.Effect<A, StorageError>) =>
            Effect.runPromise(Effect.either(effect)).then((result) =>
              result._tag === "Right" ? result.right : Promise.reject(result.left)
            )
          yield* Effect.promise(() =>
            fillUp(
              filename,
              (key, value) => run(storage.set(key, value)),
              (entries) => run(storage.setMany(entries)),
              (keys) => run(storage.getMany(keys))
            )
          )
        }).pipe(Effect.provide(layer))
      )
    })
  })
})
