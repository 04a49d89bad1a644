/**
 * `runtime-storage`, the command line: look inside, edit, export, import, back up and watch any app's storage.
 * Built on @effect/cli over the library's Effect API, so every rule of the library (validation, exact JSON, coded
 * errors, locking, versions) holds here too. Bundled into one file (`dist/cli.cjs`) that `bin/runtime-storage.cjs`
 * loads with a V8 code cache, for a fast start.
 */

import * as fs from "node:fs"
import * as path from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { isStorageError, NotFoundError, SerializationError, type StorageError } from "../errors/StorageError.js"
import { layerSqlite } from "../layers/Sqlite.js"
import { type Change, type Selector, Storage, type StorageService } from "../services/Storage.js"
import { backup, doctor, identify } from "./files.js"
import {
  atomicFile,
  CliFailure,
  confirm,
  Exit as ExitStatus,
  type Location,
  readStdin,
  requireExisting,
  resolveFilename,
  type Sink,
  stdout,
  stdoutIsTerminal,
  usage,
  withStdinCopy
} from "./io.js"
import {
  JsonTextProblem,
  jsonText,
  parseDuration,
  parseJsonExactly,
  printable,
  printableJson,
  showBytes,
  showValue,
  table,
  valueField
} from "./text.js"
import { exportStores, importLines, setExpiring } from "./transfer.js"

// ---------------------------------------------------------------------------------------------------------------
// Options shared by the commands

/**
 * A lone `-` (stdin, or a key named "-") in the command line: @effect/cli takes it for the start of an option and
 * stops reading arguments there, so `run` hands it over as this (argv cannot hold NUL), and every argument and
 * option maps it back.
 */
const DASH = "\u0000-"
const undash = (value: string): string => (value === DASH ? "-" : value)
const text = (name: string) => Args.text({ name }).pipe(Args.map(undash))
const textOption = (name: string) => Options.text(name).pipe(Options.map(undash))
const location = {
  app: textOption("app").pipe(
    Options.withDescription("The app's name: its database at the platform's default location"),
    Options.optional
  ),
  file: textOption("file").pipe(Options.withDescription("The database file"), Options.optional),
  busyTimeout: textOption("busy-timeout").pipe(
    Options.withDescription("How long to wait for another process's lock before failing (default 5s)"),
    Options.optional
  )
}
const storeOption = textOption("store").pipe(
  Options.withDescription('The store (default "default")'),
  Options.withDefault("default")
)
const json = Options.boolean("json").pipe(Options.withDescription("Print JSON, for scripts"))
const selectorOptions = {
  prefix: textOption("prefix").pipe(Options.withDescription("Only keys starting with this"), Options.optional),
  start: textOption("start").pipe(Options.withDescription("Only keys >= this"), Options.optional),
  end: textOption("end").pipe(Options.withDescription("Only keys < this"), Options.optional),
  limit: Options.integer("limit").pipe(Options.withDescription("At most this many keys"), Options.optional),
  reverse: Options.boolean("reverse").pipe(Options.withDescription("Descending key order"))
}
const keyArg = text("KEY")

type Failure = StorageError | CliFailure

/** Runs `f` on the Storage of the database the options name; a command that only reads needs it to exist. */
const withStorage = <A, R>(
  where: Location & { readonly busyTimeout: Option.Option<string> },
  mode: "read" | "write",
  f: (storage: StorageService, filename: string) => Effect.Effect<A, Failure, R>
): Effect.Effect<A, Failure, R> =>
  Effect.gen(function* () {
    const filename = yield* resolveFilename(where)
    if (mode === "read") yield* requireExisting(filename)
    let busyTimeout = Option.none<Duration.Duration>()
    if (Option.isSome(where.busyTimeout)) {
      busyTimeout = Duration.decodeUnknown(parseDuration(where.busyTimeout.value))
      if (Option.isNone(busyTimeout)) {
        return yield* Effect.fail(
          usage(`--busy-timeout must be a duration such as 500ms or 10s, got ${where.busyTimeout.value}`)
        )
      }
    }
    return yield* Effect.flatMap(Storage, (storage) => f(storage, filename)).pipe(
      Effect.provide(
        layerSqlite(Option.isSome(busyTimeout) ? { filename, busyTimeout: busyTimeout.value } : { filename })
      )
    )
  })

