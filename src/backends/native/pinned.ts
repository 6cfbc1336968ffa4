/**
 * The SHA-256 of every library file the package carries (`native/lib/`), checked before
 * `Deno.dlopen`. Written by `deno task build:native`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
  "libarraylstm-linux-x86_64.so":
    "c94f1c3cffbdb6fb93c4b6439c44efdb7728cadb623e11f95b4df99714a5a051",
  "libarraylstm-linux-x86_64-v3.so":
    "e7f4b328786945c393dd3a97cb8f50b0d860fd3dbed2e229dc870686f1b45a17",
  "libarraylstm-linux-x86_64-v4.so":
    "05d44ead34c28865e54082c8df2914d79b8b03566f26905aac9523bbfb20759e",
};
