/**
 * Renders a string for an error message: quoted, escaped, and shortened when long, so a hostile key cannot
 * flood a log or forge a line.
 */
export const quote = (value: string): string => {
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value
  return JSON.stringify(shown)
}