const print = (text: string | Uint8Array) => stdout.write(text)
const printLine = (text: string) => stdout.write(`${text}\n`)
const optional = <A>(option: Option.Option<A>): A | undefined => Option.getOrUndefined(option)

const selectorOf = (
  store: string,
  options: {
    readonly prefix: Option.Option<string>
    readonly start: Option.Option<string>
    readonly end: Option.Option<string>
    readonly limit: Option.Option<number>
    readonly reverse: boolean
  }
): Selector => ({
  store,
  prefix: optional(options.prefix),
  start: optional(options.start),
  end: optional(options.end),
  limit: optional(options.limit),
  reverse: options.reverse
})

/** A JSON value indented for a person, written exactly (`-0` stays `-0`). */
const pretty = (value: unknown, indent = ""): string => {
  const inner = `${indent}  `
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]"
    return `[\n${value.map((item) => inner + pretty(item, inner)).join(",\n")}\n${indent}]`
  }
  if (typeof value === "object" && value !== null && !(value instanceof Uint8Array)) {
    const entries = Object.entries(value)
    if (entries.length === 0) return "{}"
    return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${pretty(item, inner)}`).join(",\n")}\n${indent}}`
  }
  return jsonText(value)
}

/** "1 entry", "2 entries". */
const entriesText = (n: number): string => `${n} ${n === 1 ? "entry" : "entries"}`

const iso = (ms: number | null): string => (ms === null ? "never" : new Date(ms).toISOString())

// ---------------------------------------------------------------------------------------------------------------
// Commands

const stores = Command.make("stores", { ...location, json }, ({ json, ...where }) =>
  withStorage(where, "read", (storage) =>
    Effect.gen(function* () {
      const rows = yield* storage.stores()
      if (json) return yield* printLine(JSON.stringify(rows))
      yield* print(
        table(
          ["STORE", "KEYS", "SIZE"],
          rows.map((row) => [row.store, String(row.count), showBytes(row.size)]),
          [1, 2]
        )
      )
    })
  )
).pipe(Command.withDescription("The stores, with their key counts and sizes"))

const get = Command.make(
  "get",
  {
    key: keyArg,
    ...location,
    store: storeOption,
    json,
    meta: Options.boolean("meta").pipe(Options.withDescription("Add the version, timestamps and expiry"))
  },
  ({ key, store, json, meta, ...where }) =>
    withStorage(where, "read", (storage) =>
      Effect.gen(function* () {
        if (meta) {
          const entry = yield* storage.getEntry(key, { store })
          if (Option.isNone(entry)) return yield* Effect.fail(new NotFoundError({ key, store }))
          const { value, version, createdAt, updatedAt, expiresAt } = entry.value
          if (json) {
            return yield* printLine(
              `{"store":${JSON.stringify(store)},"key":${JSON.stringify(key)},${valueField(value)},"version":${JSON.stringify(version)},"createdAt":${createdAt},"updatedAt":${updatedAt},"expiresAt":${expiresAt}}`
            )
          }
          return yield* print(
            table(
              ["FIELD", "VALUE"],
              [
                ["store", store],
                ["key", key],
                ["version", version],
                ["created", iso(createdAt)],
                ["updated", iso(updatedAt)],
                ["expires", iso(expiresAt)],
                ["value", showValue(value)]
              ]
            )
          )
        }
        const value = yield* storage.get(key, { store })
        if (Option.isNone(value)) return yield* Effect.fail(new NotFoundError({ key, store }))
        const found = value.value
        if (found instanceof Uint8Array) {
          // Bytes go to a file or pipe as they are; a terminal gets a description instead.
          if (stdoutIsTerminal() && !json) return yield* printLine(`<${found.byteLength} bytes: redirect to a file>`)
          if (json) return yield* printLine(`{${valueField(found)}}`)
          return yield* print(found)
        }
        yield* printLine(json ? jsonText(found) : printableJson(pretty(found)))
      })
    )
).pipe(Command.withDescription("Print a key's value as JSON (absent: error 9001); bytes are written as they are"))

