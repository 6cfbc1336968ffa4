/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "a579c216fada6aeda5daa5441c627b825487b45c3af9b8f72dc60bcab2d4c12a",
  "libarraylstm-linux-x86_64-v3.so":
    "389ad353553314f8e6fbd2340acbfafc08b9fd71187d6802ad529e534a2843d8",
  "libarraylstm-linux-x86_64-v4.so":
    "4526abe75de985c1b9f8e23586eda6b41b85764ab25f7f5461cb3723aa054744",
};
