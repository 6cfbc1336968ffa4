/**
 * The native backend's registration (`src/backends/builtin.ts` imports it): its name, its place
 * in `"auto"` (after a hardware WebGPU adapter, before WASM), and the checks that never prompt.
 * Nothing here opens the library until `"auto"` asks or the backend is named.
 *
 * @module
 */

import type { Backend } from "../../contract/mod.ts";
import { registerBackend } from "../registry.ts";

declare module "../../contract/types.ts" {
  interface BackendNames {
    /** The Rust kernels built for the host CPU, through FFI (`src/backends/native/`). */
    native: true;
  }
}

/** Whether `"auto"` may take the native backend: FFI granted and the library opens. */
async function available(): Promise<boolean> {
  if (Deno.permissions.querySync?.({ name: "ffi" }).state !== "granted") return false;
  const { nativeLibraryAvailable } = await import("./library.ts");
  return await nativeLibraryAvailable();
}

async function load(): Promise<Backend> {
  return await (await import("./backend.ts")).createNativeBackend();
}

registerBackend("native", { priority: 25, available, load });