const set = Command.make(
  "set",
  {
    key: keyArg,
    value: text("JSON").pipe(Args.withDescription("The value as JSON, or - to read it from stdin")),
    ...location,
    store: storeOption,
    expireIn: textOption("expire-in").pipe(
      Options.withDescription('Expire after this long: 500ms, 30s, 10m, 2h, 7d, or "10 minutes"'),
      Options.optional
    )
  },
  ({ key, value, store, expireIn, ...where }) =>
    withStorage(where, "write", (storage) =>
      Effect.gen(function* () {
        const text = value === "-" ? yield* readStdin : value
        const parsed = parseJsonExactly(text)
        if (parsed instanceof JsonTextProblem) {
          const hint = parsed.syntax ? ` (a string needs JSON quotes: '${JSON.stringify(text)}')` : ""
          return yield* Effect.fail(
            new SerializationError({ key, store, path: "$", reason: `${parsed.reason}${hint}` })
          )
        }
        // A text that is not one of the short forms goes to the library as it is: it reads Effect's durations
        // ("10 minutes") and refuses anything else with 9004.
        const expiry = Option.map(expireIn, (text) => parseDuration(text) as Duration.DurationInput)
        yield* storage.set(key, parsed, Option.isSome(expiry) ? { store, expireIn: expiry.value } : { store })
      })
    )
).pipe(Command.withDescription("Store a JSON value under a key"))

const rm = Command.make(
  "rm",
  { keys: text("KEY").pipe(Args.atLeast(1)), ...location, store: storeOption, json },
  ({ keys, store, json, ...where }) =>
    withStorage(where, "read", (storage) =>
      Effect.gen(function* () {
        const removed = yield* storage.deleteMany(keys, { store })
        yield* printLine(json ? JSON.stringify({ removed }) : `removed ${removed} of ${new Set(keys).size}`)
      })
    )
).pipe(Command.withDescription("Remove keys (all or none); prints how many existed"))

const has = Command.make(
  "has",
  { key: keyArg, ...location, store: storeOption, json },
  ({ key, store, json, ...where }) =>
    withStorage(where, "read", (storage) =>
      Effect.gen(function* () {
        const present = yield* storage.has(key, { store })
        if (json) yield* printLine(String(present))
        if (!present) return yield* Effect.fail(new CliFailure({ exit: ExitStatus.Absent, message: "" }))
      })
    )
).pipe(Command.withDescription("Exit status 0 when the key is present, 1 when it is absent"))

const KEYS_BATCH = 1000

