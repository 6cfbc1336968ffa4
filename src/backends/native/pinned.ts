/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "f10d24f6c68b38b789cd96edfea44b72106e4892d58af773400d23c27b0ca6de",
  "libarraylstm-linux-x86_64-v3.so":
    "da0c18b7d7bdc03d20a465ed489d24419f22f5b53960810822f437ddef9a62b5",
  "libarraylstm-linux-x86_64-v4.so":
    "dcba5884b85efbea1c637a0c49d068d4d402ce7e24d36a3dcb09ae54539398be",
};
