/**
 * The command line's part of the benchmark: whole processes, as a user runs them. `runtime-storage get KEY --file F`
 * against a node one-liner reading the same value with better-sqlite3; `export` and `import` of every entry of the
 * ranges database against raw better-sqlite3 doing the same (bench/cli-raw.mjs), with each process's peak RSS.
 */
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import Database from "better-sqlite3"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")
const BIN = path.join(root, "bin", "runtime-storage.cjs")
const RAW = path.join(here, "cli-raw.mjs")
const PEAK = path.join(here, "peak-rss.cjs")

const hashOf = (file) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex")

/**
 * Runs the command-line workloads. `ctx`: { options, tmp, rangesFile, huge, sampleIndex, keyAt, valueAt, sameJson,
 * record, check, log, rotated }.
 */
export const runCli = (ctx) => {
  const { options, tmp, rangesFile, huge, check, record, rotated, log } = ctx
  // The CLI's code cache lives here, made by the first (untimed) run, as on a user's machine after the first use.
  const env = { ...process.env, XDG_CACHE_HOME: path.join(tmp, "cli-cache") }
  const run = (side, args, peakFile) => {
    const command =
      side === "cli"
        ? [...(peakFile ? ["--require", PEAK] : []), BIN, ...args]
        : side === "raw"
          ? [...(peakFile ? ["--require", PEAK] : []), RAW, ...args]
          : args
    const start = performance.now()
    const result = spawnSync(process.execPath, command, {
      encoding: "utf8",
      cwd: root,
      env: peakFile ? { ...env, PEAK_RSS_FILE: peakFile } : env,
      maxBuffer: 1 << 26
    })
    const ms = performance.now() - start
    check(result.status === 0, `${side} ${args[0]} failed (${result.status}): ${result.stderr}`)
    return { ms, stdout: result.stdout, peak: peakFile ? Number(fs.readFileSync(peakFile, "utf8")) : undefined }
  }

  // get: a whole process that opens the file, reads one key and prints it.
  const index = ctx.sampleIndex
  const key = ctx.keyAt(index)
  const commands = {
    cli: ["get", key, "--file", rangesFile, "--json"],
    raw: ["get", rangesFile, "default", key],
    node: ["-e", "0"]
  }
  // (No untimed run when verifying: nothing is timed.)
  for (let rep = options.verify ? 0 : -1; rep < options.coldReps; rep++) {
    for (const side of rotated(["cli", "raw", "node"], Math.max(0, rep))) {
      const { ms, stdout } = run(side, commands[side])
      if (side !== "node") check(ctx.sameJson(JSON.parse(stdout), ctx.valueAt(index)), `${side} get printed ${stdout}`)
      if (rep >= 0) record("cli:get", side, ms * 1000)
    }
  }
  log(`  get: ${options.coldReps} processes per side`)

  // export and import of every entry, with peak RSS, and the same commands on one entry for the baseline RSS.
  const tiny = path.join(tmp, "cli-tiny.db")
  const tinyLines = path.join(tmp, "cli-tiny.ndjson")
  fs.writeFileSync(tinyLines, `${JSON.stringify({ store: "default", key, value: ctx.valueAt(index) })}\n`)
  run("cli", ["import", tinyLines, "--file", tiny])
  const rawTiny = path.join(tmp, "cli-raw-tiny.db")
  run("raw", ["import", tinyLines, rawTiny])
  const peakFile = path.join(tmp, "cli-peak")
  const out = { cli: path.join(tmp, "cli-export.ndjson"), raw: path.join(tmp, "cli-raw-export.ndjson") }
  for (let rep = 0; rep < options.memoryReps; rep++) {
    for (const side of rotated(["cli", "raw"], rep)) {
      fs.rmSync(out[side], { force: true })
      const exported =
        side === "cli"
          ? run("cli", ["export", "--file", rangesFile, "-o", out[side]], peakFile)
          : run("raw", ["export", rangesFile, out[side]], peakFile)
      const exportBase =
        side === "cli"
          ? run("cli", ["export", "--file", tiny, "-o", `${out[side]}.tiny`], peakFile)
          : run("raw", ["export", rawTiny, `${out[side]}.tiny`], peakFile)
      record("cli:export", side, exported.ms * 1000)
      record("cli:exportPeak", side, (exported.peak - exportBase.peak) / 2 ** 20)
      const target = path.join(tmp, `cli-import-${side}-${rep}.db`)
      const imported =
        side === "cli"
          ? run("cli", ["import", out[side], "--file", target], peakFile)
          : run("raw", ["import", out[side], target], peakFile)
      const importBase =
        side === "cli"
          ? run("cli", ["import", tinyLines, "--file", path.join(tmp, `cli-tiny-${rep}.db`)], peakFile)
          : run("raw", ["import", tinyLines, path.join(tmp, `cli-raw-tiny-${rep}.db`)], peakFile)
      record("cli:import", side, imported.ms * 1000)
      record("cli:importPeak", side, (imported.peak - importBase.peak) / 2 ** 20)
      // Verified: the imported database holds every entry, with the sample's value.
      const db = new Database(target, { readonly: true })
      const rows = db.prepare("SELECT count(*) FROM runtime_storage").pluck().get()
      const sample = db
        .prepare("SELECT value FROM runtime_storage WHERE store = 'default' AND key = ?")
        .pluck()
        .get(key)
      db.close()
      check(rows === huge, `${side} import wrote ${rows} rows`)
      check(ctx.sameJson(JSON.parse(sample), ctx.valueAt(index)), `${side} import: wrong sample value`)
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${target}${suffix}`, { force: true })
    }
    // Both sides wrote the same lines: the stored text is the serializer's JSON, which raw splices in as it is.
    check(hashOf(out.cli) === hashOf(out.raw), "the CLI's export differs from raw's")
    log(`  export and import of ${huge.toLocaleString("en-US")} entries: rep ${rep + 1}/${options.memoryReps}`)
  }
}
