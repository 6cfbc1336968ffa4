/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "c1c273d6be66027078c475accb6ac4a7255bc03e8f2bc245e6125b95450262c2",
  "libarraylstm-linux-x86_64-v3.so":
    "e24117422d66f45d3fcdcc13149a955ee2956f2322a4a4a5c3c68c1050c19800",
  "libarraylstm-linux-x86_64-v4.so":
    "c3a5a449d4020822cce3875daae7aa0d553d26c3f6d7639442ecd0f1afacbcb8",
};