const keys = Command.make(
  "keys",
  { ...location, store: storeOption, json, ...selectorOptions },
  ({ app, file, busyTimeout, store, json, ...options }) =>
    withStorage({ app, file, busyTimeout }, "read", (storage) =>
      Effect.gen(function* () {
        // Read in batches, each starting after the last key read: memory stays bounded for any store.
        const selector = selectorOf(store, options)
        let left = selector.limit ?? Number.POSITIVE_INFINITY
        let last: string | undefined
        let first = true
        if (json) yield* print("[")
        while (left > 0) {
          // Forward, the next batch starts at the last key read (a bound may be as long as a key, no longer)
          // and drops it; backward, it ends before it.
          const want = Math.min(left, KEYS_BATCH)
          const forwardAgain = last !== undefined && !selector.reverse
          const read = yield* storage.keys({
            ...selector,
            limit: forwardAgain ? want + 1 : want,
            ...(last === undefined ? {} : selector.reverse ? { end: last } : { start: last })
          })
          const batch = forwardAgain && read[0] === last ? read.slice(1) : read.slice(0, want)
          if (batch.length === 0) break
          if (json) {
            yield* print((first ? "" : ",") + batch.map((key) => JSON.stringify(key)).join(","))
          } else {
            yield* print(`${batch.map(printable).join("\n")}\n`)
          }
          first = false
          left -= batch.length
          last = batch[batch.length - 1]
          if (batch.length < KEYS_BATCH) break
        }
        if (json) yield* print("]\n")
      })
    )
).pipe(Command.withDescription("List keys in code point order"))

const entries = Command.make(
  "entries",
  { ...location, store: storeOption, json, ...selectorOptions },
  ({ app, file, busyTimeout, store, json, ...options }) =>
    withStorage({ app, file, busyTimeout }, "read", (storage) =>
      Effect.gen(function* () {
        let first = true
        if (json) yield* print("[")
        yield* storage.list(selectorOf(store, options)).pipe(
          Stream.runForEachChunk((chunk) => {
            const rows = Array.from(chunk)
            const text = json
              ? (first ? "" : ",") +
                rows.map((entry) => `{"key":${JSON.stringify(entry.key)},${valueField(entry.value)}}`).join(",")
              : rows
                  .map((entry) => `${printable(entry.key)}\t${printable(showValue(entry.value))}`)
                  .join("\n")
                  .concat("\n")
            first = false
            return print(text)
          })
        )
        if (json) yield* print("]\n")
      })
    )
).pipe(Command.withDescription("List keys with their values (tab-separated; --json: an array)"))

const count = Command.make(
  "count",
  { ...location, store: storeOption, json, ...selectorOptions },
  ({ app, file, busyTimeout, store, json: _json, ...options }) =>
    withStorage({ app, file, busyTimeout }, "read", (storage) =>
      Effect.flatMap(storage.count(selectorOf(store, options)), (n) => printLine(String(n)))
    )
).pipe(Command.withDescription("Count the selected keys"))

const size = Command.make("size", { ...location, store: storeOption, json }, ({ store, json, ...where }) =>
  withStorage(where, "read", (storage) =>
    Effect.flatMap(storage.size({ store }), (bytes) =>
      printLine(json ? String(bytes) : `${bytes} (${showBytes(bytes)})`)
    )
  )
).pipe(Command.withDescription("The store's size: UTF-8 bytes of its values as JSON"))

const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("Do not ask for confirmation"))

const clear = Command.make("clear", { ...location, store: storeOption, yes }, ({ store, yes, ...where }) =>
  withStorage(where, "read", (storage, filename) =>
    Effect.gen(function* () {
      const n = yield* storage.count({ store })
      if (!yes) {
        yield* confirm(
          `Remove every entry (${entriesText(n)}) of store ${JSON.stringify(store)} in ${filename}?`,
          "--yes"
        )
      }
      yield* storage.clear({ store })
      yield* printLine(`removed ${entriesText(n)}`)
    })
  )
).pipe(Command.withDescription("Remove every entry of a store (asks first; --yes without a terminal)"))

