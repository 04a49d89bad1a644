// Replaces dist/promise.js (compiled by tsc) with one minified ES module that holds it and all it imports, Effect
// included, but better-sqlite3 (and PostgreSQL's chunk, below). The Promise API is what a desktop app loads at start-up: loading one file instead of
// ~150 modules cuts its start-up by about half (see BENCHMARKS.md, "cold start"). Its types stay tsc's
// dist/promise.d.ts. The Effect API (dist/index.js) is left as modules, to share the app's own copy of Effect.
import * as fs from "node:fs"
import { build } from "esbuild"

// Chunk names carry a hash: the chunks of an earlier build would pile up beside the new ones.
fs.rmSync("dist/chunks", { recursive: true, force: true })

// PostgreSQL is loaded by a client's first call only when it opens a URL: code splitting puts it (with the parts of
// Effect only it uses) in a chunk of its own, so SQLite apps never load it; node-postgres (CommonJS, with its
// `require`s of node's modules) stays an external package.
await build({
  entryPoints: ["dist/promise.js"],
  outdir: "dist",
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
  allowOverwrite: true,
  bundle: true,
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "pg", "pg-*"],
  logLevel: "warning"
})

// The command line, as one CommonJS file that bin/runtime-storage.cjs runs through a V8 code cache (a cache needs a
// script, which an ES module is not). @effect/cli's config-file parsers (yaml, toml, ini) are not reached from the
// modules imported, so they are not in it.
await build({
  entryPoints: ["dist/cli/main.js"],
  outfile: "dist/cli.cjs",
  bundle: true,
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  platform: "node",
  format: "cjs",
  target: "node20",
  // A CommonJS file has no import.meta: its URL is the bundle's own (the checkpoint worker resolves better-sqlite3
  // from it).
  banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  define: { "import.meta.url": "__importMetaUrl" },
  external: ["better-sqlite3", "@parcel/watcher"],
  logLevel: "warning"
})
