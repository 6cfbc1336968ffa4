/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "a41f00e058db3efad7adcbbbbce25f5fde667c37f943b759e7016427b6e995d3",
  "libarraylstm-linux-x86_64-v3.so":
    "da5e8639b6b419ceb4fbbb72d4d47a62f96f51895531ef32faa50c6f965314c9",
  "libarraylstm-linux-x86_64-v4.so":
    "be634e4e669e9c96e9bc914a6582b9d179067aaf8b7e2f170eab31677b34e4df",
};
