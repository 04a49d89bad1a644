/**
 * The PostgreSQL dialect of the SQL backend: its schema, its migrations and its statements.
 *
 * What PostgreSQL makes different, and how the schema answers it:
 * - `text` cannot hold U+0000, which keys and store names may contain, and its order is the server's collation:
 *   keys and store names are stored as `bytea`, their UTF-8 bytes. Byte order of UTF-8 is code point order, the
 *   library's order, whatever the collation (validation refuses lone surrogates, so the encoding is exact).
 * - `jsonb` reorders keys, drops duplicates and loses `-0`: values stay the serializer's exact JSON text, in `value`
 *   (`text`; the serializer escapes U+0000), or their bytes in `data` (`bytea`), exactly one of the two.
 * - A sequence is not commit-ordered. The log's last seq lives in a one-row clock table instead, and a write
 *   advances it: the row's lock orders writers, each waiting for the one before to commit, so seqs, and the versions
 *   made of them, increase in commit order, as SQLite's write lock makes them. A transaction locks the row first
 *   (`FOR UPDATE`: the write lock, held to its end), and every statement after it sees what the writers before it
 *   committed (READ COMMITTED takes a snapshot per statement). A set or setMany outside a transaction is ONE
 *   statement, one round trip: its `UPDATE` of the clock row waits for the writer before it and then reads the row
 *   as committed (PostgreSQL re-reads a row it waited for), and its upsert meets the rows as they are committed
 *   (ON CONFLICT DO UPDATE acts on the latest version of a row). Removals cannot be one statement: a `DELETE` would
 *   miss a key that a writer it waited for inserted after its snapshot.
 * - Reads that must see one snapshot (the change feed's, `getMany` across statements) run `REPEATABLE READ`.
 * - Every write queues a notification on the schema's channel, delivered when it commits (and never when it rolls
 *   back): watchers in other processes and on other machines wake on `LISTEN`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { DatabaseError } from "../errors/StorageError.js"
import type { ChangeRecord, Row, Stored } from "./backend.js"
import type { Dialect, Statement, ValueColumns } from "./dialect.js"
import { openFailure } from "./failure.js"
import {
  CHANGES_TABLE,
  EXPIRY_INDEX,
  Kind,
  MIGRATIONS_TABLE,
  type Migration,
  type MigrationPlan,
  TABLE
} from "./schema.js"

/** The one-row table of the log's last seq. */
const CLOCK_TABLE = "runtime_storage_clock"

/** The schema the tables live in unless the options name another. */
const DEFAULT_SCHEMA = "public"

/** An identifier, quoted. */
const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** Numbers the `?` placeholders of a statement's text `$1`, `$2`, … (no statement here has a `?` of its own). */
const numbered = (text: string): string => {
  let n = 0
  return text.replace(/\?/g, () => `$${++n}`)
}

/** A 32-bit FNV-1a hash of a string's UTF-16 units. */
const hash32 = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * The advisory lock key of a schema's migrations (before they run there is no table to lock): 64 bits, the high half
 * this library's tag ("RSTM"), the low half a hash of the schema's name (two schemas whose names collide would only
 * wait for each other).
 */
const lockKey = (tag: string, schema: string): string =>
  BigInt.asIntN(64, (BigInt(hash32(tag)) << 32n) | BigInt(hash32(schema))).toString()

/** The channel the writes of a schema notify: one per schema of a database. */
const channelOf = (schema: string): string => `runtime_storage:${schema}`

/** A key or store name as PostgreSQL stores it: its UTF-8 bytes. */
const bytes = (name: string): Buffer => Buffer.from(name, "utf8")

/** A value's two columns: its JSON text, or its bytes. */
const valueColumns = (text: Stored | null): readonly [string | null, Uint8Array | null] =>
  text === null ? [null, null] : typeof text === "string" ? [text, null] : [null, text]

/**
 * The migrations of PostgreSQL. Its first schema is SQLite's fourth (expiry), so the two count separately: a
 * PostgreSQL schema's migration ids are its own.
 */
