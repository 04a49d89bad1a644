/**
 * The command line's input and output: where the database is, how the process ends (a distinct exit status per
 * error code), writing to stdout or a file with backpressure, reading lines, asking for confirmation, and a
 * progress bar on a terminal.
 */

import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import * as Prompt from "@effect/cli/Prompt"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { DatabaseError, GenericError, InvalidKeyError, type StorageError } from "../errors/StorageError.js"
import { appNameProblem, defaultDatabasePath, resolveDefaultFilename } from "../location.js"

/**
 * A failure of the command itself, not of the library: its exit status and the line it prints on stderr (none
 * when empty).
 */
export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly exit: number
  readonly message: string
}> {}

/** The exit statuses: documented in the README, and each is tested. */
export const Exit = {
  /** `has`: the key is absent. */
  Absent: 1,
  /** A command line that does not parse: an unknown command or option, a missing argument. */
  Usage: 2,
  /** The command needs a confirmation it did not get (`--yes`, `--force`), or the user declined. */
  Refused: 3,
  /** `doctor` found a problem. */
  Unhealthy: 4,
  /** A library error: 10 + (code - 9000), so 9000 Generic → 10 … 9006 SerializationError → 16. */
  ofCode: (code: number): number => 10 + (code - 9000)
} as const

export const usage = (message: string): CliFailure => new CliFailure({ exit: Exit.Usage, message })
export const refused = (message: string): CliFailure => new CliFailure({ exit: Exit.Refused, message })

/** Where the database is: `--file`, `--app`, else `RUNTIME_STORAGE_APP` or the name in ./package.json. */
export interface Location {
  readonly app: Option.Option<string>
  readonly file: Option.Option<string>
}

export const resolveFilename = (location: Location): Effect.Effect<string, CliFailure> =>
  Effect.suspend(() => {
    const { app, file } = location
    if (app._tag === "Some" && file._tag === "Some") return Effect.fail(usage("Give --app or --file, not both"))
    if (file._tag === "Some") return Effect.succeed(path.resolve(file.value))
    if (app._tag === "Some") {
      const problem = appNameProblem(app.value)
      return problem === undefined
        ? Effect.succeed(defaultDatabasePath(app.value))
        : Effect.fail(usage(`--app ${problem}`))
    }
    try {
      return Effect.succeed(resolveDefaultFilename({}))
    } catch {
      return Effect.fail(
        usage(
          "Which database? Give --app NAME (the app's default location) or --file PATH, set RUNTIME_STORAGE_APP, " +
            'or run this in a folder whose package.json has a "name"'
        )
      )
    }
  })

/** A command that reads refuses a database that does not exist, rather than create an empty one. */
export const requireExisting = (filename: string): Effect.Effect<void, StorageError> =>
  fs.existsSync(filename)
    ? Effect.void
    : Effect.fail(
        new DatabaseError({
          reason: "There is no database at this path (nothing was stored there yet, or the path is wrong)",
          filename,
          sqliteCode: "SQLITE_CANTOPEN"
        })
      )

/** Something text is written to, in order, with backpressure. */
export interface Sink {
  readonly write: (text: string | Uint8Array) => Effect.Effect<void, StorageError>
}

/** Standard output. */
export const stdout: Sink = {
  write: (text) =>
    Effect.async<void>((resume) => {
      if (process.stdout.write(text)) resume(Effect.void)
      else process.stdout.once("drain", () => resume(Effect.void))
    })
}

/** Whether standard output is a terminal (tables and prompts) or a pipe or file (JSON for scripts). */
export const stdoutIsTerminal = (): boolean => process.stdout.isTTY === true

/**
 * A file written whole or not at all: its text goes to a temporary file beside it (mode 0600: it holds the
 * user's data), which replaces the file only once complete and flushed to disk.
 */
export const atomicFile = (
  destination: string
): Effect.Effect<Sink & { readonly commit: Effect.Effect<void, StorageError> }, StorageError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        // A new file of our own (never through a link someone planted), under a name no one can guess.
        const temporary = `${destination}.${process.pid}-${randomBytes(6).toString("hex")}.partial`
        return { temporary, fd: fs.openSync(temporary, "wx", 0o600), done: false }
      },
      catch: (cause) =>
        new GenericError({ reason: `Could not create ${destination}: ${(cause as Error).message}`, cause })
    }),
    (file) =>
      Effect.sync(() => {
        if (file.done) return
        fs.closeSync(file.fd)
        fs.rmSync(file.temporary, { force: true })
      })
  ).pipe(
    Effect.map((file) => {
      let buffered: Array<string | Uint8Array> = []
      let size = 0
      const flush = () => {
        // writeFileSync on a descriptor writes every byte (writeSync may write fewer and say so).
        for (const piece of buffered) fs.writeFileSync(file.fd, piece)
        buffered = []
        size = 0
      }
      // A full disk or a lost directory is a coded error, and the partial file is removed (by the release).
      const failed = (cause: unknown) =>
        new GenericError({ reason: `Could not write ${destination}: ${(cause as Error).message}`, cause })
      return {
        write: (text: string | Uint8Array) =>
          Effect.try({
            try: () => {
              buffered.push(text)
              size += text.length
              if (size >= 1 << 20) flush()
            },
            catch: failed
          }),
        commit: Effect.try({
          try: () => {
            flush()
            fs.fsyncSync(file.fd)
            fs.closeSync(file.fd)
            file.done = true
            try {
              fs.renameSync(file.temporary, destination)
            } catch (cause) {
              fs.rmSync(file.temporary, { force: true })
              throw cause
            }
          },
          catch: failed
        })
      }
    })
  )

