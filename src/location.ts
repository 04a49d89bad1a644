/**
 * Where an application's database lives by default, per platform, and how the default instance finds the
 * application's name.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { GenericError, InvalidKeyError } from "./errors/StorageError.js"
import { quote } from "./internal/quote.js"

/**
 * What {@link defaultDatabasePath} reads of the machine; pass them to compute another platform's path.
 *
 * @since 0.1.0
 */
export interface PlatformInfo {
  readonly platform?: NodeJS.Platform | undefined
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  readonly homedir?: string | undefined
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i
// Characters that are a separator or invalid in a file name on Linux, macOS or Windows.
const FORBIDDEN = /[/\\:*?"<>|]/
/** Whether the string has a C0 or C1 control character, NUL included. */
const hasControl = (text: string): boolean => {
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    if (unit < 0x20 || (unit >= 0x7f && unit <= 0x9f)) return true
  }
  return false
}

/**
 * Why `app` is not a valid application name (a single directory name valid on Linux, macOS and Windows that
 * cannot leave the base directory), or `undefined` when it is valid.
 *
 * @since 0.1.0
 */
export const appNameProblem = (app: unknown): string | undefined => {
  if (typeof app !== "string") return `must be a string, got ${app === null ? "null" : typeof app}`
  if (app.length === 0) return "must not be empty"
  if (app === "." || app === "..") return `must not be ${quote(app)}`
  if (hasControl(app)) return "must not contain NUL or control characters"
  if (FORBIDDEN.test(app)) return 'must not contain a path separator or any of : * ? " < > |'
  if (!app.isWellFormed()) return "must not contain a lone surrogate"
  if (/[. ]$/.test(app)) return "must not end with a dot or a space (Windows drops them)"
  if (/^ /.test(app)) return "must not start with a space"
  if (WINDOWS_RESERVED.test(app)) return `must not be a reserved device name on Windows (${app.split(".")[0]})`
  if (Buffer.byteLength(app, "utf8") > 255) return "must be at most 255 UTF-8 bytes"
  return undefined
}

const checkAppName = (app: string): void => {
  const problem = appNameProblem(app)
  if (problem !== undefined) {
    throw new InvalidKeyError({
      reason: `The app name ${quote(String(app))} is not usable as a directory name: it ${problem}`
    })
  }
}

/**
 * The default database file of an application: `$XDG_DATA_HOME/<app>/storage.db` (else
 * `~/.local/share/<app>/storage.db`) on Linux and other Unix systems, `~/Library/Application Support/<app>/storage.db`
 * on macOS, `%APPDATA%\<app>\storage.db` on Windows. Pure: pass `platform`, `env` and `homedir` to compute the path
 * of another platform. Throws `InvalidKeyError` (9004) for an app name that is not a valid directory name on all
 * three platforms or could leave the base directory.
 *
 * @since 0.1.0
 */
export const defaultDatabasePath = (app: string, info: PlatformInfo = {}): string => {
  checkAppName(app)
  const platform = info.platform ?? process.platform
  const env = info.env ?? process.env
  const home = info.homedir ?? os.homedir()
  if (platform === "win32") {
    const appData =
      env.APPDATA !== undefined && path.win32.isAbsolute(env.APPDATA)
        ? env.APPDATA
        : path.win32.join(home, "AppData", "Roaming")
    return path.win32.join(appData, app, "storage.db")
  }
  if (platform === "darwin") return path.posix.join(home, "Library", "Application Support", app, "storage.db")
  // The XDG Base Directory spec: a relative XDG_DATA_HOME is invalid and must be ignored.
  const dataHome =
    env.XDG_DATA_HOME !== undefined && path.posix.isAbsolute(env.XDG_DATA_HOME)
      ? env.XDG_DATA_HOME
      : path.posix.join(home, ".local", "share")
  return path.posix.join(dataHome, app, "storage.db")
}

/**
 * The name of the nearest `package.json` at or above `dir`, with a scoped `@scope/name` turned into `scope-name`.
 *
 * @internal
 */
export const packageAppName = (dir: string): string | undefined => {
  let current = path.resolve(dir)
  for (;;) {
    const file = path.join(current, "package.json")
    let text: string | undefined
    try {
      text = fs.readFileSync(file, "utf8")
    } catch {
      text = undefined
    }
    if (text !== undefined) {
      let name: unknown
      try {
        name = (JSON.parse(text) as { readonly name?: unknown } | null)?.name
      } catch {
        name = undefined
      }
      if (typeof name === "string" && name !== "") return name.replace(/^@([^/]+)\/(.+)$/, "$1-$2")
    }
    const parent = path.dirname(current)
    if (parent === current) return undefined
    current = parent
  }
}

/**
 * The database file of the default instance: `filename` if configured, else the default path of the app named by
 * `app`, the `RUNTIME_STORAGE_APP` environment variable, or the nearest `package.json`.
 *
 * @internal
 */
export const resolveDefaultFilename = (
  options: { readonly app?: string | undefined; readonly filename?: string | undefined },
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd()
): string => {
  if (options.app !== undefined) return defaultDatabasePath(options.app)
  if (options.filename !== undefined) return options.filename
  const fromEnv = env.RUNTIME_STORAGE_APP
  if (fromEnv !== undefined && fromEnv !== "") return defaultDatabasePath(fromEnv)
  const fromPackage = packageAppName(cwd)
  if (fromPackage !== undefined) return defaultDatabasePath(fromPackage)
  throw new GenericError({
    reason:
      'runtime:storage needs an application name to find its database. Set one of: configure({ app: "my-app" }) ' +
      '(or configure({ filename })), the RUNTIME_STORAGE_APP environment variable, or a "name" in your package.json'
  })
}