const migrationsOf = (schema: string): ReadonlyArray<Migration> => {
  const s = quote(schema)
  return [
    {
      id: 1,
      name: "pg_create_runtime_storage",
      statements: [
        // `expires_at` rides in the key index, so listing and counting keys (which skip expired ones) can read the
        // index alone; it is NULL for entries that never expire, so those stay cheap to update.
        `CREATE TABLE ${s}.${TABLE} (
          store bytea NOT NULL,
          key bytea NOT NULL,
          version bigint NOT NULL,
          created_at bigint NOT NULL,
          updated_at bigint NOT NULL,
          expires_at bigint,
          value text,
          data bytea,
          CONSTRAINT ${TABLE}_key PRIMARY KEY (store, key) INCLUDE (expires_at),
          CONSTRAINT ${TABLE}_one_value CHECK ((value IS NULL) <> (data IS NULL))
        )`,
        `CREATE INDEX ${EXPIRY_INDEX} ON ${s}.${TABLE} (expires_at, store, key) WHERE expires_at IS NOT NULL`,
        `CREATE TABLE ${s}.${CHANGES_TABLE} (
          seq bigint PRIMARY KEY,
          version bigint NOT NULL,
          at bigint NOT NULL,
          kind smallint NOT NULL,
          store bytea,
          key bytea,
          value text,
          data bytea
        )`,
        // The origin of the log: nothing before it, the first write takes version 2, as on SQLite.
        `INSERT INTO ${s}.${CHANGES_TABLE} (seq, version, at, kind) VALUES (1, 0, 0, ${Kind.Origin})`,
        // The log's last seq: every write advances it, and its row lock is the write lock.
        `CREATE TABLE ${s}.${CLOCK_TABLE} (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL)`,
        `INSERT INTO ${s}.${CLOCK_TABLE} (id, seq) VALUES (1, 1)`
      ]
    }
  ]
}

const planOf = (schema: string): MigrationPlan => {
  const s = quote(schema)
  return {
    migrations: migrationsOf(schema),
    migrationsTable: [
      "SELECT to_regclass($1) IS NOT NULL AS present WHERE to_regclass($1) IS NOT NULL",
      [`${s}.${MIGRATIONS_TABLE}`]
    ],
    applied: `SELECT migration_id AS id, name FROM ${s}.${MIGRATIONS_TABLE} ORDER BY migration_id`,
    prepare: [],
    // Two instances starting at once: the second waits here, then finds the work done. Creating the schema and the
    // migrations table under the lock keeps two `IF NOT EXISTS` from racing each other.
    lock: [
      ["SELECT pg_advisory_xact_lock($1::bigint)", [lockKey("RSTM", schema)]],
      [`CREATE SCHEMA IF NOT EXISTS ${s}`, []],
      [
        `CREATE TABLE IF NOT EXISTS ${s}.${MIGRATIONS_TABLE} (
          migration_id integer PRIMARY KEY,
          name text NOT NULL,
          created_at bigint NOT NULL
        )`,
        []
      ]
    ],
    record: `INSERT INTO ${s}.${MIGRATIONS_TABLE} (migration_id, name, created_at) VALUES ($1, $2, $3)`
  }
}

/** The keys, JSON texts and bytes of rows, as three arrays. */
const rowColumns = (
  rows: ReadonlyArray<Row>
): readonly [Array<Buffer>, Array<string | null>, Array<Uint8Array | null>] => {
  const keys: Array<Buffer> = []
  const values: Array<string | null> = []
  const data: Array<Uint8Array | null> = []
  for (const [key, text] of rows) {
    const [value, binary] = valueColumns(text)
    keys.push(bytes(key))
    values.push(value)
    data.push(binary)
  }
  return [keys, values, data]
}

