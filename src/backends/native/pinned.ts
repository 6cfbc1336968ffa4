/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "b71d022e410ad32c8898e404d6e178d959d894485a6d9c9c1a6fa4320a8ec463",
  "libarraylstm-linux-x86_64-v3.so":
    "69dad4cc1925edde876f6af01848f12bb2e37dae018f4f65d87d00d38778072a",
  "libarraylstm-linux-x86_64-v4.so":
    "4c3f96231c99f0c00484d61c9feead9b07c4a4269ff674a6c70cbfb45c891908",
};
