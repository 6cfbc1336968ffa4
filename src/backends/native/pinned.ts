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
    "1fde935c76bde16670d3042dabb242829e2d0465cac59722e0b1f709ee7c2575",
  "libarraylstm-linux-x86_64-v4.so":
    "237fc6003382e245b4b2b3b4889de5188adebcecae00eb6c0218bab174ce7cc0",
};
