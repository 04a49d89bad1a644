// Replaces dist/promise.js (compiled by tsc) with one minified ES module that holds it and all it imports, Effect
// included, but better-sqlite3. The Promise API is what a desktop app loads at start-up: loading one file instead of
// ~150 modules cuts its start-up by about half (see BENCHMARKS.md, "cold start"). Its types stay tsc's
// dist/promise.d.ts. The Effect API (dist/index.js) is left as modules, to share the app's own copy of Effect.
import { build } from "esbuild"

await build({
  entryPoints: ["dist/promise.js"],
  outfile: "dist/promise.js",
  allowOverwrite: true,
  bundle: true,
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3"],
  logLevel: "warning"
})
