// Cold start, Promise API: open an existing database, read one key, print it. Timed as a whole process.
// Usage: node bench/cold-promise.mjs <filename> <key>
import { open } from "../dist/promise.js"

const [filename, key] = process.argv.slice(2)
const client = open({ filename, durability: "relaxed" })
const value = await client.get(key)
console.log(JSON.stringify(value))
await client.close()