const exportCommand = Command.make(
  "export",
  {
    ...location,
    store: textOption("store").pipe(
      Options.withDescription("Only this store (default: every store)"),
      Options.optional
    ),
    prefix: selectorOptions.prefix,
    output: textOption("output").pipe(
      Options.withAlias("o"),
      Options.withDescription("Write to this file (made whole or not at all) instead of stdout"),
      Options.optional
    )
  },
  ({ store, prefix, output, ...where }) =>
    withStorage(where, "read", (storage) =>
      Effect.gen(function* () {
        const all = yield* storage.stores()
        const chosen = Option.isSome(store) ? [store.value] : all.map((row) => row.store)
        const total = all.filter((row) => chosen.includes(row.store)).reduce((sum, row) => sum + row.count, 0)
        const run = (sink: Sink) => exportStores(storage, chosen, optional(prefix), sink, total)
        if (Option.isNone(output)) return yield* run(stdout)
        const written = yield* Effect.scoped(
          Effect.gen(function* () {
            const file = yield* atomicFile(path.resolve(output.value))
            const n = yield* run(file)
            yield* file.commit
            return n
          })
        )
        process.stderr.write(`exported ${entriesText(written)} to ${output.value}\n`)
      })
    )
).pipe(Command.withDescription("Write entries as JSON lines: {store, key, value | bytes, expiresAt?}"))

const importCommand = Command.make(
  "import",
  {
    source: text("FILE").pipe(Args.withDescription("JSON lines as export writes them, or - for stdin")),
    ...location,
    store: storeOption.pipe(Options.withDescription('The store of lines that name none (default "default")'))
  },
  ({ source, store, ...where }) =>
    source === "-"
      ? withStdinCopy((copy) => importInto(where, copy, store, "stdin"))
      : Effect.zipRight(requireReadable(source), importInto(where, source, store, source))
).pipe(Command.withDescription("Read JSON lines (as export writes them) in one transaction: all or nothing"))

const importInto = (
  where: Location & { readonly busyTimeout: Option.Option<string> },
  source: string,
  store: string,
  label: string
) =>
  withStorage(where, "write", (storage) =>
    Effect.gen(function* () {
      const done = yield* importLines(storage, source, store, label)
      process.stderr.write(
        `imported ${entriesText(done.entries)} into ${done.stores} store${done.stores === 1 ? "" : "s"}${done.expired > 0 ? `; ${done.expired} already expired, not written` : ""}\n`
      )
    })
  )

const requireReadable = (file: string): Effect.Effect<void, CliFailure> =>
  Effect.try({
    try: () => fs.accessSync(file, fs.constants.R_OK),
    catch: () => new CliFailure({ exit: ExitStatus.Usage, message: `Cannot read ${file}` })
  })

const backupCommand = Command.make(
  "backup",
  {
    destination: text("DEST"),
    ...location,
    force: Options.boolean("force").pipe(Options.withDescription("Replace DEST if it exists"))
  },
  ({ destination, force, ...where }) =>
    Effect.gen(function* () {
      const filename = yield* resolveFilename(where)
      yield* requireExisting(filename)
      yield* identify(filename)
      yield* backup(filename, path.resolve(destination), force)
      process.stderr.write(`backed up ${filename} to ${destination}\n`)
    })
).pipe(Command.withDescription("Copy the whole database, consistently, while other processes write (mode 0600)"))

