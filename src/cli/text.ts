/**
 * What the command line reads and prints, as text: JSON read exactly (a number JSON.parse would round is refused),
 * values written exactly (the library's serializer, so `-0` stays `-0`), bytes as base64, durations such as `10m`,
 * and tables for a terminal.
 */
import { GenericError } from "../errors/StorageError.js"
import { serialize } from "../internal/json.js"
import type { Json, JsonText } from "../services/Storage.js"

/** A number of at least this many significant digits, or with a large exponent, may not survive `JSON.parse`. */
const MAYBE_INEXACT = /(?:\d\.?){16}|[eE][+-]?\d{3}/

/** The significant digits and the decimal exponent of a number's text, e.g. "120.50" → ["1205", 2]. */
const digitsOf = (text: string): readonly [string, number] => {
  const unsigned = text.startsWith("-") ? text.slice(1) : text
  const [mantissa, exponent = "0"] = unsigned.toLowerCase().split("e") as [string, string?]
  const [whole, fraction = ""] = mantissa.split(".") as [string, string?]
  const all = `${whole}${fraction}`
  const leading = all.length - all.replace(/^0+/, "").length
  const digits = all.slice(leading).replace(/0+$/, "")
  return digits === "" ? ["0", 0] : [digits, whole.length - leading - 1 + Number(exponent)]
}

/**
 * The number literals of a JSON text that `JSON.parse` would not read exactly: each with what it would become.
 * Strings are skipped; the text is known to be valid JSON.
 */
const inexactNumbers = (text: string): Array<readonly [string, number]> => {
  const found: Array<readonly [string, number]> = []
  const literal = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index)
    if (char === 0x22) {
      // Skip a string, escapes included.
      for (index++; index < text.length && text.charCodeAt(index) !== 0x22; index++) {
        if (text.charCodeAt(index) === 0x5c) index++
      }
      continue
    }
    if (char === 0x2d || (char >= 0x30 && char <= 0x39)) {
      literal.lastIndex = index
      const token = literal.exec(text)![0]
      index += token.length - 1
      const value = Number(token)
      if (!Number.isFinite(value)) {
        found.push([token, value])
        continue
      }
      const [digits, exponent] = digitsOf(token)
      const [kept, keptExponent] = digitsOf(value.toExponential())
      if (digits !== kept || (digits !== "0" && exponent !== keptExponent)) found.push([token, value])
    }
  }
  return found
}

/** Why a JSON text was refused: not JSON at all (`syntax`), or a number it cannot carry exactly. */
export class JsonTextProblem {
  constructor(
    readonly reason: string,
    readonly syntax: boolean
  ) {}
}

/**
 * Parses JSON text exactly: a syntax error, or a number that JSON cannot carry exactly (it would be rounded to the
 * nearest double, or become 0 or Infinity), is a problem saying what it would have become.
 */
export const parseJsonExactly = (text: string): Json | JsonTextProblem => {
  let value: Json
  try {
    value = JSON.parse(text) as Json
  } catch (cause) {
    return new JsonTextProblem(`is not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`, true)
  }
  if (MAYBE_INEXACT.test(text)) {
    const [first] = inexactNumbers(text)
    if (first !== undefined) {
      return new JsonTextProblem(
        `holds the number ${first[0]}, which JSON (doubles) cannot carry exactly: it would become ` +
          `${String(first[1])}; store it as a string`,
        false
      )
    }
  }
  return value
}

/** A value as the command line writes it: its exact JSON text, by the library's serializer (`-0` kept). */
export const jsonText = (value: unknown): string => {
  const text = serialize(value)
  // A value read from the store always serializes: it was stored as this JSON.
  if (typeof text !== "string") throw new GenericError({ reason: `Unexpected value at ${text.path}: ${text.reason}` })
  return text
}

/**
 * A value as a field of a JSON line: `"value":<json>` or, for bytes, `"bytes":"<base64>"`. The text is written
 * by hand so a value is serialized once, exactly.
 */
export const valueField = (value: unknown): string =>
  value instanceof Uint8Array
    ? `"bytes":"${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64")}"`
    : `"value":${jsonText(value)}`

/** A value as stored JSON text (or bytes) as a field of a JSON line, as {@link valueField} writes its value. */
export const textField = (text: JsonText): string => (typeof text === "string" ? `"value":${text}` : valueField(text))

/** A value on a terminal: compact JSON, or a description of bytes. */
export const showValue = (value: unknown): string =>
  value instanceof Uint8Array ? `<${value.byteLength} bytes>` : jsonText(value)

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A duration as the command line takes it: `500ms`, `30s`, `10m`, `2h`, `7d` (or a plain number of milliseconds)
 * becomes milliseconds; anything else ("10 minutes") is left for the library to read as an Effect duration (and
 * refuse with 9004 when it is none).
 */
export const parseDuration = (text: string): number | string => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  if (match === null) return text
  return Number(match[1]) * UNITS[match[2] ?? "ms"]!
}

/** Bytes as a person reads them: 512 B, 1.5 KiB, 12.0 MiB. */
export const showBytes = (bytes: number): string => {
  if (bytes < 1024) return `${bytes} B`
  const units = ["KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = -1
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** Code points, not UTF-16 units: what a terminal shows (wide characters aside). */
const width = (text: string): number => {
  let count = 0
  for (const _ of text) count++
  return count
}

/** A character written as a `\uXXXX` escape. */
const escaped = (char: string): string => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`

/** A control character shown as an escape, so a hostile key cannot move the cursor or clear the screen. */
export const printable = (text: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, escaped)

/**
 * JSON text for a terminal: JSON escapes the C0 controls in strings but not DEL and the C1 controls (U+0080 to
 * U+009F, one of which starts an escape sequence on some terminals), which are escaped here; its own newlines stay.
 */
export const printableJson = (text: string): string => text.replace(/[\u007f-\u009f]/g, escaped)

/** Rows under a header, in columns padded to their widest cell; `right` lists the columns aligned right. */
export const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  right: ReadonlyArray<number> = []
): string => {
  const all = [header, ...rows.map((row) => row.map(printable))]
  const widths = header.map((_, column) => Math.max(...all.map((row) => width(row[column] ?? ""))))
  return all
    .map((row) =>
      row
        .map((cell, column) => {
          const pad = " ".repeat(widths[column]! - width(cell))
          if (column === row.length - 1 && !right.includes(column)) return cell
          return right.includes(column) ? pad + cell : cell + pad
        })
        .join("  ")
    )
    .join("\n")
    .concat("\n")
}
