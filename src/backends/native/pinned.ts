/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "308727b00f793c13f509bfb79bda359557e3884a0b2a34fd7046f3a5c76399ee",
  "libarraylstm-linux-x86_64-v3.so":
    "f28b2d6eacd035f8685f4b7d102e3f245ed486f5335636d1646e33dd11195df1",
  "libarraylstm-linux-x86_64-v4.so":
    "e36fad5d89021c546e1c2688c6325af88dfb37b9b85cc47f6c54baaa61a54ee6",
};
