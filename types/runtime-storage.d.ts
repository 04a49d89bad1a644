/**
 * Types of the `runtime:storage` module (resolved at run time by `node --import runtime-storage/register`).
 * Add `"types": ["runtime-storage/runtime"]` to tsconfig's compilerOptions, or
 * `/// <reference types="runtime-storage/runtime" />` to one file.
 */
declare module "runtime:storage" {
  export * from "runtime-storage/promise"
}
