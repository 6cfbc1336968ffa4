/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "bb3da9b7637e38323597a33476dbd836a5a88bdb36dbd4593ec23bd518eadffc",
  "libarraylstm-linux-x86_64-v3.so":
    "930311769cbdb9a5284aa3ae5b2a619e4529583e7e73123d6f4b8041734af789",
  "libarraylstm-linux-x86_64-v4.so":
    "741455af87b93ad672d7162012b7e9b4cc877a4f8dcef2a873e795d3b9441467",
};
