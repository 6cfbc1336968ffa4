/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "5fead6654d031e70dc369e98d1788e87307c3a72d8f0a5706e4b2539bfde30f7",
  "libarraylstm-linux-x86_64-v3.so":
    "8772879383741edaef3f7533be9a62ca71e571b81fccad9c05bbd8cb44f59bfe",
  "libarraylstm-linux-x86_64-v4.so":
    "414cb8d13a845d01807d67d28330980a28c16317a9718377beb549b68cb4974a",
};
