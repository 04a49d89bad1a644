/**
 * The order of keys: ascending Unicode code points, which is what SQLite's BINARY collation gives on UTF-8 text.
 * JavaScript's `<` compares UTF-16 code units instead, which differs for characters outside the Basic
 * Multilingual Plane (a surrogate pair sorts before U+E000..U+FFFF in UTF-16, after them in code points).
 */

/** Moves surrogates (U+D800..U+DFFF) above U+E000..U+FFFF so that code units compare as code points do. */
const rank = (unit: number): number => (unit < 0xd800 ? unit : unit < 0xe000 ? unit + 0x2000 : unit - 0x800)

/** Compares two well-formed strings by code point, as SQLite's BINARY collation does on their UTF-8 bytes. */
export const compareCodePoints = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length)
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index)
    const y = b.charCodeAt(index)
    if (x !== y) return rank(x) - rank(y)
  }
  return a.length - b.length
}
