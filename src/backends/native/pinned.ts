/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "8df23d261f109b2d34a232a3c67ba8f591f891049decb1a69e18ebf7713a2df2",
  "libarraylstm-linux-x86_64-v3.so":
    "a89abd51bbbc175b5cee45b07c38886d7919df8090a4e839cdd9b6a5cb7c0837",
  "libarraylstm-linux-x86_64-v4.so":
    "5f8b825f60359fe51fb9799dbd5a4791b106e404ab2734f20425014a35a03c8f",
};
