/**
 * The one serializer of runtime-storage: it writes a value as JSON text only when JSON carries it exactly, and
 * otherwise says where in the value the problem is and what it was. Every backend stores the text it produces,
 * so the rules (and the byte counts of `size`) are the same everywhere by construction.
 *
 * `-0` is kept: it is written as `-0`, which is valid JSON and which `JSON.parse` reads back as `-0`.
 */

/** Where in a value JSON cannot carry it, and why. */
export interface JsonProblem {
  readonly path: string
  readonly reason: string
  /** What the value threw when it was read, if that was the problem. */
  readonly cause?: unknown
}

class Refusal {
  /** The path to the refused value, filled in innermost first as the refusal unwinds. */
  readonly path: Array<string | number> = []
  constructor(
    readonly reason: string,
    readonly cause?: unknown
  ) {}
}

/** A value that threw while it was read (a getter or a proxy of the caller's): refused, with what it threw. */
const threw = (error: unknown): Refusal =>
  new Refusal(`threw when it was read (${error instanceof Error ? error.message : String(error)})`, error)

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

const describeObject = (value: object): string => {
  if (value instanceof Date) return "is a Date (JSON would turn it into a string); store value.toISOString() instead"
  if (value instanceof Map) return "is a Map (JSON would turn it into {}); store Object.fromEntries(map) instead"
  if (value instanceof Set) return "is a Set (JSON would turn it into {}); store [...set] instead"
  if (value instanceof Uint8Array) {
    return "is a Uint8Array inside a value: bytes are stored only as a whole value; store them under a key of their own"
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return `is a ${value.constructor.name} (JSON would not keep its type); store Array.from(value) instead`
  }
  if (value instanceof String || value instanceof Number || value instanceof Boolean) {
    return `is a boxed ${value.constructor.name} object; store the primitive instead`
  }
  const name = (value as { readonly constructor?: { readonly name?: unknown } }).constructor?.name
  return typeof name === "string" && name !== ""
    ? `is an instance of ${name}, not a plain object (JSON would keep only its own fields)`
    : "is not a plain object (JSON would keep only its own fields)"
}

/**
 * `JSON.stringify` of a string, without the native call for the common short string that needs no escaping
 * (no control character, quote, backslash or surrogate): keys and short values, most of what is written.
 */
const quoteString = (text: string): string => {
  if (text.length > 64) return JSON.stringify(text)
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    if (unit < 0x20 || unit === 0x22 || unit === 0x5c || (unit >= 0xd800 && unit <= 0xdfff)) return JSON.stringify(text)
  }
  return `"${text}"`
}

/** Depth past which the writer checks for a cycle before going on (a cycle would otherwise recurse forever). */
const CYCLE_CHECK_DEPTH = 1000

/** Refuses a value that JSON cannot carry exactly, or returns `undefined` for a container to walk. */
const refuseScalar = (value: unknown): Refusal => {
  switch (typeof value) {
    case "number":
      return new Refusal(`is ${String(value)}, which JSON cannot represent (it would become null)`)
    case "undefined":
      return new Refusal("is undefined, which JSON cannot represent (it would be dropped); use null instead")
    case "function":
      return new Refusal("is a function, which JSON cannot represent")
    case "symbol":
      return new Refusal("is a symbol, which JSON cannot represent")
    default:
      return new Refusal("is a bigint, which JSON cannot represent; store it as a string instead")
  }
}

/**
 * Writes `value` as JSON text, or returns the problem that stops it from being stored exactly. Every property is
 * read once, by this walk: what is checked is what is written.
 */
export const serialize = (value: unknown): string | JsonProblem => {
  const result = serializeTracking(value, CYCLE_CHECK_DEPTH)
  // A cycle was found late, with a long path: walk again tracking every ancestor, for the shortest path.
  return typeof result === "object" && result.reason === CIRCULAR ? serializeTracking(value, 0) : result
}

const CIRCULAR = "is a circular reference to an enclosing value"

/** The state of one walk: where cycles are checked, and the objects being written below that depth. */
interface Walk {
  readonly cycleCheckDepth: number
  ancestors: Set<object> | undefined
}

