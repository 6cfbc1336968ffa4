/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "b8ad14c635c4308db855f59a41ccc2f0ebb5077f7a3e181664132da7137c1e5f",
  "libarraylstm-linux-x86_64-v3.so":
    "02f05961f211d2d71c822d477e54edb917348ec3bd35d544a662fde25909b510",
  "libarraylstm-linux-x86_64-v4.so":
    "72c45bce2fb9e2eecf185dac6aaec9a809cec4554bb91c2e62638dffd5ab1406",
};
