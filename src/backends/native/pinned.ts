/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "c6d6e2a4260dbda77bfc231b9821527b7b1bcc8ad40d87acbd48b1bf2ecbb6cd",
  "libarraylstm-linux-x86_64-v3.so":
    "c0c79211ee131ac11ced9fedad2701546e35e02b066a8983ee791dba3c9bc7d9",
  "libarraylstm-linux-x86_64-v4.so":
    "18c2f3b4c16b39d2b14e3d4f31ec0dee87b0f283726246b4be6d3c26dd38a749",
};
