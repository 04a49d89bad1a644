import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

/** Child-process tests run the built package (dist/), as users do: build it once before the tests. */
export default function setup(): void {
  const root = fileURLToPath(new URL("..", import.meta.url))
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url)), "-p", "tsconfig.build.json"],
    {
      cwd: root,
      stdio: "inherit"
    }
  )
}
