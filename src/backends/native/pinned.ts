/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "36b56818e5add22e43d2d123eb469786310955ffe3dd580c37ef06eef5f1dfc6",
  "libarraylstm-linux-x86_64-v3.so":
    "da4c6427fbc337519a01f3961a8a930b68d53922ac4a3c7658044eb9b0183f49",
  "libarraylstm-linux-x86_64-v4.so":
    "02d70acb316ebcc878d67be78a0879db1efc512ad9e2bdaf976825cffe6f36d4",
};
