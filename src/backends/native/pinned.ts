/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "1de60ae8f4d53bb209b865e7506edce1dc0e6f87a27d90f8fa7b5f8cc5a7f86e",
  "libarraylstm-linux-x86_64-v3.so":
    "e52cfa93328ee3df34e269de5ee2c772f2fbd41d0de84490b134321ea587bdc3",
  "libarraylstm-linux-x86_64-v4.so":
    "a4d81e3fe97c07232e2258fcb29eeee574627022ddb87f218b852512e13ea457",
};
