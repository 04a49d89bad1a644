/**
 * The command line, run as a user runs it: the built bin (bin/runtime-storage.cjs over dist/cli.cjs) in a child
 * process, with its own home and cache directories.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { staysInItsField } from "../src/cli/transfer.js"
import { tempDir } from "./support.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const BIN = path.join(root, "bin", "runtime-storage.cjs")
const dir = tempDir()
const env = {
  ...process.env,
  HOME: path.join(dir, "home"),
  XDG_CACHE_HOME: path.join(dir, "cache"),
  XDG_DATA_HOME: path.join(dir, "data"),
  RUNTIME_STORAGE_APP: ""
}
let counter = 0
const freshFile = (): string => path.join(dir, `db-${++counter}`, "storage.db")

interface Ran {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
  readonly bytes: Buffer
}

/** Runs the bin with the arguments (and stdin), in `cwd` (default: the temporary directory). */
const cli = (
  args: ReadonlyArray<string>,
  options: { readonly input?: string | Buffer; readonly cwd?: string } = {}
): Ran => {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input ?? "",
    cwd: options.cwd ?? dir,
    env,
    timeout: 30_000,
    maxBuffer: 1 << 28
  })
  return {
    status: result.status,
    stdout: result.stdout.toString("utf8"),
    stderr: result.stderr.toString("utf8"),
    bytes: result.stdout
  }
}

/** Runs the bin and expects it to succeed; returns its stdout. */
const ok = (args: ReadonlyArray<string>, input?: string): string => {
  const ran = cli(args, input === undefined ? {} : { input })
  if (ran.status !== 0) throw new Error(`${args.join(" ")} exited ${ran.status}: ${ran.stderr}`)
  return ran.stdout
}

const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL")
})

