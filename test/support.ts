import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

/** A temporary directory removed when the test file ends. */
export const tempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-storage-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}
