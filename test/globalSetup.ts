import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"
import { startPgServer } from "./pg-server.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** The URL of the PostgreSQL server the tests share (password included). */
    readonly pgUrl: string
  }
}

/**
 * Child-process tests run the built package (dist/), as users do: build it once before the tests. The PostgreSQL
 * tests share one real server, started here on a free port in a throwaway directory and removed at the end; if it
 * cannot start, the run fails with the reason.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = fileURLToPath(new URL("..", import.meta.url))
  const run = (...args: Array<string>) => execFileSync(process.execPath, args, { cwd: root, stdio: "inherit" })
  run("node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json")
  run("scripts/bundle.mjs")
  const server = await startPgServer()
  project.provide("pgUrl", server.url)
  return () => server.destroy()
}
