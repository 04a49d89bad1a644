import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { GenericError, InvalidKeyError } from "../src/index.js"
import { appNameProblem, defaultDatabasePath, packageAppName, resolveDefaultFilename } from "../src/location.js"
import { tempDir } from "./support.js"

const dir = tempDir()

describe("defaultDatabasePath", () => {
  it("is ~/.local/share/<app>/storage.db on Linux, or under $XDG_DATA_HOME when it is absolute", () => {
    expect(defaultDatabasePath("notes", { platform: "linux", env: {}, homedir: "/home/ada" })).toBe(
      "/home/ada/.local/share/notes/storage.db"
    )
    expect(
      defaultDatabasePath("notes", { platform: "linux", env: { XDG_DATA_HOME: "/data/ada" }, homedir: "/home/ada" })
    ).toBe("/data/ada/notes/storage.db")
    // The XDG spec says a relative path is invalid and must be ignored.
    expect(
      defaultDatabasePath("notes", { platform: "linux", env: { XDG_DATA_HOME: "rel/dir" }, homedir: "/home/ada" })
    ).toBe("/home/ada/.local/share/notes/storage.db")
  })

  it("is ~/Library/Application Support/<app>/storage.db on macOS", () => {
    expect(
      defaultDatabasePath("notes", { platform: "darwin", env: { XDG_DATA_HOME: "/ignored" }, homedir: "/Users/ada" })
    ).toBe("/Users/ada/Library/Application Support/notes/storage.db")
  })

  it("is %APPDATA%\\<app>\\storage.db on Windows", () => {
    expect(
      defaultDatabasePath("notes", {
        platform: "win32",
        env: { APPDATA: "C:\\Users\\ada\\AppData\\Roaming" },
        homedir: "C:\\Users\\ada"
      })
    ).toBe("C:\\Users\\ada\\AppData\\Roaming\\notes\\storage.db")
    expect(defaultDatabasePath("notes", { platform: "win32", env: {}, homedir: "C:\\Users\\ada" })).toBe(
      "C:\\Users\\ada\\AppData\\Roaming\\notes\\storage.db"
    )
  })

  it("refuses app names that could leave the base directory or are invalid on some platform", () => {
    const refused = [
      "",
      ".",
      "..",
      "../evil",
      "a/b",
      "a\\b",
      "C:evil",
      "nul\u0000byte",
      "tab\there",
      "CON",
      "con",
      "Nul.txt",
      "COM1",
      "lpt9.log",
      "trailing.",
      "trailing ",
      " leading",
      "what?",
      "a*b",
      'quote"d',
      "<tag>",
      "pipe|d",
      "x".repeat(256),
      "\uD800",
      42,
      undefined
    ]
    for (const app of refused) {
      expect(appNameProblem(app), JSON.stringify(app)).toBeDefined()
      for (const platform of ["linux", "darwin", "win32"] as const) {
        expect(() => defaultDatabasePath(app as string, { platform, env: {}, homedir: "/home/ada" })).toThrow(
          InvalidKeyError
        )
      }
    }
    for (const app of [
      "notes",
      "My App",
      "com.example.notes",
      "scope-name",
      "日記",
      "a.b-c_d",
      "CONSOLE",
      "x".repeat(255)
    ]) {
      expect(appNameProblem(app), app).toBeUndefined()
    }
  })

  it("names the problem in a coded error", () => {
    try {
      defaultDatabasePath("../x")
      expect.unreachable()
    } catch (error) {
      expect(error).toMatchObject({ _tag: "InvalidKey", code: 9004 })
      expect((error as Error).message).toContain("path separator")
    }
  })
})

describe("the app name of the default instance", () => {
  const project = (name: unknown): string => {
    const root = fs.mkdtempSync(path.join(dir, "project-"))
    fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ name }))
    const nested = path.join(root, "src", "deep")
    fs.mkdirSync(nested, { recursive: true })
    return nested
  }

  it("comes from the nearest package.json, a scoped name becoming scope-name", () => {
    expect(packageAppName(project("plain-app"))).toBe("plain-app")
    expect(packageAppName(project("@acme/notes"))).toBe("acme-notes")
  })

  it("is resolved as configure({ app }), configure({ filename }), RUNTIME_STORAGE_APP, then package.json", () => {
    const cwd = project("from-package")
    const env = { RUNTIME_STORAGE_APP: "from-env", XDG_DATA_HOME: "/data" }
    const home = defaultDatabasePath("x").replace(/x[/\\]storage\.db$/, "")
    expect(resolveDefaultFilename({ app: "from-app", filename: "/f.db" }, env, cwd)).toBe(
      `${home}from-app${path.sep}storage.db`
    )
    expect(resolveDefaultFilename({ filename: "/f.db" }, env, cwd)).toBe("/f.db")
    expect(resolveDefaultFilename({}, env, cwd)).toBe(`${home}from-env${path.sep}storage.db`)
    expect(resolveDefaultFilename({}, {}, cwd)).toBe(`${home}from-package${path.sep}storage.db`)
  })

  it("is missing without any of them: a 9000 error explains the three ways to set one", () => {
    const root = fs.mkdtempSync(path.join(dir, "bare-"))
    expect(packageAppName(root)).toBeUndefined()
    try {
      resolveDefaultFilename({}, {}, root)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(GenericError)
      expect(error).toMatchObject({ code: 9000 })
      const message = (error as Error).message
      expect(message).toContain("configure({ app")
      expect(message).toContain("RUNTIME_STORAGE_APP")
      expect(message).toContain("package.json")
    }
  })
})
