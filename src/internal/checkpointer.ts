/**
 * Checkpoints off the caller's thread. In WAL mode, commits append pages to the `-wal` file, and a checkpoint copies
 * them back into the database. SQLite's own (automatic) checkpoint runs inside the commit that grew the WAL past
 * 1,000 pages, on the caller's thread: after a batch of 100,000 entries, that one commit copied ~25 MB and froze the
 * event loop for ~60 ms. Instead, the library's connection never checkpoints: it asks this worker thread, which has
 * a connection of its own to the same file, to run a PASSIVE checkpoint (it never waits for a lock and never blocks
 * a reader or a writer) whenever the commits since the last one may have written that much. When the worker cannot
 * be started or fails, the connection goes back to SQLite's automatic checkpoints: nothing is ever left unchecked.
 *
 * The worker starts on the first checkpoint (an app that writes little never starts it), does not keep the process
 * alive, and is closed before the connection is, so the last connection's close still removes the `-wal` file.
 *
 * @internal
 */
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
let db
parentPort.on("message", (message) => {
  if (message === "close") {
    if (db !== undefined) db.close()
    db = undefined
    parentPort.close()
    return
  }
  try {
    if (db === undefined) db = new Database(workerData.filename, { fileMustExist: true })
    const [result] = db.pragma("wal_checkpoint(PASSIVE)")
    parentPort.postMessage({ whole: result.checkpointed >= result.log })
  } catch (error) {
    parentPort.postMessage(String(error && error.message))
  }
})
`

/** Where better-sqlite3 is, for the worker to load the same driver. */
const driverPath = (): string => createRequire(import.meta.url).resolve("better-sqlite3")

/** Pages a commit is assumed to append to the WAL, at least, and bytes per page of what it wrote. */
const PAGES_PER_COMMIT = 3
const PAGE_BYTES = 4096
/** How many pages written since the last checkpoint call for the next (SQLite's automatic threshold). */
const THRESHOLD = 1000

export class Checkpointer {
  private worker: Worker | undefined
  private pages = 0
  private running = false
  private again = false
  private failed = false
  /** The last checkpoint could not copy the whole WAL (a reader held an old snapshot): try again at the next commit. */
  private behind = false
  private closing: Promise<void> | undefined

  /** `fallBack`: gives the checkpoints back to SQLite (the worker could not run them). */
  constructor(
    private readonly filename: string,
    private readonly fallBack: () => void
  ) {}

  /**
   * A commit wrote about `bytes` (keys and values, each counted twice: the entry and its change record): asks for a
   * checkpoint once enough may have piled up, or at once while the last one was left behind.
   */
  committed(bytes: number): void {
    this.pages += PAGES_PER_COMMIT + Math.ceil(bytes / PAGE_BYTES)
    if ((this.pages < THRESHOLD && !this.behind) || this.failed || this.closing !== undefined) return
    this.pages = 0
    if (this.running) {
      this.again = true
      return
    }
    this.start()
  }

  private start(): void {
    try {
      if (this.worker === undefined) {
        const worker = new Worker(SOURCE, { eval: true, workerData: { driver: driverPath(), filename: this.filename } })
        worker.on("message", (message) => this.done(message))
        worker.on("error", (error) => this.fail(error))
        // After the listeners: adding a 'message' listener refs the worker again.
        worker.unref()
        this.worker = worker
      }
      this.running = true
      this.worker.postMessage("checkpoint")
    } catch (error) {
      this.fail(error)
    }
  }

  private done(message: unknown): void {
    this.running = false
    if (typeof message !== "object" || message === null) {
      this.fail(message)
      return
    }
    this.behind = !(message as { readonly whole: boolean }).whole
    if (this.again && this.closing === undefined) {
      this.again = false
      this.start()
    }
  }

  private fail(_error: unknown): void {
    if (this.failed) return
    this.failed = true
    this.running = false
    this.fallBack()
    void this.worker?.terminate()
    this.worker = undefined
  }

  /** Ends the worker (closing its connection first); resolves once it has exited. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing
    const worker = this.worker
    this.worker = undefined
    this.closing =
      worker === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            // Waited for: an unref'd worker alone would let the process end before its connection is closed.
            worker.ref()
            worker.once("exit", () => resolve())
            worker.postMessage("close")
          })
    return this.closing
  }
}
