/**
 * The `runtime:storage` specifier as users meet it: a real Node process started with
 * `--import runtime-storage/register`, in a project that has runtime-storage in its node_modules, and `tsc` over a
 * file that imports the specifier.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { tempDir } from "./support.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const dir = tempDir()

/** A project directory with runtime-storage installed (as a link to this checkout) and the given files. */
const project = (
  files: Record<string, string>,
  packageJson: object | null = { name: "fixture-app", type: "module" }
) => {
  const projectDir = fs.mkdtempSync(path.join(dir, "project-"))
  fs.mkdirSync(path.join(projectDir, "node_modules"))
  fs.symlinkSync(root, path.join(projectDir, "node_modules", "runtime-storage"), "dir")
  if (packageJson !== null) fs.writeFileSync(path.join(projectDir, "package.json"), JSON.stringify(packageJson))
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(projectDir, name), text)
  return projectDir
}

const isolatedEnv = (home: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_DATA_HOME: path.join(home, "data") }
  delete env.RUNTIME_STORAGE_APP
  delete env.NODE_OPTIONS
  return env
}

const runNode = (cwd: string, script: string, env: NodeJS.ProcessEnv, shellPrefix?: string) => {
  const args = ["--import", "runtime-storage/register", script]
  const result =
    shellPrefix === undefined
      ? spawnSync(process.execPath, args, { cwd, env, encoding: "utf8" })
      : spawnSync("sh", ["-c", `${shellPrefix} && exec "$0" "$@"`, process.execPath, ...args], {
          cwd,
          env,
          encoding: "utf8"
        })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const counterApp = `
import { get, set, keys, databasePath, close } from "runtime:storage"
const launches = ((await get("launches")) ?? 0) + 1
await set("launches", launches)
await set("theme", "dark", { store: "settings" })
console.log(JSON.stringify({ launches, keys: await keys(), settings: await keys({ store: "settings" }), path: databasePath() }))
await close()
`

describe("node --import runtime-storage/register", () => {
  it("runs the demo of the README's quick start to its end, twice (the second run reads the first's data)", () => {
    const home = fs.mkdtempSync(path.join(dir, "home-"))
    for (const launch of [1, 2]) {
      const result = runNode(root, path.join(root, "examples", "demo.mjs"), isolatedEnv(home))
      expect(result.stderr).toBe("")
      expect(result.status).toBe(0)
      expect(result.stdout).toContain(`get("launches")                          ${launch}`)
      expect(result.stdout).toContain('the sweeper deleted it; watch says       "remove session (expired: true)"')
      expect(result.stdout).toContain("Unknown write option")
    }
  })

  it("resolves runtime:storage to the Promise API, at the default location named by package.json, persistently", () => {
    const cwd = project({ "app.mjs": counterApp })
    const home = path.join(cwd, "home")
    const first = runNode(cwd, "app.mjs", isolatedEnv(home))
    expect(first.stderr).toBe("")
    expect(first.status).toBe(0)
    const expectedPath = path.join(home, "data", "fixture-app", "storage.db")
    expect(JSON.parse(first.stdout)).toEqual({
      launches: 1,
      keys: ["launches"],
      settings: ["theme"],
      path: expectedPath
    })
    const second = runNode(cwd, "app.mjs", isolatedEnv(home))
    expect(JSON.parse(second.stdout)).toMatchObject({ launches: 2 })
    expect(fs.existsSync(expectedPath)).toBe(true)
    expect(fs.existsSync(`${expectedPath}-wal`)).toBe(false)
  })

  it("takes the app name from RUNTIME_STORAGE_APP before package.json", () => {
    const cwd = project({ "app.mjs": counterApp })
    const home = path.join(cwd, "home")
    const result = runNode(cwd, "app.mjs", { ...isolatedEnv(home), RUNTIME_STORAGE_APP: "from-env" })
    expect(JSON.parse(result.stdout).path).toBe(path.join(home, "data", "from-env", "storage.db"))
  })

  it("rejects the first call with 9000 when no app name can be found", () => {
    const cwd = project(
      {
        "app.mjs": `
import { get } from "runtime:storage"
try { await get("k"); console.log("no error") } catch (error) { console.log(JSON.stringify({ code: error.code, tag: error._tag, message: error.message })) }
`
      },
      null
    )
    const result = runNode(cwd, "app.mjs", isolatedEnv(path.join(cwd, "home")))
    expect(result.stderr).toBe("")
    const error = JSON.parse(result.stdout)
    expect(error).toMatchObject({ code: 9000, tag: "Generic" })
    expect(error.message).toContain("RUNTIME_STORAGE_APP")
    expect(fs.existsSync(path.join(cwd, "home"))).toBe(false)
  })

  it("creates the directory 0700 and the database, -wal and -shm files 0600 under umask 022", () => {
    const cwd = project({
      "modes.mjs": `
import * as fs from "node:fs"
import * as path from "node:path"
import { set, databasePath, close } from "runtime:storage"
await set("k", "v")
const file = databasePath()
const mode = (p) => (fs.statSync(p).mode & 0o777).toString(8)
console.log(JSON.stringify({ umask: process.umask().toString(8), dir: mode(path.dirname(file)), db: mode(file), wal: mode(file + "-wal"), shm: mode(file + "-shm") }))
await close()
`
    })
    const result = runNode(cwd, "modes.mjs", isolatedEnv(path.join(cwd, "home")), "umask 022")
    expect(result.stderr).toBe("")
    expect(JSON.parse(result.stdout)).toEqual({ umask: "22", dir: "700", db: "600", wal: "600", shm: "600" })
  })
})

describe("ranges through runtime:storage", () => {
  it("list, page, count and getEntry work on the default instance, a list being its first call", () => {
    const cwd = project({
      "ranges.mjs": `
import { list, page, count, getEntry, setMany, close } from "runtime:storage"
const seen = []
for await (const { key } of list({ prefix: "a" })) seen.push(key)
await setMany({ a1: 1, a2: 2, b: 3 })
for await (const { key, value } of list({ prefix: "a" })) seen.push(key + "=" + value)
const first = await page({ limit: 2 })
const rest = await page({ limit: 2, cursor: first.cursor })
console.log(JSON.stringify({
  seen,
  count: await count({ prefix: "a" }),
  pages: [first.entries.map((e) => e.key), rest.entries.map((e) => e.key), rest.cursor],
  entry: (await getEntry("b")).value,
  missing: await getEntry("c")
}))
await close()
`
    })
    const result = runNode(cwd, "ranges.mjs", isolatedEnv(path.join(cwd, "home")))
    expect(result.stderr).toBe("")
    expect(JSON.parse(result.stdout)).toEqual({
      seen: ["a1=1", "a2=2"],
      count: 2,
      pages: [["a1", "a2"], ["b"], null],
      entry: 3,
      missing: null
    })
  })
})

describe("the TypeScript declaration of runtime:storage", () => {
  it("type-checks the documented usage and rejects a wrong one", () => {
    const cwd = project({
      "tsconfig.json": JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ["runtime-storage/runtime"]
        },
        files: ["app.ts"]
      }),
      "app.ts": `
import { get, set, entries, list, page, count, getEntry, open, type StorageError } from "runtime:storage"

await set("recent_files", ["/a.txt"])
const files: string[] | null = await get<string[]>("recent_files")
const state = await get<{ width: number }>("window_state", { store: "settings" })
const width: number | undefined = state?.width
const all: Array<{ key: string; value: number }> = await entries<number>({ store: "counters" })
const client = open({ app: "my-app", durability: "strict" })
await client.close()
const code = (error: StorageError): number => error.code
for await (const entry of list<{ title: string }>({ prefix: "draft:", reverse: true, limit: 10 })) {
  const title: string = entry.value.title
  void title
}
const first = await page<number>({ prefix: "n:", limit: 50 })
const next: number[] = (await page<number>({ prefix: "n:", cursor: first.cursor ?? undefined })).entries.map((e) => e.value)
const drafts: number = await count({ prefix: "draft:" })
const meta = await getEntry<string>("theme", { store: "settings" })
const updated: number | undefined = meta?.updatedAt
// @ts-expect-error a prefix is a string
await count({ prefix: 5 })
// @ts-expect-error reverse is a boolean
list({ reverse: "yes" })
// @ts-expect-error a key is a string
await get(42)
// @ts-expect-error stores are named by string
await set("k", 1, { store: 7 })
export { files, width, all, code, next, drafts, updated }
`
    })
    const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc")
    const output = (() => {
      try {
        return execFileSync(process.execPath, [tsc, "-p", cwd], { encoding: "utf8" })
      } catch (error) {
        return (error as { stdout: string }).stdout
      }
    })()
    expect(output).toBe("")
  })
})