/** Resolves with the first output of a child that satisfies `done`. */
const waitForOutput = (child: ChildProcess, done: (output: string) => boolean, what: string): Promise<string> =>
  new Promise((resolve, reject) => {
    let output = ""
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(output)}`)),
      20_000
    )
    child.stdout!.on("data", (data: Buffer) => {
      output += data.toString("utf8")
      if (done(output)) {
        clearTimeout(timer)
        resolve(output)
      }
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      if (!done(output))
        reject(new Error(`${what}: the process exited (${code}) first; output ${JSON.stringify(output)}`))
    })
  })

describe("runtime-storage (the command line)", () => {
  it("set, get, has, rm, keys, entries, count, size and stores, in both output modes", () => {
    const file = freshFile()
    const at = ["--file", file]
    ok(["set", "theme", '"dark"', ...at])
    ok(["set", "window", '{"x":10,"tabs":[1,-0,{"a":null}],"é":"😀"}', ...at, "--store", "ui"])
    ok(["set", "draft:1", "1", ...at])
    ok(["set", "draft:2", "[true,false]", ...at])
    // A value from stdin.
    ok(["set", "notes", "-", ...at], '{"lines":["a","b"]}\n')
    expect(ok(["get", "notes", ...at, "--json"])).toBe('{"lines":["a","b"]}\n')
    // get: indented JSON for a person, exact compact JSON with --json; -0 stays -0 in both.
    expect(ok(["get", "window", ...at, "--store", "ui", "--json"])).toBe('{"x":10,"tabs":[1,-0,{"a":null}],"é":"😀"}\n')
    expect(ok(["get", "window", ...at, "--store", "ui"])).toBe(
      '{\n  "x": 10,\n  "tabs": [\n    1,\n    -0,\n    {\n      "a": null\n    }\n  ],\n  "é": "😀"\n}\n'
    )
    const meta = JSON.parse(ok(["get", "theme", ...at, "--meta", "--json"]))
    expect(meta).toEqual({
      store: "default",
      key: "theme",
      value: "dark",
      version: expect.stringMatching(/^\d{16}$/),
      createdAt: expect.any(Number),
      updatedAt: meta.createdAt,
      expiresAt: null
    })
    const metaTable = ok(["get", "theme", ...at, "--meta"])
    expect(metaTable).toMatch(/^FIELD +VALUE\n/)
    expect(metaTable).toContain(`version  ${meta.version}`)
    expect(metaTable).toMatch(/expires +never/)
    // keys and entries, with selectors.
    expect(ok(["keys", ...at])).toBe("draft:1\ndraft:2\nnotes\ntheme\n")
    expect(ok(["keys", ...at, "--json"])).toBe('["draft:1","draft:2","notes","theme"]\n')
    expect(ok(["keys", ...at, "--prefix", "draft:", "--reverse", "--json"])).toBe('["draft:2","draft:1"]\n')
    expect(ok(["keys", ...at, "--limit", "2"])).toBe("draft:1\ndraft:2\n")
    expect(ok(["keys", ...at, "--start", "n", "--end", "t"])).toBe("notes\n")
    expect(ok(["entries", ...at, "--prefix", "draft:"])).toBe("draft:1\t1\ndraft:2\t[true,false]\n")
    expect(JSON.parse(ok(["entries", ...at, "--prefix", "draft:", "--json"]))).toEqual([
      { key: "draft:1", value: 1 },
      { key: "draft:2", value: [true, false] }
    ])
    expect(ok(["count", ...at])).toBe("4\n")
    expect(ok(["count", ...at, "--prefix", "draft:"])).toBe("2\n")
    expect(ok(["size", ...at, "--json"])).toBe(`${6 + 1 + 12 + 19}\n`)
    expect(ok(["size", ...at])).toBe("38 (38 B)\n")
    // stores: a table, or JSON.
    expect(JSON.parse(ok(["stores", ...at, "--json"]))).toEqual([
      { store: "default", count: 4, size: 38 },
      { store: "ui", count: 1, size: 45 } // the UTF-8 bytes of the JSON text given to set
    ])
    expect(ok(["stores", ...at])).toBe("STORE    KEYS  SIZE\ndefault     4  38 B\nui          1  45 B\n")
    // has: the answer is the exit status.
    expect(cli(["has", "theme", ...at]).status).toBe(0)
    expect(cli(["has", "nope", ...at]).status).toBe(1)
    expect(cli(["has", "theme", ...at, "--store", "ui", "--json"])).toMatchObject({ status: 1, stdout: "false\n" })
    // rm: all at once, counting those that existed.
    expect(ok(["rm", "draft:1", "draft:2", "missing", ...at])).toBe("removed 2 of 3\n")
    expect(ok(["rm", "theme", ...at, "--json"])).toBe('{"removed":1}\n')
    expect(ok(["keys", ...at])).toBe("notes\n")
  })

  it("keys and entries stream a store larger than one batch, in order, with --limit across batches", () => {
    const file = freshFile()
    const lines = Array.from({ length: 2500 }, (_, i) =>
      JSON.stringify({ key: `k${String(i).padStart(5, "0")}`, value: i })
    )
    ok(["import", "-", "--file", file], `${lines.join("\n")}\n`)
    const keys = ok(["keys", "--file", file]).trimEnd().split("\n")
    expect(keys).toHaveLength(2500)
    expect(keys).toEqual([...keys].sort())
    expect(JSON.parse(ok(["keys", "--file", file, "--json", "--limit", "1500", "--reverse"]))).toEqual(
      [...keys].reverse().slice(0, 1500)
    )
    const entries = JSON.parse(ok(["entries", "--file", file, "--json"])) as Array<{ key: string; value: number }>
    expect(entries.map((entry) => entry.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i))
  })

  it("set --expire-in: short forms and Effect durations; bad ones refused with 9004", () => {
    const file = freshFile()
    const before = Date.now()
    ok(["set", "session", '"s"', "--file", file, "--expire-in", "10m"])
    ok(["set", "token", '"t"', "--file", file, "--expire-in", "2 hours"])
    const expiry = (key: string) => JSON.parse(ok(["get", key, "--file", file, "--meta", "--json"])).expiresAt as number
    expect(expiry("session") - before).toBeGreaterThanOrEqual(600_000)
    expect(expiry("session") - Date.now()).toBeLessThanOrEqual(600_000)
    expect(expiry("token") - before).toBeGreaterThanOrEqual(7_200_000)
    for (const bad of ["-5s", "0", "soon"]) {
      const ran = cli(["set", "x", "1", "--file", file, "--expire-in", bad])
      expect(ran.status).toBe(14)
      expect(ran.stderr).toMatch(/^error 9004 InvalidKey: /)
    }
    expect(cli(["has", "x", "--file", file]).status).toBe(1)
  })

  it("each error is one line on stderr with its code, and its own exit status", () => {
    const file = freshFile()
    ok(["set", "k", "1", "--file", file])
    const expectError = (ran: Ran, status: number, line: RegExp) => {
      expect(ran.status).toBe(status)
      expect(ran.stdout).toBe("")
      expect(ran.stderr.trimEnd().split("\n")).toHaveLength(1)
      expect(ran.stderr).toMatch(line)
    }
    // 9001 NotFound → 11
    expectError(cli(["get", "missing", "--file", file]), 11, /^error 9001 NotFound: Key "missing" was not found/)
    expectError(cli(["get", "missing", "--file", file, "--meta"]), 11, /^error 9001 NotFound/)
    // 9000 Generic → 10: an export file that cannot be written (its directory does not exist).
    const nowhere = path.join(dir, "no-such-dir", "out.ndjson")
    expectError(
      cli(["export", "--file", file, "-o", nowhere]),
      10,
      /^error 9000 Generic: Could not create .*no-such-dir/
    )
    // 9004 InvalidKey → 14: a key too long, an invalid store name.
    expectError(cli(["set", "x".repeat(3000), "1", "--file", file]), 14, /^error 9004 InvalidKey: /)
    expectError(cli(["keys", "--file", file, "--store", ""]), 14, /^error 9004 InvalidKey: /)
    // 9005 DatabaseError → 15: no database there (a read never creates one), or not a database.
    const missing = path.join(dir, "nothing-here.db")
    expectError(cli(["keys", "--file", missing]), 15, /^error 9005 DatabaseError: There is no database at this path/)
    expect(fs.existsSync(missing)).toBe(false)
    const notDb = path.join(dir, "not-a-db.txt")
    fs.writeFileSync(notDb, "hello, this is text and not SQLite at all".repeat(100))
    expectError(cli(["keys", "--file", notDb]), 15, /^error 9005 DatabaseError: .*not a (SQLite )?database/i)
    // 9006 SerializationError → 16: not JSON, or a number JSON cannot carry exactly.
    expectError(
      cli(["set", "v", "hello", "--file", file]),
      16,
      /^error 9006 SerializationError: .*not valid JSON.*'"hello"'/
    )
    expectError(
      cli(["set", "v", "12345678901234567891", "--file", file]),
      16,
      /^error 9006 SerializationError: .*12345678901234567891.*would become 12345678901234567000/
    )
    expectError(cli(["set", "v", "1e400", "--file", file]), 16, /^error 9006 .*would become Infinity/)
    expectError(cli(["set", "v", "[1e-400]", "--file", file]), 16, /^error 9006 .*would become 0/)
    // Exact numbers of any length are accepted as they are.
    ok(["set", "v", "[0.30000000000000004, 9007199254740991, 1.5e300, 0.1, 100, 1E2]", "--file", file])
    expect(ok(["get", "v", "--file", file, "--json"])).toBe(
      "[0.30000000000000004,9007199254740991,1.5e+300,0.1,100,100]\n"
    )
    // 9002 WriteFailed → 12: another process holds the write lock longer than --busy-timeout.
    const holder = spawnSync(
      process.execPath,
      [
        "-e",
        `const db = new (require("better-sqlite3"))(process.argv[1]); db.exec("BEGIN IMMEDIATE");
         const { execFileSync } = require("node:child_process");
         try { execFileSync(process.execPath, process.argv.slice(2), { stdio: ["ignore", "ignore", "inherit"] }) }
         catch (error) { process.exitCode = error.status }`,
        file,
        BIN,
        "set",
        "k",
        "2",
        "--file",
        file,
        "--busy-timeout",
        "100ms"
      ],
      { cwd: root, env }
    )
    expect(holder.status).toBe(12)
    expect(holder.stderr.toString()).toMatch(/^error 9002 WriteFailed: .*SQLITE_BUSY/)
    expect(ok(["get", "k", "--file", file])).toBe("1\n")
    // Usage → 2: an unknown command or option, a missing argument, --app with --file.
    expect(cli(["frobnicate"]).status).toBe(2)
    expect(cli(["get", "--file", file]).status).toBe(2)
    expect(cli(["keys", "--file", file, "--colour"]).status).toBe(2)
    expectError(cli(["keys", "--file", file, "--app", "x"]), 2, /^Give --app or --file, not both/)
    expectError(cli(["keys", "--app", "a/b"]), 2, /^--app must not contain a path separator/)
    expectError(cli(["keys", "--file", file, "--busy-timeout", "soon"]), 2, /^--busy-timeout must be a duration/)
  })

  it("finds an app's database by --app, by RUNTIME_STORAGE_APP, or by the package.json of the folder", () => {
    ok(["set", "k", '"by-app"', "--app", "cli-test-app"])
    const expected = path.join(dir, "data", "cli-test-app", "storage.db")
    expect(fs.existsSync(expected)).toBe(true)
    const project = path.join(dir, "project")
    fs.mkdirSync(project, { recursive: true })
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "cli-test-app" }))
    expect(cli(["get", "k"], { cwd: project })).toMatchObject({ status: 0, stdout: '"by-app"\n' })
    const byEnv = spawnSync(process.execPath, [BIN, "get", "k"], {
      cwd: dir,
      env: { ...env, RUNTIME_STORAGE_APP: "cli-test-app" }
    })
    expect(byEnv.stdout.toString()).toBe('"by-app"\n')
    fs.mkdirSync(path.join(dir, "elsewhere"), { recursive: true })
    const nowhere = cli(["get", "k"], { cwd: path.join(dir, "elsewhere") })
    expect(nowhere.status).toBe(2)
    expect(nowhere.stderr).toMatch(/^Which database\? Give --app NAME/)
  })

  it("clear refuses without a terminal unless --yes, and --yes clears only that store", () => {
    const file = freshFile()
    ok(["set", "a", "1", "--file", file])
    ok(["set", "b", "1", "--file", file, "--store", "other"])
    const refused = cli(["clear", "--file", file])
    expect(refused.status).toBe(3)
    expect(refused.stderr).toMatch(/Not asked \(no terminal\): give --yes/)
    expect(ok(["count", "--file", file])).toBe("1\n")
    expect(ok(["clear", "--file", file, "--yes"])).toBe("removed 1 entry\n")
    expect(ok(["count", "--file", file])).toBe("0\n")
    expect(ok(["count", "--file", file, "--store", "other"])).toBe("1\n")
  })

  it("a confirmation prompt answered on a real pseudo-terminal", async () => {
    const file = freshFile()
    ok(["set", "a", "1", "--file", file])
    // util-linux's script(1) runs the command on a new pseudo-terminal and relays our pipe to it.
    const ask = (answer: string) => {
      const child = spawn("script", ["-qefc", `${process.execPath} ${BIN} clear --file ${file}`, "/dev/null"], { env })
      children.push(child)
      let sent = false
      const output = waitForOutput(
        child,
        (text) => {
          if (!sent && text.includes("(y/N)")) {
            sent = true
            child.stdin!.write(answer)
          }
          return /removed|Cancelled/.test(text)
        },
        "the prompt's answer"
      )
      const exit = new Promise<number | null>((resolve) => child.on("exit", resolve))
      return Promise.all([output, exit])
    }
    const [declined, declinedStatus] = await ask("n")
    expect(declined).toContain(`Remove every entry (1 entry) of store "default" in ${file}?`)
    expect(declinedStatus).toBe(3)
    expect(ok(["count", "--file", file])).toBe("1\n")
    const [accepted, acceptedStatus] = await ask("y")
    expect(accepted).toContain("removed 1 entry")
    expect(acceptedStatus).toBe(0)
    expect(ok(["count", "--file", file])).toBe("0\n")
  })

  it("export and import show a progress bar on a terminal's stderr", async () => {
    const file = freshFile()
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ key: `k${i}`, value: i })).join("\n")
    const input = path.join(dir, `progress-${counter}.ndjson`)
    fs.writeFileSync(input, lines)
    const onTerminal = async (command: string) => {
      const child = spawn("script", ["-qefc", `${process.execPath} ${BIN} ${command}`, "/dev/null"], { env })
      children.push(child)
      const exit = new Promise<number | null>((resolve) => child.on("exit", resolve))
      let output = ""
      child.stdout.on("data", (data: Buffer) => (output += data.toString()))
      expect(await exit).toBe(0)
      return output
    }
    expect(await onTerminal(`import ${input} --file ${file}`)).toMatch(/\rimport \[#* *\] +\d+% [\d,]+ entries/)
    const out = path.join(dir, `progress-${counter}.out`)
    expect(await onTerminal(`export --file ${file} -o ${out}`)).toMatch(/\rexport \[#* *\] +\d+% [\d,]+ entries/)
    expect(fs.readFileSync(out, "utf8").trimEnd().split("\n")).toHaveLength(3000)
  })

  it("export | import into a new file gives an identical store: bytes, -0, expiry, many stores, odd keys", () => {
    const source = freshFile()
    const at = ["--file", source]
    ok(["set", "nested", '{"a":[1,-0,{"b":null}],"__proto__":{"x":1}}', ...at])
    // A key and a store with NUL (which no argv can hold) come in through import.
    ok(["import", "-", ...at], '{"store":"s\\u0000nul","key":"key\\u0000with nul","value":"v"}\n')
    ok(["set", "😀", "true", ...at, "--store", "emoji"])
    ok(["set", "session", '"s"', ...at, "--expire-in", "1h"])
    // A binary value, written through the library.
    const script = `import { open } from ${JSON.stringify(path.join(root, "dist", "promise.js"))}
      const client = open({ filename: process.argv[1] })
      await client.set("avatar", new Uint8Array([0, 1, 2, 250, 255]), { store: "bin" })
      await client.close()`
    const wrote = spawnSync(process.execPath, ["--input-type=module", "-e", script, source], { env })
    expect(wrote.status).toBe(0)
    const exported = ok(["export", ...at])
    const lines = exported
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line))
    expect(lines).toContainEqual({ store: "bin", key: "avatar", bytes: "AAEC+v8=" })
    expect(lines.find((line) => line.key === "session").expiresAt).toBeGreaterThan(Date.now())
    expect(exported).toContain('"value":{"a":[1,-0,{"b":null}],"__proto__":{"x":1}}')
    // get of bytes: the bytes themselves on a pipe.
    expect([...cli(["get", "avatar", ...at, "--store", "bin"]).bytes]).toEqual([0, 1, 2, 250, 255])
    const target = freshFile()
    ok(["import", "-", "--file", target], exported)
    expect(ok(["export", "--file", target])).toBe(exported)
    expect(ok(["stores", "--file", target, "--json"])).toBe(ok(["stores", ...at, "--json"]))
    // --store and --prefix select; -o writes a file whole, mode 0600.
    expect(ok(["export", ...at, "--store", "emoji"])).toBe('{"store":"emoji","key":"😀","value":true}\n')
    const out = path.join(dir, `export-${counter}.ndjson`)
    const ran = cli(["export", ...at, "--prefix", "sess", "-o", out])
    expect(ran).toMatchObject({ status: 0, stdout: "", stderr: `exported 1 entry to ${out}\n` })
    expect(fs.readFileSync(out, "utf8")).toMatch(
      /^\{"store":"default","key":"session","value":"s","expiresAt":\d+\}\n$/
    )
    expect(fs.statSync(out).mode & 0o777).toBe(0o600)
    // Without a terminal on stderr, no progress bar.
    expect(cli(["export", ...at]).stderr).toBe("")
  })

  it("import is all-or-nothing: a bad line is refused with its number and nothing is written", () => {
    const file = freshFile()
    ok(["set", "before", "1", "--file", file])
    const good = (i: number) => JSON.stringify({ key: `k${i}`, value: i })
    const cases: Array<readonly [string, number, RegExp]> = [
      ['{"key":"x","value":1', 14, /^error 9004 InvalidKey: Line 1\d{3} of stdin: is not valid JSON/],
      ['{"key":"x","valu":1}', 14, /^error 9004 InvalidKey: Line 1\d{3} of stdin: unknown field "valu"/],
      ['{"key":"x"}', 14, /needs exactly one of "value" \(JSON\) and "bytes"/],
      ['{"key":"x","bytes":"not base64!"}', 14, /"bytes" must be a base64 string/],
      ['{"key":"x","value":1,"expiresAt":"soon"}', 14, /"expiresAt" must be a time in milliseconds/],
      ['{"key":"","value":1}', 14, /Line 1\d{3} of stdin: .*key/i],
      ['{"store":"","key":"x","value":1}', 14, /Line 1\d{3} of stdin: .*store/i],
      ["[1,2]", 14, /must be a JSON object/],
      ['{"key":"x","value":123456789012345678901}', 16, /^error 9006 SerializationError: .*line 1\d{3} of stdin/]
    ]
    for (const [bad, status, message] of cases) {
      // 1,500 good lines (more than one batch is written before the bad one), the bad one, more good ones.
      const input = [...Array.from({ length: 1500 }, (_, i) => good(i)), bad, good(9999)].join("\n")
      const ran = cli(["import", "-", "--file", file], { input })
      expect(ran.status, bad).toBe(status)
      expect(ran.stderr, bad).toMatch(message)
      expect(ran.stderr).toContain("1501")
      expect(ok(["keys", "--file", file])).toBe("before\n")
    }
    // Blank lines are skipped; a line without a store goes to --store; an already expired entry is not written.
    const input = `\n{"key":"a","value":1}\n\n{"key":"b","value":2,"expiresAt":1}\n{"store":"s","key":"c","value":3}`
    const ran = cli(["import", "-", "--file", file, "--store", "imported"], { input })
    expect(ran.status).toBe(0)
    expect(ran.stderr).toBe("imported 2 entries into 2 stores; 1 already expired, not written\n")
    expect(ok(["keys", "--file", file, "--store", "imported"])).toBe("a\n")
    expect(ok(["keys", "--file", file, "--store", "s"])).toBe("c\n")
  })

  it("backup while four processes write: a consistent copy, mode 0600, that opens and passes doctor", async () => {
    const file = freshFile()
    ok(["set", "k", "1", "--file", file])
    const writers = [1, 2, 3, 4].map((id) => {
      const child = spawn(
        process.execPath,
        [path.join(root, "test", "fixtures", "pair-writer.mjs"), file, String(id)],
        {
          env
        }
      )
      children.push(child)
      return waitForOutput(child, (text) => text.includes("ready"), `writer ${id}`)
    })
    await Promise.all(writers)
    const copies: Array<string> = []
    for (let round = 0; round < 3; round++) {
      const copy = path.join(dir, `backup-${counter}-${round}.db`)
      // Run asynchronously: the writers keep writing while it copies.
      const ran = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, "backup", copy, "--file", file], { env })
        let stderr = ""
        child.stderr.on("data", (data: Buffer) => (stderr += data.toString()))
        child.on("exit", (status) => resolve({ status, stderr }))
      })
      expect(ran.status, ran.stderr).toBe(0)
      copies.push(copy)
    }
    for (const child of children.splice(0)) child.kill("SIGKILL")
    for (const copy of copies) {
      expect(fs.statSync(copy).mode & 0o777).toBe(0o600)
      expect(cli(["doctor", "--file", copy]).status).toBe(0)
      // Each writer's pair was written by one setMany: in a consistent copy both halves agree.
      const entries = JSON.parse(ok(["entries", "--file", copy, "--json", "--prefix", "w"])) as Array<{
        key: string
        value: { n: number }
      }>
      const byKey = new Map(entries.map((entry) => [entry.key, entry.value]))
      for (const id of [1, 2, 3, 4]) {
        expect(byKey.get(`w${id}-a`)?.n).toBeGreaterThanOrEqual(0)
        expect(byKey.get(`w${id}-a`)?.n).toBe(byKey.get(`w${id}-b`)?.n)
      }
    }
    // An existing file is not replaced without --force.
    const refused = cli(["backup", copies[0]!, "--file", file])
    expect(refused.status).toBe(3)
    expect(refused.stderr).toMatch(/exists: give --force/)
    expect(cli(["backup", copies[0]!, "--file", file, "--force"]).status).toBe(0)
  })

  it("restore replaces every store with a backup's in one transaction, after asking; it refuses other files", () => {
    const file = freshFile()
    ok(["set", "a", "1", "--file", file])
    ok(["set", "b", "2", "--file", file, "--store", "s", "--expire-in", "1h"])
    const copy = path.join(dir, `restore-${counter}.db`)
    ok(["backup", copy, "--file", file])
    const expected = ok(["export", "--file", file])
    ok(["set", "a", '"changed"', "--file", file])
    ok(["set", "new", "1", "--file", file, "--store", "later"])
    // Without a terminal or --yes: refused, nothing changed.
    const refused = cli(["restore", copy, "--file", file])
    expect(refused.status).toBe(3)
    expect(ok(["get", "a", "--file", file])).toBe('"changed"\n')
    const ran = cli(["restore", copy, "--file", file, "--yes"])
    expect(ran.status, ran.stderr).toBe(0)
    expect(ok(["export", "--file", file])).toBe(expected)
    // The backup itself is untouched, and what is not a runtime-storage database is refused.
    expect(ok(["export", "--file", copy])).toBe(expected)
    const text = path.join(dir, "restore.txt")
    fs.writeFileSync(text, "not a database".repeat(200))
    expect(cli(["restore", text, "--file", file, "--yes"]).status).toBe(15)
    const foreign = path.join(dir, `foreign-${counter}.db`)
    spawnSync(
      process.execPath,
      ["-e", `new (require("better-sqlite3"))(${JSON.stringify(foreign)}).exec("CREATE TABLE t (x)")`],
      { cwd: root }
    )
    const notOurs = cli(["restore", foreign, "--file", file, "--yes"])
    expect(notOurs.status).toBe(15)
    expect(notOurs.stderr).toMatch(/not a runtime-storage database/)
    expect(ok(["export", "--file", file])).toBe(expected)
  })

  it("watch prints the changes another process makes, as JSON lines, from --since, until interrupted", async () => {
    const file = freshFile()
    ok(["set", "ready", "0", "--file", file, "--store", "w"])
    const version = JSON.parse(ok(["get", "ready", "--file", file, "--store", "w", "--meta", "--json"])).version
    const child = spawn(process.execPath, [BIN, "watch", "--file", file, "--store", "w", "--initial"], { env })
    children.push(child)
    const lines = (text: string) =>
      text
        .trimEnd()
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line))
    let seen = ""
    child.stdout.on("data", (data: Buffer) => (seen += data.toString()))
    await waitForOutput(child, (text) => text.includes('"initial":true'), "the initial entries")
    ok(["set", "k", '{"n":1}', "--file", file, "--store", "w"])
    ok(["rm", "k", "--file", file, "--store", "w"])
    ok(["set", "elsewhere", "1", "--file", file])
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no remove in ${seen}`)), 20_000)
      const check = () => {
        if (seen.includes('"type":"remove"')) {
          clearTimeout(timer)
          resolve()
        } else setTimeout(check, 20)
      }
      check()
    })
    const exit = new Promise<number | null>((resolve) => child.on("exit", resolve))
    child.kill("SIGINT")
    expect(await exit).toBe(130)
    const changes = lines(seen)
    expect(changes.map((change) => [change.type, change.key])).toEqual([
      ["set", "ready"],
      ["set", "k"],
      ["remove", "k"]
    ])
    expect(changes[1]).toMatchObject({ store: "w", value: { n: 1 }, last: true })
    // --since replays what came after a version.
    const replay = spawnSync(process.execPath, [BIN, "watch", "--file", file, "--store", "w", "--since", version], {
      env,
      timeout: 3000,
      killSignal: "SIGTERM"
    })
    expect(lines(replay.stdout.toString()).map((change) => [change.type, change.key])).toEqual([
      ["set", "k"],
      ["remove", "k"]
    ])
    expect(replay.status).toBe(143)
  })

  it("doctor reports the checks and a verdict, and exits 4 on a problem", () => {
    const file = freshFile()
    ok(["set", "k", "1", "--file", file])
    const report = ok(["doctor", "--file", file])
    expect(report).toContain(file)
    for (const check of [
      "schema",
      "integrity",
      "journal mode",
      "synchronous",
      "WAL size",
      "file mode",
      "directory mode"
    ]) {
      expect(report).toMatch(new RegExp(`^ok +${check} `, "m"))
    }
    expect(report).toMatch(/verdict: healthy\n$/)
    const json = JSON.parse(ok(["doctor", "--file", file, "--json"]))
    expect(json).toMatchObject({ filename: file, healthy: true, verdict: "healthy" })
    expect(json.checks.find((check: { name: string }) => check.name === "integrity")).toEqual({
      name: "integrity",
      ok: true,
      detail: "ok"
    })
    fs.chmodSync(file, 0o644)
    const unhealthy = cli(["doctor", "--file", file])
    expect(unhealthy.status).toBe(4)
    expect(unhealthy.stdout).toMatch(/^!! +file mode +0644: other users can read/m)
    expect(unhealthy.stdout).toMatch(/verdict: 1 problem: file mode\n$/)
  })

  it("--help on every command, --version, and shell completions", () => {
    const version = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version
    expect(ok(["--version"]).trim()).toBe(version)
    const commands = [
      "stores",
      "get",
      "set",
      "rm",
      "has",
      "keys",
      "entries",
      "count",
      "size",
      "clear",
      "export",
      "import",
      "backup",
      "restore",
      "watch",
      "doctor"
    ]
    const help = ok(["--help"])
    for (const command of commands) {
      expect(help).toContain(command)
      const own = cli([command, "--help"])
      expect(own.status, command).toBe(0)
      expect(own.stdout).toContain("--file")
    }
    expect(ok(["--completions", "bash"])).toContain("complete -F")
    expect(ok(["--completions", "zsh"])).toContain("#compdef runtime-storage")
  })
})

