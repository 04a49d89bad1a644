// The benchmark must not rot: its verifying pass runs every workload of `npm run bench` once, at tiny sizes, on
// the built package (npm test builds it first), and checks every result it reads; it asserts no timing.
import { spawn } from "node:child_process"
import * as path from "node:path"
import { expect, inject, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")

it("npm run bench -- --verify runs every workload and checks every result", async () => {
  const child = spawn(process.execPath, ["bench/bench.mjs", "--verify"], {
    cwd: root,
    env: { ...process.env, RUNTIME_STORAGE_BENCH_PG_URL: inject("pgUrl") },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout.on("data", (data) => (output += data))
  child.stderr.on("data", (data) => (output += data))
  const code = await new Promise((resolve) => child.on("exit", resolve))
  expect(output).not.toContain("Verification failed")
  expect({ code, tail: output.split("\n").slice(-15).join("\n") }).toMatchObject({ code: 0 })
  // Every section ran: its heading is in the log, and the report's tables were made.
  for (const section of ["per-operation workloads", "event-loop stalls", "cost as stores grow", "PostgreSQL"]) {
    expect(output).toContain(section)
  }
}, 240_000)
