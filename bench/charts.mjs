/**
 * The benchmark's charts, as plain SVG (no script, no external font or image: they render on a code host), made from
 * the same run as the tables:
 * - ratios: the Promise API's median ratio to raw per workload, a bar on a log scale, with its goal drawn;
 * - sizes: µs per operation against the store's size, both on log scales, for the Promise API (solid) and raw
 *   better-sqlite3 (dashed).
 */

const escapeXml = (text) =>
  String(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

/** A log10 scale from [min, max] to [from, to]. */
const logScale = (min, max, from, to) => (value) =>
  from +
  ((Math.log10(Math.min(Math.max(value, min), max)) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) *
    (to - from)

const formatTick = (value) => (value >= 1000 ? `${value / 1000}k` : String(value))

/**
 * `rows`: { label, ratio, goal } (goal undefined: none), in the tables' order.
 */
export const ratioChart = (rows, title) => {
  const shown = rows.filter((row) => Number.isFinite(row.ratio))
  const left = 470
  const right = 880
  const rowHeight = 18
  const top = 50
  const height = top + shown.length * rowHeight + 40
  const x = logScale(0.02, 50, left, right)
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="${height}" viewBox="0 0 900 ${height}" ${FONT} font-size="11" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="900" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="10" y="36" fill="#555">Promise API ÷ raw better-sqlite3 (or node-postgres), median; log scale. Bar green: goal met, red: missed, grey: no goal. Black tick: the goal.</text>`
  ]
  for (const tick of [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20]) {
    const at = x(tick).toFixed(1)
    parts.push(
      `<line x1="${at}" y1="${top - 4}" x2="${at}" y2="${height - 30}" stroke="${tick === 1 ? "#333" : "#ddd"}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`,
      `<text x="${at}" y="${height - 16}" text-anchor="middle" fill="#333">${tick}x</text>`
    )
  }
  shown.forEach((row, i) => {
    const y = top + i * rowHeight
    const label = row.label.length > 78 ? `${row.label.slice(0, 77)}…` : row.label
    const color = row.goal === undefined ? "#9e9e9e" : row.ratio <= row.goal ? "#2e7d32" : "#c62828"
    const from = x(0.02)
    const to = x(row.ratio)
    parts.push(
      `<text x="${left - 6}" y="${y + 12}" text-anchor="end">${escapeXml(label)}</text>`,
      `<rect x="${from.toFixed(1)}" y="${y + 3}" width="${Math.max(1, to - from).toFixed(1)}" height="${rowHeight - 6}" fill="${color}"/>`,
      `<text x="${(to + 4).toFixed(1)}" y="${y + 12}" fill="#333">${row.ratio.toFixed(2)}x</text>`
    )
    if (row.goal !== undefined) {
      const at = x(row.goal).toFixed(1)
      parts.push(`<line x1="${at}" y1="${y + 1}" x2="${at}" y2="${y + rowHeight - 1}" stroke="#000" stroke-width="2"/>`)
    }
  })
  parts.push("</svg>")
  return `${parts.join("\n")}\n`
}

const COLORS = { get: "#1565c0", has: "#6a1b9a", set: "#2e7d32", remove: "#ef6c00", page: "#c62828" }

/**
 * `series`: { operation: { size: { raw, promise } } } in µs per operation; `sizes` ascending.
 */
export const sizeChart = (series, sizes, title) => {
  const width = 900
  const height = 460
  const left = 70
  const right = 700
  const top = 50
  const bottom = 400
  const values = Object.values(series).flatMap((bySize) =>
    Object.values(bySize).flatMap((sides) => [sides.raw, sides.promise])
  )
  const finite = values.filter(Number.isFinite)
  const low = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...finite))))
  const high = 10 ** Math.ceil(Math.log10(Math.max(...finite)))
  const x = logScale(sizes[0], sizes.at(-1), left, right)
  const y = logScale(low, high, bottom, top)
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="11" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="10" y="36" fill="#555">µs per operation (median, log scale) against keys in the store (log scale). Solid: Promise API; dashed: raw better-sqlite3.</text>`
  ]
  for (let decade = low; decade <= high; decade *= 10) {
    const at = y(decade).toFixed(1)
    parts.push(
      `<line x1="${left}" y1="${at}" x2="${right}" y2="${at}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${Number(at) + 4}" text-anchor="end" fill="#333">${formatTick(decade)} µs</text>`
    )
  }
  for (const size of sizes) {
    const at = x(size).toFixed(1)
    parts.push(
      `<line x1="${at}" y1="${top}" x2="${at}" y2="${bottom}" stroke="#ddd"/>`,
      `<text x="${at}" y="${bottom + 16}" text-anchor="middle" fill="#333">${size.toLocaleString("en-US")}</text>`
    )
  }
  parts.push(
    `<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" fill="#333">keys in the store</text>`
  )
  Object.entries(series).forEach(([operation, bySize], index) => {
    const color = COLORS[operation] ?? "#000"
    for (const side of ["promise", "raw"]) {
      const points = sizes
        .filter((size) => Number.isFinite(bySize[size]?.[side]))
        .map((size) => `${x(size).toFixed(1)},${y(bySize[size][side]).toFixed(1)}`)
      if (points.length === 0) continue
      parts.push(
        `<polyline points="${points.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${side === "raw" ? ' stroke-dasharray="6 4"' : ""}/>`
      )
      for (const point of points) {
        const [px, py] = point.split(",")
        parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`)
      }
    }
    const ly = top + 10 + index * 20
    parts.push(
      `<line x1="${right + 20}" y1="${ly}" x2="${right + 50}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${right + 56}" y="${ly + 4}">${escapeXml(operation)}</text>`
    )
  })
  parts.push("</svg>")
  return `${parts.join("\n")}\n`
}
