/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "96f6a7ea8bd85ad34c65863161deafbeb50a63d1db953ce407ade70c1624fc0d",
  "libarraylstm-linux-x86_64-v3.so":
    "f455a4555578c40c17dd77d62a2270760ebc7c98a7ac499589617c67ca584423",
  "libarraylstm-linux-x86_64-v4.so":
    "48da991b839271fd7a5930f1c266f244060cfa738f2d50c3ef58e249df0f2bda",
};
