/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "434bedfce6cef24429a9f96bde5f1679c93e51f0e75a18331bace01614e9e0e1",
  "libarraylstm-linux-x86_64-v3.so":
    "6e819e2846445dfd790a1bd07516bee2e86baa16706e43652d03ba3f584db21b",
  "libarraylstm-linux-x86_64-v4.so":
    "b254642b1d834c02fa61028e35c2bc8575f74cb613f7828ff10ce934e33b0680",
};