/**
 * Lines of a file (or of stdin, `-`), read in chunks as they are asked for: memory stays bounded. The bytes must be
 * UTF-8: anything else is refused (9004), never replaced by U+FFFD.
 */
export class LineReader {
  private readonly iterator: AsyncIterator<Buffer>
  private readonly decoder = new TextDecoder("utf-8", { fatal: true })
  private rest = ""
  private ended = false
  /** Bytes read so far (for the progress bar). */
  bytes = 0

  constructor(
    readonly source: string,
    private readonly label = source === "-" ? "stdin" : source
  ) {
    const stream = source === "-" ? process.stdin : fs.createReadStream(source, { highWaterMark: 1 << 20 })
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  }

  private decode(bytes: Buffer | undefined): string {
    try {
      return bytes === undefined ? this.decoder.decode() : this.decoder.decode(bytes, { stream: true })
    } catch (cause) {
      throw new InvalidKeyError({
        reason: `${this.label} is not valid UTF-8 (within its first ${this.bytes} bytes)`,
        cause
      })
    }
  }

  /** The size of the source when it is a file (for the progress bar). */
  get total(): number | undefined {
    if (this.source === "-") return undefined
    try {
      return fs.statSync(this.source).size
    } catch {
      return undefined
    }
  }

  /** The next complete lines (at least one), or `undefined` at the end. */
  async next(): Promise<Array<string> | undefined> {
    while (!this.ended) {
      const { done, value } = await this.iterator.next()
      if (done === true) {
        this.ended = true
        this.rest += this.decode(undefined)
        break
      }
      this.bytes += value.length
      const text = this.rest + this.decode(value)
      const last = text.lastIndexOf("\n")
      if (last === -1) {
        this.rest = text
        continue
      }
      this.rest = text.slice(last + 1)
      return text.slice(0, last).split("\n")
    }
    if (this.rest === "") return undefined
    const lines = [this.rest]
    this.rest = ""
    return lines
  }
}

/**
 * Runs `f` on a private copy of stdin in a temporary file (mode 0600 in a 0700 directory, removed after): an
 * import from a slow producer then waits for its input before it opens its transaction, not while holding the
 * database's write lock.
 */
export const withStdinCopy = <A, E, R>(
  f: (file: string) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | StorageError, R> =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const directory = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-import-"))
        const file = path.join(directory, "stdin.ndjson")
        try {
          await pipeline(process.stdin, fs.createWriteStream(file, { flags: "wx", mode: 0o600 }))
        } catch (cause) {
          fs.rmSync(directory, { recursive: true, force: true })
          throw cause
        }
        return { directory, file }
      },
      catch: (cause) => new GenericError({ reason: `Could not read stdin: ${(cause as Error).message}`, cause })
    }),
    ({ file }) => f(file),
    ({ directory }) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
  )

/** All of stdin as text: strict UTF-8 (9004 otherwise); a failed read is a coded error, not a crash. */
export const readStdin: Effect.Effect<string, StorageError> = Effect.tryPromise({
  try: async () => {
    const reader = new LineReader("-")
    const lines: Array<string> = []
    for (let batch = await reader.next(); batch !== undefined; batch = await reader.next()) lines.push(...batch)
    return lines.join("\n")
  },
  catch: (cause) =>
    cause instanceof InvalidKeyError
      ? cause
      : new GenericError({ reason: `Could not read stdin: ${(cause as Error).message}`, cause })
})

/**
 * Asks a yes/no question on the terminal; without a terminal to ask on, refuses, naming the option that answers
 * it on the command line.
 */
export const confirm = (question: string, option: string) =>
  Effect.gen(function* () {
    // The prompt reads the terminal's keys and draws on stdout.
    if (process.stdin.isTTY !== true || process.stdout.isTTY !== true) {
      return yield* Effect.fail(refused(`${question} Not asked (no terminal): give ${option} to go ahead`))
    }
    const yes = yield* Prompt.confirm({ message: question, initial: false }).pipe(
      Effect.catchTag("QuitException", () => Effect.succeed(false))
    )
    if (!yes) return yield* Effect.fail(refused("Cancelled: nothing was changed"))
  })

/**
 * A progress bar on stderr when it is a terminal (nothing otherwise): `tick` adds done work, redrawn at most every
 * 100 ms; `end` clears it.
 */
export const progressBar = (label: string, total: number | undefined, unit: "entries" | "bytes") => {
  const shown = process.stderr.isTTY === true
  let done = 0
  let items = 0
  let drawn = 0
  const draw = () => {
    const width = 30
    const count = `${items.toLocaleString("en-US")} entries`
    if (total === undefined || total === 0) {
      process.stderr.write(`\r${label} ${count}`)
      return
    }
    const ratio = Math.min(1, done / total)
    const filled = Math.round(ratio * width)
    process.stderr.write(
      `\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${count}`
    )
  }
  return {
    tick: (entries: number, work: number) => {
      items += entries
      done = unit === "entries" ? items : work
      if (!shown) return
      const now = Date.now()
      if (now - drawn >= 100) {
        drawn = now
        draw()
      }
    },
    end: () => {
      if (shown && drawn !== 0) process.stderr.write("\r\u001b[2K")
    }
  }
}