/** The PostgreSQL dialect for the tables of one schema. */
export const pgDialect = (schema: string): Dialect => {
  const s = quote(schema)
  const T = `${s}.${TABLE}`
  const C = `${s}.${CHANGES_TABLE}`
  const K = `${s}.${CLOCK_TABLE}`
  const LIVE = "(expires_at IS NULL OR expires_at > ?)"
  const SIZE = "COALESCE(SUM(COALESCE(octet_length(value), octet_length(data))), 0)"
  const statement = (text: string, params: ReadonlyArray<unknown>): Statement => ({ text, params })
  const sql = {
    get: numbered(`SELECT value, data FROM ${T} WHERE store = ? AND key = ? AND ${LIVE}`),
    has: numbered(`SELECT 1 AS present FROM ${T} WHERE store = ? AND key = ? AND ${LIVE}`),
    anyKey: numbered(`SELECT 1 AS present FROM ${T} WHERE store = ? LIMIT 1`),
    versionOf: numbered(`SELECT version FROM ${T} WHERE store = ? AND key = ? AND ${LIVE}`),
    getEntry: numbered(
      `SELECT value, data, created_at, updated_at, version, expires_at FROM ${T} WHERE store = ? AND key = ? AND ${LIVE}`
    ),
    // The records take the seqs after the log's last, in order, and the clock moves past them.
    logChanges: `WITH clock AS (UPDATE ${K} SET seq = seq + $8 WHERE id = 1 RETURNING seq - $8 AS head)
      INSERT INTO ${C} (seq, version, at, kind, store, key, value, data)
      SELECT clock.head + r.n, r.version, r.at, r.kind, r.store, r.key, r.value, r.data
      FROM clock,
        unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::bytea[], $5::bytea[], $6::text[], $7::bytea[])
          WITH ORDINALITY AS r(version, at, kind, store, key, value, data, n)
      RETURNING seq`,
    // A set or setMany in one statement (see above): the clock first (every other part reads it), then the rows
    // and their change records, all with the version of the write's first record.
    setManyAtOnce: `WITH clock AS (UPDATE ${K} SET seq = seq + cardinality($5::bytea[]) WHERE id = 1
        RETURNING seq - cardinality($5::bytea[]) + 1 AS first, seq AS last),
      rows AS (
        INSERT INTO ${T} AS r (store, key, value, data, created_at, updated_at, version, expires_at)
        SELECT $1, u.key, u.value, u.data, $2, $2, (SELECT first FROM clock), $4
        FROM unnest($5::bytea[], $6::text[], $7::bytea[]) AS u(key, value, data)
        ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, data = excluded.data,
          updated_at = excluded.updated_at, version = excluded.version, expires_at = excluded.expires_at,
          created_at = CASE WHEN r.expires_at <= excluded.updated_at THEN excluded.created_at ELSE r.created_at END),
      log AS (
        INSERT INTO ${C} (seq, version, at, kind, store, key, value, data)
        SELECT clock.first + u.n - 1, clock.first, $2, ${Kind.Set}, $1, u.key, u.value, u.data
        FROM clock, unnest($5::bytea[], $6::text[], $7::bytea[]) WITH ORDINALITY AS u(key, value, data, n))
      SELECT first, last, pg_notify($3, '1') FROM clock`,
    changes: (byStore: boolean) =>
      numbered(
        `SELECT seq, version, kind, store, key, value, data FROM ${C} WHERE seq > ? AND seq <= ? AND version > ?${byStore ? " AND store = ?" : ""} AND kind > ${Kind.Origin} ORDER BY seq LIMIT ?`
      ),
    size: numbered(`SELECT ${SIZE} AS size FROM ${T} WHERE store = ? AND ${LIVE}`),
    stores: numbered(
      `SELECT store, count(*) AS count, ${SIZE} AS size FROM ${T} WHERE ${LIVE} GROUP BY store ORDER BY store`
    ),
    upsert: `INSERT INTO ${T} AS r (store, key, value, data, created_at, updated_at, version, expires_at)
      SELECT $1, u.key, u.value, u.data, $2, $2, $3, $4 FROM unnest($5::bytea[], $6::text[], $7::bytea[]) AS u(key, value, data)
      ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, data = excluded.data,
        updated_at = excluded.updated_at, version = excluded.version, expires_at = excluded.expires_at,
        created_at = CASE WHEN r.expires_at <= excluded.updated_at THEN excluded.created_at ELSE r.created_at END`,
    selectIn: numbered(`SELECT key, value, data FROM ${T} WHERE store = ? AND ${LIVE} AND key = ANY(?::bytea[])`),
    deleteIn: `DELETE FROM ${T} WHERE store = $1 AND key = ANY($2::bytea[]) RETURNING key, expires_at`,
    deleteExpired: `DELETE FROM ${T} WHERE (store, key) IN (SELECT store, key FROM ${T} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2) RETURNING store, key, expires_at`
  }
  const changesAll = sql.changes(false)
  const changesByStore = sql.changes(true)
  const rangeTexts = new Map<string, string>()
  const rangeText = (read: string, lower: boolean, upper: boolean, reverse: boolean, limited: boolean): string => {
    const shape = `${read}${+lower}${+upper}${+reverse}${+limited}`
    let text = rangeTexts.get(shape)
    if (text === undefined) {
      const where = `store = ?${lower ? " AND key >= ?" : ""}${upper ? " AND key < ?" : ""} AND ${LIVE}`
      const columns =
        read === "keys"
          ? "key"
          : read === "entries"
            ? "key, value, data"
            : read === "versioned"
              ? "key, value, data, version"
              : "key, value, data, created_at, updated_at, version, expires_at"
      text = numbered(
        read === "count"
          ? limited
            ? `SELECT count(*) AS count FROM (SELECT 1 FROM ${T} WHERE ${where} LIMIT ?) AS r`
            : `SELECT count(*) AS count FROM ${T} WHERE ${where}`
          : `SELECT ${columns} FROM ${T} WHERE ${where} ORDER BY key${reverse ? " DESC" : ""} LIMIT ?`
      )
      rangeTexts.set(shape, text)
    }
    return text
  }
  const channel = channelOf(schema)
  return {
    engine: "pg",
    migrations: planOf(schema),
    channel,
    lock: statement(`SELECT seq, pg_notify($1, '1') FROM ${K} WHERE id = 1 FOR UPDATE`, [channel]),
    snapshot: statement("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", []),
    get: (store, key, now) => statement(sql.get, [bytes(store), bytes(key), now]),
    has: (store, key, now) => statement(sql.has, [bytes(store), bytes(key), now]),
    anyKey: (store) => statement(sql.anyKey, [bytes(store)]),
    versionOf: (store, key, now) => statement(sql.versionOf, [bytes(store), bytes(key), now]),
    getEntry: (store, key, now) => statement(sql.getEntry, [bytes(store), bytes(key), now]),
    nextVersion: statement(`SELECT seq + 1 AS version FROM ${K} WHERE id = 1`, []),
    logChanges: (records: ReadonlyArray<ChangeRecord>) => {
      const columns: Array<Array<unknown>> = [[], [], [], [], [], [], []]
      for (const [version, at, kind, store, key, text] of records) {
        const [value, data] = valueColumns(text)
        columns[0]!.push(version)
        columns[1]!.push(at)
        columns[2]!.push(kind)
        columns[3]!.push(store === null ? null : bytes(store))
        columns[4]!.push(key === null ? null : bytes(key))
        columns[5]!.push(value)
        columns[6]!.push(data)
      }
      return statement(sql.logChanges, [...columns, records.length])
    },
    head: statement(`SELECT COALESCE(MAX(seq), 0) AS head FROM ${C}`, []),
    origin: statement(`SELECT seq, version FROM ${C} ORDER BY seq LIMIT 1`, []),
    changes: (after, head, since, store, limit) =>
      store === undefined
        ? statement(changesAll, [after, head, since, limit])
        : statement(changesByStore, [after, head, since, bytes(store), limit]),
    recordAt: (seq) => statement(`SELECT at FROM ${C} WHERE seq = $1`, [seq]),
    trimBefore: (seq) => statement(`DELETE FROM ${C} WHERE seq < $1`, [seq]),
    makeOrigin: (seq) =>
      statement(
        `UPDATE ${C} SET kind = ${Kind.Origin}, store = NULL, key = NULL, value = NULL, data = NULL WHERE seq = $1`,
        [seq]
      ),
    range: (read, store, range, now) => {
      const limited = read !== "count" || range.limit !== undefined
      const params: Array<unknown> = [bytes(store)]
      if (range.lower !== undefined) params.push(bytes(range.lower))
      if (range.upper !== undefined) params.push(bytes(range.upper))
      params.push(now)
      // LIMIT NULL is no limit.
      if (limited) params.push(range.limit ?? null)
      return statement(
        rangeText(read, range.lower !== undefined, range.upper !== undefined, range.reverse, limited),
        params
      )
    },
    size: (store, now) => statement(sql.size, [bytes(store), now]),
    stores: (now) => statement(sql.stores, [now]),
    clear: (store) => statement(`DELETE FROM ${T} WHERE store = $1`, [bytes(store)]),
    upsert: (store, rows, now, version, expiresAt) =>
      statement(sql.upsert, [bytes(store), now, version, expiresAt, ...rowColumns(rows)]),
    setManyAtOnce: (store, rows, now, expiresAt) =>
      statement(sql.setManyAtOnce, [bytes(store), now, channel, expiresAt, ...rowColumns(rows)]),
    selectIn: (store, keys, now) => statement(sql.selectIn, [bytes(store), now, keys.map(bytes)]),
    deleteIn: (store, keys) => statement(sql.deleteIn, [bytes(store), keys.map(bytes)]),
    nextExpiry: statement(`SELECT expires_at FROM ${T} WHERE expires_at IS NOT NULL ORDER BY expires_at LIMIT 1`, []),
    deleteExpired: (now, limit) => statement(sql.deleteExpired, [now, limit]),
    name: (column) => (column as Buffer).toString("utf8"),
    text: (row: ValueColumns) => row.value ?? row.data ?? null
  }
}