/** Adds a path segment to a refusal unwinding through a member; anything else thrown there becomes a refusal. */
const at = (error: unknown, segment: string | number): unknown => {
  // A RangeError is the stack running out on a deep value: it unwinds to the top as it is.
  if (error instanceof RangeError) return error
  const refusal = error instanceof Refusal ? error : threw(error)
  refusal.path.push(segment)
  return refusal
}

const refuseSymbolKeys = (object: object): void => {
  for (const symbol of Object.getOwnPropertySymbols(object)) {
    if (Object.prototype.propertyIsEnumerable.call(object, symbol)) {
      throw new Refusal(`has the symbol key ${String(symbol)}, which JSON would drop`)
    }
  }
}

const write = (value: unknown, depth: number, walk: Walk): string => {
  switch (typeof value) {
    case "string":
      return quoteString(value)
    case "number":
      if (Number.isFinite(value)) return value === 0 && 1 / value < 0 ? "-0" : String(value)
      throw refuseScalar(value)
    case "boolean":
      return value ? "true" : "false"
    case "object":
      break
    default:
      throw refuseScalar(value)
  }
  if (value === null) return "null"
  const object = value as object
  const tracked = depth >= walk.cycleCheckDepth
  if (tracked) {
    walk.ancestors ??= new Set()
    if (walk.ancestors.has(object)) throw new Refusal(CIRCULAR)
    walk.ancestors.add(object)
  }
  let text: string
  if (Array.isArray(object)) {
    if (Object.getPrototypeOf(object) !== Array.prototype) throw new Refusal(describeObject(object))
    text = "["
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) {
        throw at(new Refusal("is a hole in a sparse array (JSON would turn it into null)"), index)
      }
      let member: string
      try {
        member = write(object[index], depth + 1, walk)
      } catch (error) {
        throw at(error, index)
      }
      text += index === 0 ? member : `,${member}`
    }
    text += "]"
    // Named properties of an array (a.label = "x") and symbol keys: JSON would drop them.
    const keys = Object.keys(object)
    if (keys.length !== object.length) {
      const extra = keys.find((key) => !/^(0|[1-9][0-9]*)$/.test(key) || Number(key) >= object.length)
      throw new Refusal(
        `has the property ${JSON.stringify(extra)}, which JSON would drop (arrays keep only their items)`
      )
    }
    refuseSymbolKeys(object)
  } else {
    const proto = Object.getPrototypeOf(object)
    if (proto !== Object.prototype && proto !== null) throw new Refusal(describeObject(object))
    refuseSymbolKeys(object)
    text = "{"
    for (const key of Object.keys(object)) {
      let member: string
      try {
        member = write((object as Record<string, unknown>)[key], depth + 1, walk)
      } catch (error) {
        throw at(error, key)
      }
      text += `${text.length === 1 ? "" : ","}${quoteString(key)}:${member}`
    }
    text += "}"
  }
  if (tracked) walk.ancestors!.delete(object)
  return text
}

const serializeTracking = (value: unknown, cycleCheckDepth: number): string | JsonProblem => {
  // Ancestors are tracked only past cycleCheckDepth: shallow values, the common case, pay nothing for it.
  try {
    const text = write(value, 0, { cycleCheckDepth, ancestors: undefined })
    // Concatenation builds a tree of string pieces; reading a character makes V8 flatten it into one string now,
    // while the pieces are young garbage, instead of keeping them alive until the text is written (a batch of
    // 10,000 values kept ~40 pieces each alive through several garbage collections).
    text.charCodeAt(0)
    return text
  } catch (error) {
    if (error instanceof RangeError) return { path: "$", reason: "is nested too deeply to be written as JSON" }
    const refusal = error instanceof Refusal ? error : threw(error)
    return { path: formatPath(refusal.path.reverse()), reason: refusal.reason, cause: refusal.cause }
  }
}

/** Formats a path as `$.window.created`, `$.items[3]` or `$["a b"]`. */
const formatPath = (path: ReadonlyArray<string | number>): string => {
  let text = "$"
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`
    else if (IDENTIFIER.test(segment)) text += `.${segment}`
    else text += `[${JSON.stringify(segment)}]`
  }
  return text
}

/** A stored text that is not JSON. */
export class InvalidStoredJson {
  constructor(readonly cause: unknown) {}
}

/** Reads stored JSON text into a fresh value. `JSON.parse` creates `__proto__` keys as plain own properties. */
export const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (cause) {
    return new InvalidStoredJson(cause)
  }
}
