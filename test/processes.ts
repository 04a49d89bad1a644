/**
 * Child processes for the tests: fixtures started and killed, their output read line by line, and the change feed's
 * cross-process check, run on SQLite and on PostgreSQL alike.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect } from "vitest"
import type { StorageClient } from "../src/promise.js"

export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts a fixture; resolves with the child once `ready(line)` is true for a line of its output. */
export const startUntil = (args: ReadonlyArray<string>, ready: (line: string) => boolean) =>
  new Promise<{ child: ChildProcess; lines: Array<string> }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
    const lines: Array<string> = []
    let buffer = ""
    let stderr = ""
    let resolved = false
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk
      const parts = buffer.split("\n")
      buffer = parts.pop()!
      for (const line of parts) {
        lines.push(line)
        if (!resolved && ready(line)) {
          resolved = true
          resolve({ child, lines })
        }
      }
    })
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.on("exit", (code, signal) => {
      if (!resolved) reject(new Error(`fixture exited (${code ?? signal}) before it was ready: ${stderr}`))
    })
  })

export const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/** A process that prints lines; `lines` holds every whole line it printed. */
export const run = (args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
  const lines: Array<string> = []
  let buffer = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk
    const parts = buffer.split("\n")
    buffer = parts.pop()!
    lines.push(...parts)
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, lines, exited, stderr: () => stderr }
}

/**
 * Four processes (counter.mjs) each increment a counter with update() and another with atomic() check-and-set
 * retried until it commits, `count` times, and write keys of their own: none of their calls may fail, and nothing
 * may be lost (read with the client `open` gives).
 */
export const countersAcrossProcesses = async (
  target: string,
  count: number,
  open: () => StorageClient
): Promise<void> => {
  const PROCESSES = 4
  const results = await Promise.all(
    Array.from({ length: PROCESSES }, async (_, id) => {
      const child = run([fixture("counter.mjs"), target, String(id), String(count)])
      expect(await child.exited, child.stderr()).toBe(0)
      return JSON.parse(child.lines.join("")) as { failures: Array<string>; stale: number }
    })
  )
  for (const { failures } of results) expect(failures).toEqual([])
  const client = open()
  expect(await client.get("counter")).toBe(PROCESSES * count)
  expect(await client.get("cas-counter")).toBe(PROCESSES * count)
  const keys = await client.keys()
  expect(keys.filter((key) => key.startsWith("p"))).toHaveLength(PROCESSES * count)
  expect(keys.filter((key) => key.startsWith("batch:"))).toHaveLength(PROCESSES * (count / 10) * 2)
  await client.close()
}

/** A change as feed-watcher.mjs prints it. */
interface Printed {
  readonly type: string
  readonly key?: string
  readonly value?: unknown
  readonly version: string
}

/** A record of the change log of the store "f1", as the database holds it (the value as its JSON text). */
export interface LogRow {
  readonly version: number | string
  readonly kind: number
  readonly key: string | null
  readonly value: string | null
}
export interface StoredRow {
  readonly key: string
  readonly value: string
}

/**
 * Four writers (feed-writer.mjs, one killed at a random moment and replaced) write the store "f1" of `target` (a
 * SQLite file, or the JSON of open() options), while a watcher (feed-watcher.mjs) killed mid-way resumes from the
 * last version it printed. Checks that the watcher saw exactly the change log of "f1" as `read` reads it from the
 * database at the end (nothing lost, repeated or reordered; each write's changes together and whole; versions
 * increasing), and that replaying it gives what is stored.
 */
export const feedAcrossProcesses = async (
  target: string,
  read: () => Promise<{ readonly log: ReadonlyArray<LogRow>; readonly stored: ReadonlyArray<StoredRow> }>
): Promise<void> => {
  const received: Array<Printed> = []
  const watch = (since: string) => run([fixture("feed-watcher.mjs"), target, since])
  let watcher = watch("0000000000000000")
  const writer = (id: string, ms: number) => run([fixture("feed-writer.mjs"), target, id, String(ms)])
  const writers = ["a", "b", "c", "d"].map((id) => writer(id, 4000))
  // The watcher runs for 1.5 s, and until it has printed something (a loaded machine starts processes slowly).
  await sleep(1500)
  for (let waited = 0; watcher.lines.length === 0 && waited < 10_000; waited += 20) await sleep(20)
  // The watcher is killed mid-way and resumed from the last version it printed.
  await kill(watcher.child)
  received.push(...watcher.lines.map((line) => JSON.parse(line) as Printed))
  expect(received.length).toBeGreaterThan(0)
  watcher = watch(received.at(-1)!.version)
  // A writer is killed at a random moment and another takes its place.
  await sleep(Math.random() * 500)
  await kill(writers[0]!.child)
  const replacement = writer("e", 1500)
  for (const { exited, stderr } of [...writers.slice(1), replacement]) expect(await exited, stderr()).toBe(0)

  const { log, stored } = await read()
  const last = Number(log.at(-1)!.version).toString(16).padStart(16, "0")
  for (
    let waited = 0;
    (watcher.lines.length === 0 || JSON.parse(watcher.lines.at(-1)!).version !== last) && waited < 20_000;
    waited += 20
  ) {
    await sleep(20)
  }
  await kill(watcher.child)
  received.push(...watcher.lines.map((line) => JSON.parse(line) as Printed))

  // Nothing lost, nothing repeated, nothing reordered: what the watcher printed is the log of "f1", record by record.
  const types = ["", "set", "remove", "clear"]
  expect(received.map((change) => [change.version, change.type, change.key ?? null, change.value ?? null])).toEqual(
    log.map((row) => [
      Number(row.version).toString(16).padStart(16, "0"),
      types[row.kind],
      row.key,
      row.value === null ? null : JSON.parse(row.value)
    ])
  )
  expect(received.length).toBeGreaterThan(200)
  // Versions strictly increase from one write to the next; each write's changes come together, and whole: its
  // set records are all of one write, as many as it made.
  const groups = new Map<string, Array<Printed>>()
  let previous = ""
  for (const change of received) {
    if (change.version !== previous) {
      expect(change.version > previous).toBe(true)
      expect(groups.has(change.version)).toBe(false)
      groups.set(change.version, [])
      previous = change.version
    }
    groups.get(change.version)!.push(change)
  }
  for (const changes of groups.values()) {
    const sets = changes.filter((change) => change.type === "set" && typeof change.value === "object")
    const ops = new Set(sets.map((change) => (change.value as { op: string }).op))
    expect(ops.size).toBeLessThanOrEqual(1)
    for (const change of sets) expect(sets).toHaveLength((change.value as { n: number }).n)
  }
  // Replayed on an empty map, the changes give exactly what is stored.
  const replayed = new Map<string, unknown>()
  for (const change of received) {
    if (change.type === "set") replayed.set(change.key!, change.value)
    else if (change.type === "remove") replayed.delete(change.key!)
    else replayed.clear()
  }
  expect(Object.fromEntries([...replayed].sort())).toEqual(
    Object.fromEntries(stored.map((row) => [row.key, JSON.parse(row.value)] as const).sort())
  )
}
