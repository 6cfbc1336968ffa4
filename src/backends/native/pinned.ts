/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "39a226005dba191f8053333ad426f914eeb7ce2d78f0b76ae2dd4a72d4b28780",
  "libarraylstm-linux-x86_64-v3.so":
    "54d0feb3cfd309eb9c4d69a3aab657f78c720e7650fb82401cc5ee6ae9fd0b25",
  "libarraylstm-linux-x86_64-v4.so":
    "4d3336f55c3b1a428e57e04de380b088dc43093f8d707847b3cf3669c22ef8d5",
};
