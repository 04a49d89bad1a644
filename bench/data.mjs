/**
 * The data of the benchmark: keys and ~250-byte JSON values, built before any timing so that no side pays for them.
 */

/** The key of index `i`: fixed width, so key order is index order. */
export const keyAt = (i) => `user:${String(i).padStart(7, "0")}`

const TAGS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]

/** A value of about 250 bytes as JSON text; `version` makes overwrites write different values. */
export const valueAt = (i, version = 0) => ({
  id: i,
  name: `User ${String(i).padStart(7, "0")}`,
  email: `user${i}@example.com`,
  active: i % 3 !== 0,
  score: Math.round(((i * 7919) % 10007) * 0.37 * 100) / 100,
  tags: [TAGS[i % 8], TAGS[(i + 3) % 8], TAGS[(i + 5) % 8]],
  nested: {
    version,
    createdAt: new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString(),
    counts: [i % 10, (i * 3) % 100, (i * 7) % 1000],
    prefs: { theme: i % 2 === 0 ? "dark" : "light", lang: "en-US", notify: true }
  }
})

/** `count` keys starting at index `from`. */
export const makeKeys = (count, from = 0) => Array.from({ length: count }, (_, i) => keyAt(from + i))

/** `count` values starting at index `from`. */
export const makeValues = (count, from = 0, version = 0) =>
  Array.from({ length: count }, (_, i) => valueAt(from + i, version))

/** Splits a list into consecutive batches of `size`. */
export const batchesOf = (items, size) => {
  const batches = []
  for (let start = 0; start < items.length; start += size) batches.push(items.slice(start, start + size))
  return batches
}

/** Structural equality of JSON values, via their canonical text (key order is preserved by JSON round trips). */
export const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b)
