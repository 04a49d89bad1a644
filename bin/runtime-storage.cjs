#!/usr/bin/env node
// The `runtime-storage` command. It runs dist/cli.cjs, the command line bundled into one file, through a V8 code
// cache kept in the user's cache directory: compiling the bundle is most of a cold start, and Node 20 has no
// compile cache of its own (Node 22's module.enableCompileCache does the same). The cache is named after a hash of
// the bundle, the Node version and the architecture, so a stale one is never used; V8 also checks it and falls back
// to compiling when it does not fit. RUNTIME_STORAGE_CLI_CACHE=off turns it off.
"use strict"
const crypto = require("node:crypto")
const fs = require("node:fs")
const Module = require("node:module")
const os = require("node:os")
const path = require("node:path")
const vm = require("node:vm")

const bundle = path.join(__dirname, "..", "dist", "cli.cjs")
const source = fs.readFileSync(bundle, "utf8")
const { version } = require("../package.json")

const cacheDirectory = () => {
  if (process.env.RUNTIME_STORAGE_CLI_CACHE === "off") return undefined
  const home = os.homedir()
  if (process.platform === "darwin") return path.join(home, "Library", "Caches", "runtime-storage")
  if (process.platform === "win32") {
    return path.join(process.env.LOCALAPPDATA || path.join(home, "AppData", "Local"), "runtime-storage", "Cache")
  }
  return path.join(process.env.XDG_CACHE_HOME || path.join(home, ".cache"), "runtime-storage")
}

/**
 * Whether a path is this user's own and writable by no one else: a code cache is code, so one another user could
 * have written (or swapped through a directory they can write) is never loaded.
 */
const ownedPrivately = (file) => {
  try {
    const stat = fs.lstatSync(file)
    const uid = typeof process.getuid === "function" ? process.getuid() : stat.uid
    return !stat.isSymbolicLink() && stat.uid === uid && (stat.mode & 0o022) === 0
  } catch {
    return false
  }
}

const directory = cacheDirectory()
const hash = crypto.createHash("sha256").update(source).digest("hex").slice(0, 16)
const cacheFile = directory && path.join(directory, `cli-${version}-${process.version}-${process.arch}-${hash}.v8cache`)
let cachedData
if (cacheFile && ownedPrivately(directory) && ownedPrivately(cacheFile)) {
  try {
    cachedData = fs.readFileSync(cacheFile)
  } catch {
    // Gone meanwhile: this run makes it again.
  }
}
const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData })
if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
  // Made at exit, so it also holds the functions this run compiled; written under a temporary name, then renamed.
  process.once("exit", () => {
    try {
      fs.mkdirSync(directory, { recursive: true, mode: 0o700 })
      if (!ownedPrivately(directory)) return
      // A new file of our own (never through a planted link), renamed over the cache: a concurrent run's rename
      // wins or loses whole.
      const temporary = `${cacheFile}.${process.pid}-${crypto.randomBytes(6).toString("hex")}`
      fs.writeFileSync(temporary, script.createCachedData(), { mode: 0o600, flag: "wx" })
      fs.renameSync(temporary, cacheFile)
      for (const name of fs.readdirSync(directory)) {
        // Older caches of this version (another Node.js, an earlier build); other versions keep theirs.
        if (name.startsWith(`cli-${version}-`) && name.endsWith(".v8cache") && name !== path.basename(cacheFile)) {
          fs.rmSync(path.join(directory, name), { force: true })
        }
      }
    } catch {
      // A read-only home: run without a cache.
    }
  })
}
const module_ = { exports: {} }
script.runInThisContext()(module_.exports, Module.createRequire(bundle), module_, bundle, path.dirname(bundle))
module_.exports.run(process.argv, version)