/**
 * Where a server is, for messages: the URL without its password (and without its query, which may hold one).
 *
 * @internal
 */
export const describeServer = (options: {
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  readonly username?: string | undefined
}): string => {
  const url =
    options.url === undefined ? undefined : Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  if (url !== undefined) {
    try {
      const parsed = new URL(url)
      return `${parsed.protocol}//${parsed.username === "" ? "" : `${decodeURIComponent(parsed.username)}@`}${parsed.host}${parsed.pathname}`
    } catch {
      return "postgres://(an invalid URL)"
    }
  }
  return `postgres://${options.username === undefined ? "" : `${options.username}@`}${options.host ?? "localhost"}${options.port === undefined ? "" : `:${options.port}`}/${options.database ?? ""}`
}

/** Checks the schema option: a name PostgreSQL keeps as given (it cuts longer names to 63 bytes, silently). */
export const checkSchema = (schema: unknown): Effect.Effect<string, DatabaseError> => {
  if (schema === undefined) return Effect.succeed(DEFAULT_SCHEMA)
  if (typeof schema !== "string" || schema === "" || schema.includes("\u0000") || Buffer.byteLength(schema) > 63) {
    return Effect.fail(
      new DatabaseError({
        reason: `The schema option must be a PostgreSQL identifier of 1 to 63 bytes without U+0000, got ${typeof schema === "string" ? JSON.stringify(schema) : typeof schema}`
      })
    )
  }
  return Effect.succeed(schema)
}

