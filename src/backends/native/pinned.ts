/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "9a9e560b40c1adc8d2f309bcc3114d593e3e26fe2de3b0c08110b1d21a65ea64",
  "libarraylstm-linux-x86_64-v3.so":
    "7f5b7c2fcbe1dcce525a61bf3deae4a8c7ca25b250337f3b8875c292992a04e9",
  "libarraylstm-linux-x86_64-v4.so":
    "b06976d0438800a3ce936c51d2bc08d194830c0cc35eef92a763452389b23b44",
};
