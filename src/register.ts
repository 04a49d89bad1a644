/**
 * `node --import runtime-storage/register app.mjs` makes `import { get, set } from "runtime:storage"` resolve to
 * the Promise API (`runtime-storage/promise`), through Node's module customization hooks (Node 20.6+).
 *
 * @since 0.1.0
 */
import { register } from "node:module"

register("./hooks.js", import.meta.url)