describe("the README's command-line session", () => {
  it("runs as shown: the same output for every command (times and the home directory aside)", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("## The command line: `runtime-storage`"))
    const session = /```console\n([\s\S]*?)```/.exec(section)![1]!
    const home = path.join(dir, "readme-home")
    fs.mkdirSync(home, { recursive: true })
    const sessionEnv = { ...env, HOME: home, XDG_DATA_HOME: path.join(home, ".local", "share") }
    /** The words of a command line: spaces split, single quotes group. */
    const words = (line: string): Array<string> =>
      [...line.matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2]!)
    const normalize = (text: string) =>
      text
        .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<time>")
        .replaceAll(home, "/home/me")
        .trimEnd()
    const blocks = session.split(/^\$ /m).filter((block) => block !== "")
    expect(blocks.length).toBeGreaterThanOrEqual(10)
    for (const block of blocks) {
      const [line, ...expected] = block.trimEnd().split("\n")
      let command = line!
      const echoStatus = command.endsWith("; echo $?")
      if (echoStatus) command = command.slice(0, -"; echo $?".length)
      const redirect = /^(.*?) > (\S+)$/.exec(command)
      if (redirect !== null) command = redirect[1]!
      const [program, ...args] = words(command)
      expect(program).toBe("runtime-storage")
      const ran = spawnSync(process.execPath, [BIN, ...args], { cwd: home, env: sessionEnv, encoding: "utf8" })
      if (redirect !== null) fs.writeFileSync(path.join(home, redirect[2]!), ran.stdout)
      const output = `${redirect === null ? ran.stdout : ""}${ran.stderr}${echoStatus ? `${ran.status}\n` : ""}`
      expect(normalize(output), line).toBe(normalize(expected.join("\n")))
    }
  })
})

