/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "6e5da6590ce58c59812bfcd4fd9ef34183019f23825efc758e8ad604d5785157",
  "libarraylstm-linux-x86_64-v3.so":
    "33a6e67195539a6634dc71f989f09f494755febbd28771645c79ae21aee3afd3",
  "libarraylstm-linux-x86_64-v4.so":
    "3369096f5afbb7b1083fa3694fd82bebd6267bf07c86b524c8169960369d066f",
};
