/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "73d2e3c89accfc1ff1e256dc0c3cba4f1cf60d0c711daf70dacdc1661780d27d",
  "libarraylstm-linux-x86_64-v3.so":
    "5f45582b1ef2377782ff07eaefcd2db9a8e54ddd9739ac0d5da727464d46aacb",
  "libarraylstm-linux-x86_64-v4.so":
    "303e6e3a740243e48a0fcbfa5a43e50c32aa9489779029765c58df97585741ee",
};
