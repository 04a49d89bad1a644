import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

/** Child-process tests run the built package (dist/), as users do: build it once before the tests. */
export default function setup(): void {
  const root = fileURLToPath(new URL("..", import.meta.url))
  const run = (...args: Array<string>) => execFileSync(process.execPath, args, { cwd: root, stdio: "inherit" })
  run("node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json")
  run("scripts/bundle.mjs")
}