const restore = Command.make("restore", { source: text("SRC"), ...location, yes }, ({ source, yes, ...where }) =>
  Effect.gen(function* () {
    const from = path.resolve(source)
    yield* requireExisting(from)
    const identity = yield* identify(from)
    if (identity.problem !== undefined) {
      return yield* Effect.fail(
        new CliFailure({
          exit: ExitStatus.ofCode(9005),
          message: `error 9005 DatabaseError: ${from} cannot be restored: ${identity.problem}`
        })
      )
    }
    const filename = yield* resolveFilename(where)
    // Read from a copy: opening the backup itself would upgrade its schema and sweep its expired entries.
    const copy = path.join(path.dirname(filename), `.${path.basename(filename)}.${process.pid}.restoring`)
    yield* Effect.acquireUseRelease(
      backup(from, copy, true),
      () =>
        withStorage({ ...where, app: Option.none(), file: Option.some(copy) }, "read", (source) =>
          withStorage(where, "write", (target) =>
            Effect.gen(function* () {
              const incoming = yield* source.stores()
              const current = yield* target.stores()
              const count = (rows: typeof incoming) => rows.reduce((sum, row) => sum + row.count, 0)
              if (!yes) {
                yield* confirm(
                  `Replace the ${entriesText(count(current))} of ${filename} with the ${entriesText(count(incoming))} of ${from}?`,
                  "--yes"
                )
              }
              yield* target.transaction((tx) =>
                Effect.gen(function* () {
                  // Read again inside the transaction: a store another process made meanwhile is cleared too.
                  for (const row of yield* tx.stores()) yield* tx.clear({ store: row.store })
                  for (const row of incoming) {
                    yield* source.list({ store: row.store }, { metadata: true }).pipe(
                      Stream.runForEachChunk((chunk) => {
                        // Entries without expiry in one setMany per chunk; each expiring one to the millisecond.
                        const lasting = Array.from(chunk).filter((entry) => entry.expiresAt === null)
                        return Effect.zipRight(
                          tx.setMany(
                            lasting.map((entry) => [entry.key, entry.value] as const),
                            { store: row.store }
                          ),
                          Effect.forEach(
                            Array.from(chunk).filter((entry) => entry.expiresAt !== null),
                            (entry) => setExpiring(tx, entry.key, entry.value, row.store, entry.expiresAt!),
                            { discard: true }
                          )
                        )
                      })
                    )
                  }
                })
              )
              process.stderr.write(`restored ${entriesText(count(incoming))} into ${filename}\n`)
            })
          )
        ),
      () =>
        Effect.sync(() => {
          for (const suffix of ["", "-wal", "-shm", "-journal"]) fs.rmSync(`${copy}${suffix}`, { force: true })
        })
    )
  })
).pipe(
  Command.withDescription(
    "Replace every store's contents with a backup's, in one transaction (watchers see it; versions are new)"
  )
)

/** Runs `self` holding the process alive (a referenced timer) until it ends. */
const keepAlive = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.sync(() => setInterval(() => undefined, 1 << 30)),
    () => self,
    (timer) => Effect.sync(() => clearInterval(timer))
  )

/** A change as a JSON line. */
const changeLine = (change: Change): string => {
  const head = `{"type":"${change.type}","store":${JSON.stringify(change.store)}`
  const tail = `,"version":${JSON.stringify(change.version)},"last":${change.last}`
  switch (change.type) {
    case "set":
      return `${head},"key":${JSON.stringify(change.key)},${valueField(change.value)}${tail}${change.initial === true ? ',"initial":true' : ""}}\n`
    case "remove":
      return `${head},"key":${JSON.stringify(change.key)}${tail}${change.expired === true ? ',"expired":true' : ""}}\n`
    case "clear":
      return `${head}${tail}}\n`
  }
}

const watch = Command.make(
  "watch",
  {
    ...location,
    store: storeOption,
    key: Options.text("key").pipe(
      Options.withDescription("Only this key (repeat for several)"),
      Options.repeated,
      Options.map((keys) => keys.map(undash))
    ),
    prefix: selectorOptions.prefix,
    since: textOption("since").pipe(
      Options.withDescription("Replay the changes after this version first"),
      Options.optional
    ),
    initial: Options.boolean("initial").pipe(Options.withDescription("Print the current entries first"))
  },
  ({ store, key, prefix, since, initial, ...where }) =>
    withStorage(where, "read", (storage) =>
      storage
        .watch(
          {
            store,
            ...(key.length === 1 ? { key: key[0] } : key.length > 1 ? { keys: key } : {}),
            prefix: optional(prefix)
          },
          { since: optional(since), initial }
        )
        .pipe(
          Stream.runForEachChunk((chunk) => print(Array.from(chunk, changeLine).join(""))),
          // The library never lets a watch alone keep a process alive; here the watch is the process's work.
          keepAlive
        )
    )
).pipe(Command.withDescription("Print changes as JSON lines as they happen, until interrupted"))