describe("the command line on hostile or unusual input", () => {
  it("control characters in keys and values reach a terminal escaped, and scripts as JSON", () => {
    const file = freshFile()
    ok(["set", "\u001b[2Jkey", '"a\\u009bb\\u0007c"', "--file", file])
    expect(ok(["keys", "--file", file])).toBe("\\u001b[2Jkey\n")
    expect(ok(["keys", "--file", file, "--json"])).toBe('["\\u001b[2Jkey"]\n')
    expect(ok(["get", "\u001b[2Jkey", "--file", file])).toBe('"a\\u009bb\\u0007c"\n')
    expect(JSON.parse(ok(["get", "\u001b[2Jkey", "--file", file, "--json"]))).toBe("a\u009bb\u0007c")
    expect(ok(["entries", "--file", file])).toBe('\\u001b[2Jkey\t"a\\u009bb\\u0007c"\n')
  })

  it("keys pages past a 2,048-byte key at a batch boundary", () => {
    const file = freshFile()
    // 999 short keys, then one of the longest length a key may have, then more: the first batch ends on it.
    const long = `k0999${"x".repeat(2043)}`
    const lines = [
      ...Array.from({ length: 999 }, (_, i) => JSON.stringify({ key: `k${String(i).padStart(4, "0")}`, value: i })),
      JSON.stringify({ key: long, value: "long" }),
      ...Array.from({ length: 50 }, (_, i) => JSON.stringify({ key: `k${String(1000 + i)}`, value: i }))
    ]
    ok(["import", "-", "--file", file], lines.join("\n"))
    const keys = JSON.parse(ok(["keys", "--file", file, "--json"])) as Array<string>
    expect(keys).toHaveLength(1050)
    expect(keys[999]).toBe(long)
    expect(new Set(keys).size).toBe(1050)
  })

  it("import: a later expired line removes the key; bad UTF-8 and unreadable sources are coded errors", () => {
    const file = freshFile()
    const ran = cli(["import", "-", "--file", file], {
      input: '{"key":"k","value":1}\n{"key":"k","value":2,"expiresAt":1}\n{"key":"other","value":3}\n'
    })
    expect(ran.status, ran.stderr).toBe(0)
    expect(ok(["keys", "--file", file])).toBe("other\n")
    const badUtf8 = Buffer.concat([Buffer.from('{"key":"a","value":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')])
    const refused = cli(["import", "-", "--file", file], { input: badUtf8 })
    expect(refused.status).toBe(14)
    expect(refused.stderr).toMatch(/^error 9004 InvalidKey: stdin is not valid UTF-8/)
    expect(cli(["set", "v", "-", "--file", file], { input: badUtf8.subarray(19) }).status).toBe(14)
    const directory = cli(["import", dir, "--file", file])
    expect(directory.status).toBe(10)
    expect(directory.stderr).toMatch(/^error 9000 Generic: Could not read .*EISDIR/)
    expect(ok(["keys", "--file", file])).toBe("other\n")
  })

  it("export refuses stored text that is not one JSON value (a database changed by other means)", () => {
    const file = freshFile()
    ok(["set", "a", "1", "--file", file])
    ok(["set", "b", "2", "--file", file])
    const tamper = `const db = new (require("better-sqlite3"))(process.argv[1]);
      db.prepare("UPDATE runtime_storage SET value = ? WHERE key = 'b'").run('2,"store":"elsewhere"')`
    expect(spawnSync(process.execPath, ["-e", tamper, file], { cwd: root }).status).toBe(0)
    const ran = cli(["export", "--file", file])
    expect(ran.status).toBe(16)
    expect(ran.stderr).toMatch(/^error 9006 SerializationError: Value of key "b".*not one JSON value/)
  })

  it("import - from a slow producer does not hold the database's write lock while it waits for input", async () => {
    const file = freshFile()
    ok(["set", "before", "1", "--file", file])
    const child = spawn(process.execPath, [BIN, "import", "-", "--file", file], { env })
    children.push(child)
    let stderr = ""
    child.stderr.on("data", (data: Buffer) => (stderr += data.toString()))
    const exit = new Promise<number | null>((resolve) => child.on("exit", resolve))
    child.stdin.write('{"key":"first","value":1}\n')
    await new Promise((resolve) => setTimeout(resolve, 700))
    // Meanwhile another writer gets the lock at once.
    expect(cli(["set", "meanwhile", "2", "--file", file, "--busy-timeout", "100ms"]).status).toBe(0)
    child.stdin.end('{"key":"last","value":3}\n')
    expect(await exit, stderr).toBe(0)
    expect(stderr).toBe("imported 2 entries into 1 store\n")
    expect(ok(["keys", "--file", file])).toBe("before\nfirst\nlast\nmeanwhile\n")
  })

  it("an import interrupted by SIGINT writes nothing", async () => {
    const file = freshFile()
    ok(["set", "before", "1", "--file", file])
    const input = path.join(dir, `interrupted-${counter}.ndjson`)
    const line = (i: number) => JSON.stringify({ key: `k${i}`, value: { i, text: "x".repeat(200) } })
    fs.writeFileSync(input, `${Array.from({ length: 150_000 }, (_, i) => line(i)).join("\n")}\n`)
    const child = spawn(process.execPath, [BIN, "import", input, "--file", file], { env })
    children.push(child)
    const exit = new Promise<number | null>((resolve) => child.on("exit", resolve))
    // Once the import has written a first batch or so (it reads the file as it goes), interrupt it.
    await new Promise((resolve) => setTimeout(resolve, 800))
    child.kill("SIGINT")
    expect(await exit).toBe(130)
    expect(ok(["keys", "--file", file])).toBe("before\n")
    expect(ok(["count", "--file", file])).toBe("1\n")
  })

  it("what export splices as a value stays in its field", () => {
    for (const text of ['"a,b:c"', "1", "-0", "null", '{"a":[1,{"b":"}"}],"c":"\\""}', "[]", '"\\\\"', '"😀"']) {
      expect(staysInItsField(text), text).toBe(true)
    }
    for (const text of [
      '1,"store":"x"',
      '1}\n{"key":"x","value":1',
      '"open',
      "[1",
      "}{",
      '{"a":1}}',
      "",
      '"a"\n',
      "1:2",
      '"\\"'
    ]) {
      expect(staysInItsField(text), text).toBe(false)
    }
  })

  it("backup refuses to replace the database itself or a database in use", () => {
    const file = freshFile()
    ok(["set", "a", "1", "--file", file])
    const itself = cli(["backup", file, "--file", file, "--force"])
    expect(itself.status).toBe(3)
    expect(itself.stderr).toMatch(/is the database itself/)
    const inUse = path.join(dir, `in-use-${counter}.db`)
    fs.writeFileSync(inUse, "")
    fs.writeFileSync(`${inUse}-wal`, "")
    const refused = cli(["backup", inUse, "--file", file, "--force"])
    expect(refused.status).toBe(3)
    expect(refused.stderr).toMatch(/-wal exists/)
    expect(ok(["get", "a", "--file", file])).toBe("1\n")
  })

  it("the code cache is made once, private to the user, and used by the next runs", () => {
    const cache = path.join(dir, "cache", "runtime-storage")
    const file = freshFile()
    ok(["set", "a", "1", "--file", file])
    const caches = fs.readdirSync(cache).filter((name) => name.endsWith(".v8cache"))
    expect(caches).toHaveLength(1)
    expect(fs.statSync(cache).mode & 0o777).toBe(0o700)
    expect(fs.statSync(path.join(cache, caches[0]!)).mode & 0o777).toBe(0o600)
    const before = fs.statSync(path.join(cache, caches[0]!)).mtimeMs
    ok(["get", "a", "--file", file])
    // Accepted by V8, so not written again.
    expect(fs.statSync(path.join(cache, caches[0]!)).mtimeMs).toBe(before)
    // A cache others could write is not loaded (and so not trusted): the command still runs.
    fs.chmodSync(path.join(cache, caches[0]!), 0o666)
    expect(ok(["get", "a", "--file", file])).toBe("1\n")
    fs.chmodSync(path.join(cache, caches[0]!), 0o600)
  })
})
