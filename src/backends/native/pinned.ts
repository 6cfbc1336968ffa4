/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "3294ab0dbb3b4b00db1c80801fb28d7990d23c9d762e5338f28d01e690fd5c24",
  "libarraylstm-linux-x86_64-v3.so":
    "beccc5d4bbec8cd7ea5a0942a6e42b68f7c7f42fe862597edb9521ea56a2a5cc",
  "libarraylstm-linux-x86_64-v4.so":
    "86144ed7adbd3d43d32e7224dff676630d02fa71f3c7243adfc1f4c78383b2d1",
};
