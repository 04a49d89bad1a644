/**
 * The module resolution hook installed by `runtime-storage/register`.
 *
 * @since 0.1.0
 */

/** The specifier the hook answers. */
export const SPECIFIER = "runtime:storage"

interface ResolveResult {
  readonly url: string
  readonly format?: string | null | undefined
  readonly shortCircuit?: boolean | undefined
}

/**
 * Resolves `runtime:storage` to this package's Promise API; every other specifier goes on to the next hook.
 *
 * @since 0.1.0
 */
export const resolve = (
  specifier: string,
  context: unknown,
  nextResolve: (specifier: string, context?: unknown) => ResolveResult | Promise<ResolveResult>
): ResolveResult | Promise<ResolveResult> =>
  specifier === SPECIFIER
    ? { url: new URL("./promise.js", import.meta.url).href, format: "module", shortCircuit: true }
    : nextResolve(specifier, context)