const doctorCommand = Command.make("doctor", { ...location, json }, ({ json, ...where }) =>
  Effect.gen(function* () {
    const filename = yield* resolveFilename(where)
    yield* requireExisting(filename)
    const checks = yield* doctor(filename)
    const problems = checks.filter((check) => !check.ok)
    const verdict =
      problems.length === 0
        ? "healthy"
        : `${problems.length} problem${problems.length === 1 ? "" : "s"}: ${problems.map((check) => check.name).join(", ")}`
    if (json) {
      yield* printLine(JSON.stringify({ filename, checks, healthy: problems.length === 0, verdict }))
    } else {
      yield* print(
        `${filename}\n${table(
          ["", "CHECK", "RESULT"],
          checks.map((check) => [check.ok ? "ok" : "!!", check.name, check.detail])
        )}verdict: ${verdict}\n`
      )
    }
    if (problems.length > 0) return yield* Effect.fail(new CliFailure({ exit: ExitStatus.Unhealthy, message: "" }))
  })
).pipe(Command.withDescription("Check the database: integrity, schema, modes, WAL, journal mode"))

const root = Command.make("runtime-storage").pipe(
  Command.withDescription("Look inside, edit, export, import, back up and watch an app's runtime-storage database"),
  Command.withSubcommands([
    stores,
    get,
    set,
    rm,
    has,
    keys,
    entries,
    count,
    size,
    clear,
    exportCommand,
    importCommand,
    backupCommand,
    restore,
    watch,
    doctorCommand
  ])
)

// ---------------------------------------------------------------------------------------------------------------
// Running

/** How a failure ends the process: its line on stderr and its exit status. */
const ending = (cause: Cause.Cause<unknown>): readonly [message: string, status: number] => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof CliFailure) return [error.message, error.exit]
    if (isStorageError(error))
      return [`error ${error.code} ${error._tag}: ${error.message}`, ExitStatus.ofCode(error.code)]
    // @effect/cli has printed what was wrong with the command line.
    if (ValidationError.isValidationError(error)) return ["", ExitStatus.Usage]
  }
  return [`error: unexpected failure: ${Cause.pretty(cause)}`, 70]
}

/**
 * Runs the command line `argv` (as `process.argv`) and ends the process with its status. SIGINT and SIGTERM
 * interrupt the command (a `watch` ends; a transaction in progress rolls back) before the process exits.
 */
export const run = (argv: ReadonlyArray<string>, version: string): void => {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    // The reader went away (`| head`): stop quietly, as Unix tools do.
    if (error.code === "EPIPE") process.exit(0)
    // Any other failure to write the output (a full disk behind a redirect) is the command's failure.
    fs.writeSync(2, `error 9000 Generic: Could not write to stdout: ${error.message}\n`)
    process.exit(ExitStatus.ofCode(9000))
  })
  const args = argv.map((arg, index) => (index >= 2 && arg === "-" ? DASH : arg))
  const program = Command.run(root, { name: "runtime-storage", version })(args).pipe(
    Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer))
  )
  const fiber = Effect.runFork(program)
  let signal: NodeJS.Signals | undefined
  const onSignal = (received: NodeJS.Signals) => {
    signal = received
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  fiber.addObserver((exit) => {
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
    let status = 0
    if (Exit.isFailure(exit)) {
      if (Cause.isInterruptedOnly(exit.cause)) {
        status = signal === "SIGTERM" ? 143 : 130
      } else {
        const [message, code] = ending(exit.cause)
        // Written synchronously, so it is whole before the process exits (stderr may be asynchronous).
        if (message !== "") fs.writeSync(2, `${message}\n`)
        status = code
      }
    }
    // Exit once stdout has taken everything written to it.
    process.exitCode = status
    if (process.stdout.writableLength === 0) process.exit(status)
    else process.stdout.once("drain", () => process.exit(status))
  })
}