/**
 * Checks the database stores text as UTF-8: values are JSON text, and `size` counts their UTF-8 bytes. A database
 * of another encoding (LATIN1, SQL_ASCII) would refuse some values or count them otherwise.
 */
export const checkEncoding = (sql: SqlClient.SqlClient): Effect.Effect<void, DatabaseError> =>
  sql.unsafe<{ readonly encoding: string }>("SELECT current_setting('server_encoding') AS encoding").pipe(
    Effect.mapError((cause) => openFailure("Could not open the database", undefined, cause)),
    Effect.flatMap((rows) =>
      rows[0]?.encoding === "UTF8"
        ? Effect.void
        : Effect.fail(
            new DatabaseError({
              reason: `The database's encoding is ${rows[0]?.encoding}, not UTF8: create it with ENCODING 'UTF8'`
            })
          )
    )
  )

/** What the listener needs of a PostgreSQL client: its connection settings (`@effect/sql-pg`'s `PgClient` has them). */
export interface PgLike {
  readonly config?: {
    readonly url?: Redacted.Redacted | undefined
    readonly host?: string | undefined
    readonly port?: number | undefined
    readonly database?: string | undefined
    readonly username?: string | undefined
    readonly password?: Redacted.Redacted | undefined
    readonly ssl?: unknown
  }
}

/** How long the listener waits before connecting again after its connection failed or dropped. */
const RELISTEN_DELAY = 250

/**
 * Wakes the watchers of a schema when another client's write commits: one connection of its own that `LISTEN`s on
 * the schema's channel (its dialect's) while anything watches (closed when nothing does). When it drops (the server restarted, the
 * network failed) it connects again, and wakes the watchers each time it starts listening, since a write may have
 * committed while nothing listened. Its socket never keeps the process alive.
 */
export const pgListener =
  (client: PgLike, channel: string) =>
  (wake: () => void): (() => void) => {
    const config = client.config ?? {}
    let stopped = false
    let current: { end: () => Promise<void> } | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    const again = (): void => {
      if (stopped || timer !== undefined) return
      current = undefined
      wake()
      timer = setTimeout(() => {
        timer = undefined
        void listen()
      }, RELISTEN_DELAY)
      timer.unref()
    }
    const listen = async (): Promise<void> => {
      const pg = (await import("pg")).default
      const connection = new pg.Client({
        connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
        host: config.host,
        port: config.port,
        database: config.database,
        user: config.username,
        password: config.password === undefined ? undefined : Redacted.value(config.password),
        ssl: config.ssl as never,
        application_name: "runtime-storage watch"
      })
      let failed = false
      const fail = (): void => {
        if (failed) return
        failed = true
        void connection.end().catch(() => undefined)
        again()
      }
      connection.on("error", fail)
      connection.on("end", fail)
      connection.on("notification", (message) => {
        if (message.channel === channel) wake()
      })
      try {
        await connection.connect()
        // The listening socket must not keep the process alive: watching alone never does.
        ;(connection as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.()
        if (stopped) {
          failed = true
          await connection.end()
          return
        }
        current = connection
        await connection.query(`LISTEN "${channel.replaceAll('"', '""')}"`)
        wake()
      } catch {
        fail()
      }
    }
    void listen()
    return () => {
      stopped = true
      clearTimeout(timer)
      void current?.end().catch(() => undefined)
      current = undefined
    }
  }
