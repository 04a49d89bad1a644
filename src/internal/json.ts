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
}

class Refusal {
  constructor(readonly reason: string) {}
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

const describeObject = (value: object): string => {
  if (value instanceof Date) return "is a Date (JSON would turn it into a string); store value.toISOString() instead"
  if (value instanceof Map) return "is a Map (JSON would turn it into {}); store Object.fromEntries(map) instead"
  if (value instanceof Set) return "is a Set (JSON would turn it into {}); store [...set] instead"
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
 * Writes `value` as JSON text, or returns the problem that stops it from being stored exactly.
 */
export const serialize = (value: unknown): string | JsonProblem => {
  const path: Array<string | number> = []
  const ancestors = new Set<object>()

  const write = (value: unknown): string => {
    switch (typeof value) {
      case "string":
        return JSON.stringify(value)
      case "number":
        if (Number.isFinite(value)) return Object.is(value, -0) ? "-0" : String(value)
        throw new Refusal(`is ${String(value)}, which JSON cannot represent (it would become null)`)
      case "boolean":
        return value ? "true" : "false"
      case "undefined":
        throw new Refusal("is undefined, which JSON cannot represent (it would be dropped); use null instead")
      case "function":
        throw new Refusal("is a function, which JSON cannot represent")
      case "symbol":
        throw new Refusal("is a symbol, which JSON cannot represent")
      case "bigint":
        throw new Refusal("is a bigint, which JSON cannot represent; store it as a string instead")
    }
    if (value === null) return "null"
    const object = value as object
    if (ancestors.has(object)) throw new Refusal("is a circular reference to an enclosing value")
    let text: string
    ancestors.add(object)
    if (Array.isArray(object)) {
      if (Object.getPrototypeOf(object) !== Array.prototype) throw new Refusal(describeObject(object))
      text = "["
      for (let index = 0; index < object.length; index++) {
        path.push(index)
        if (!(index in object)) throw new Refusal("is a hole in a sparse array (JSON would turn it into null)")
        text += (index === 0 ? "" : ",") + write(object[index])
        path.pop()
      }
      text += "]"
    } else {
      const proto = Object.getPrototypeOf(object)
      if (proto !== Object.prototype && proto !== null) throw new Refusal(describeObject(object))
      for (const symbol of Object.getOwnPropertySymbols(object)) {
        if (Object.prototype.propertyIsEnumerable.call(object, symbol)) {
          throw new Refusal(`has the symbol key ${String(symbol)}, which JSON would drop`)
        }
      }
      text = "{"
      let first = true
      for (const key of Object.keys(object)) {
        path.push(key)
        const member = write((object as Record<string, unknown>)[key])
        text += `${first ? "" : ","}${JSON.stringify(key)}:${member}`
        first = false
        path.pop()
      }
      text += "}"
    }
    ancestors.delete(object)
    return text
  }

  try {
    return write(value)
  } catch (error) {
    if (error instanceof Refusal) return { path: formatPath(path), reason: error.reason }
    if (error instanceof RangeError) {
      return { path: formatPath(path.slice(0, 8)), reason: "is nested too deeply to be written as JSON" }
    }
    throw error
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
