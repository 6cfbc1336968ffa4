/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "dd0670dcf790d8340fa8a10feb2a2de6e69b91f1b15ea482f4162529d49e9c3d",
  "libarraylstm-linux-x86_64-v3.so":
    "b1d2cffde4902d7b89ff9ece6372a7bf3896a5d36581a965a34e3ba0fd53f3bf",
  "libarraylstm-linux-x86_64-v4.so":
    "21a21d2629d003adc3fb5d1b2e3f1d59f8a1812db1e6328ba36c09c031cd70f4",
};
