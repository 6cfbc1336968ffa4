/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "72595ce5372b505bce7c5d44a8cd00698814214dd91d1f2884e5489c6045a81e",
  "libarraylstm-linux-x86_64-v3.so":
    "46e813abbc100b4becb0a539025a37dc0253633464074bf74f0576673c077016",
  "libarraylstm-linux-x86_64-v4.so":
    "489a61b5b08af281b0db17cc0fc8f01d02444e6cf47e835340651ec8558161ef",
};
