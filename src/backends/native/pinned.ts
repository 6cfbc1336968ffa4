/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "884a3c8f9264c2f8c36208b3d8ba72ff1d92ffd48e1ee2f8a6a42913aff0d767",
  "libarraylstm-linux-x86_64-v3.so":
    "716e597b6803a1c902469be01a73f345f361d61383a8e78f740b64e6292e865f",
  "libarraylstm-linux-x86_64-v4.so":
    "df3c14cfeaf7e9434e53bf415298a4439f910c0d1094e83d6d08a59d17c275ed",
};
