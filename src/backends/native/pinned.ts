/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "bcf8dd372fd1db99e8807953f8afd195eb67efc9d6ceead54c079302a32e5b01",
  "libarraylstm-linux-x86_64-v3.so":
    "7a053928acc8f22a3851eace869b9abc5d41bf78d786556abf949de4fa265c35",
  "libarraylstm-linux-x86_64-v4.so":
    "40a965dab69ea53469fc51a206f132f6c8ffe9757efcf3c3286dcd6b060f8a67",
};
