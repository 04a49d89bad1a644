// The examples of the runtime:storage documentation, run as written against this machine's default database.
// `npm start` runs this file with `node --import runtime-storage/register`, which resolves "runtime:storage".
import {
  atomic,
  clear,
  close,
  count,
  databasePath,
  deleteMany,
  entries,
  get,
  getEntry,
  getMany,
  has,
  keys,
  list,
  onChange,
  page,
  remove,
  set,
  setMany,
  size,
  transaction,
  watch
} from "runtime:storage"

const show = (label, value) => console.log(`  ${label.padEnd(40)} ${JSON.stringify(value)}`)

console.log(`runtime:storage demo\n  database: ${databasePath()}\n`)

// A counter that survives restarts: run the demo twice to see it grow.
const launches = ((await get("launches")) ?? 0) + 1
await set("launches", launches)
const firstLaunch = (await get("first_launch")) ?? new Date().toISOString()
await set("first_launch", firstLaunch)
console.log("Persistence")
show('get("launches")', launches)
show('get("first_launch")', firstLaunch)

console.log("\nBasic operations")
await set("username", "ada")
show('get("username")', await get("username"))
show('has("username")', await has("username"))
show('get("missing")', await get("missing"))
await set("temporary", true)
show('remove("temporary")', await remove("temporary"))
show('has("temporary")', await has("temporary"))

console.log("\nNamed stores")
await set("theme", "dark", { store: "settings" })
await set("fontSize", 14, { store: "settings" })
await set("theme", "cached-theme-css", { store: "cache" })
show('get("theme", { store: "settings" })', await get("theme", { store: "settings" }))
show('get("theme", { store: "cache" })', await get("theme", { store: "cache" }))
await clear({ store: "cache" })
show('keys({ store: "cache" }) after clear', await keys({ store: "cache" }))
show('keys({ store: "settings" })', await keys({ store: "settings" }))

console.log("\nListing and iteration")
for (const { key, value } of await entries({ store: "settings" })) show(`  ${key}`, value)
show("keys()", await keys())
show('size({ store: "settings" }) bytes', await size({ store: "settings" }))

console.log("\nComplex values")
const recentFiles = ["/home/ada/notes.md", "/home/ada/analytical-engine.txt"]
await set("recent_files", recentFiles)
const files = await get("recent_files")
show('get("recent_files")', files)
await set("window_state", { x: 120, y: 80, width: 1280, height: 800, maximized: false, monitor: { id: 1, scale: 2 } })
show('get("window_state")', await get("window_state"))

console.log("\nBatches")
await setMany({ "draft:1": "Hello", "draft:2": "World", "draft:3": "!" }, { store: "drafts" })
show('getMany(["draft:1", "draft:3"])', Object.fromEntries(await getMany(["draft:1", "draft:3"], { store: "drafts" })))
show("deleteMany(all drafts)", await deleteMany(await keys({ store: "drafts" }), { store: "drafts" }))

console.log("\nRanges, pages and metadata")
await setMany(
  Array.from({ length: 250 }, (_, i) => [`user:${String(i).padStart(4, "0")}`, { name: `User ${i}` }]),
  { store: "users" }
)
show('count({ prefix: "user:01" })', await count({ store: "users", prefix: "user:01" }))
show("keys({ prefix, reverse, limit: 3 })", await keys({ store: "users", prefix: "user:", reverse: true, limit: 3 }))
let streamed = 0
for await (const { key } of list({ store: "users", prefix: "user:" })) if (key.endsWith("7")) streamed++
show("list({ prefix }): keys ending in 7", streamed)
const pages = []
let cursor
do {
  const next = await page({ store: "users", prefix: "user:", limit: 100, cursor })
  pages.push(next.entries.length)
  cursor = next.cursor ?? undefined
} while (cursor !== undefined)
show("page sizes, following the cursors", pages)
const launchEntry = await getEntry("launches")
show('getEntry("launches") created', new Date(launchEntry.createdAt).toISOString())
show('getEntry("launches") updated', new Date(launchEntry.updatedAt).toISOString())

console.log("\nAtomic commits and transactions")
const visits = await getEntry("visits")
const committed = await atomic()
  .check("visits", visits?.version ?? null)
  .set("visits", (visits?.value ?? 0) + 1)
  .commit()
show('atomic() check-and-set of "visits"', { ok: committed.ok, visits: await get("visits") })
await setMany({ alice: 100, bob: 0 }, { store: "balances" })
await transaction(async (tx) => {
  const alice = await tx.get("alice", { store: "balances" })
  const bob = await tx.get("bob", { store: "balances" })
  await tx.setMany({ alice: alice - 10, bob: bob + 10 }, { store: "balances" })
})
show(
  "balances after moving 10",
  Object.fromEntries(await entries({ store: "balances" }).then((all) => all.map((e) => [e.key, e.value])))
)
try {
  await transaction(async (tx) => {
    await tx.set("alice", -1_000, { store: "balances" })
    throw new Error("insufficient funds: rolled back")
  })
} catch (error) {
  show("a transaction that throws", error.message)
}
show('get("alice") after it', await get("alice", { store: "balances" }))

console.log("\nWatching changes")
const heard = []
const stop = onChange({ store: "settings", key: "theme" }, (change) => {
  heard.push(`${change.type} ${JSON.stringify(change.value)} at version ${change.version}`)
})
await set("theme", "light", { store: "settings" })
await set("theme", "dark", { store: "settings" })
await new Promise((resolve) => setTimeout(resolve, 20))
stop()
show("onChange heard", heard)
const since = (await getEntry("alice", { store: "balances" })).version
await set("bob", 20, { store: "balances" })
for await (const change of watch({ store: "balances" }, { since })) {
  show(
    `watch since ${since} replays`,
    `${change.type} ${change.key} = ${change.value} (last of its write: ${change.last})`
  )
  break
}

console.log("\nExpiring entries")
await set("session", { user: "ada" }, { store: "cache", expireIn: 200 })
const session = await getEntry("session", { store: "cache" })
show('get("session") now', await get("session", { store: "cache" }))
show("it expires at", new Date(session.expiresAt).toISOString())
const expired = watch({ store: "cache", key: "session" }, { since: session.version })
await new Promise((resolve) => setTimeout(resolve, 250))
show('get("session") 250 ms later', await get("session", { store: "cache" }))
// The sweeper deletes it within a second; its timer (like a watch's) never keeps a process alive, so this one
// keeps itself alive meanwhile.
const alive = setTimeout(() => undefined, 5000)
for await (const change of expired) {
  show("the sweeper deleted it; watch says", `${change.type} ${change.key} (expired: ${change.expired})`)
  break
}
clearTimeout(alive)

console.log("\nErrors are coded")
try {
  await set("created", new Date())
} catch (error) {
  show(`${error._tag} (${error.code})`, error.message)
}
try {
  await get(42)
} catch (error) {
  show(`${error._tag} (${error.code})`, error.message)
}
try {
  await set("k", 1, { ttl: 1000 })
} catch (error) {
  show(`${error._tag} (${error.code})`, error.message)
}

await close()
