/**
 * Whether this machine may have a hardware GPU, decided without touching WebGPU. Asking
 * `navigator.gpu` for an adapter loads every Vulkan driver installed: on a Linux machine without a
 * GPU that takes 0.1–1 s and Mesa's drivers print `error: XDG_RUNTIME_DIR ...` to stderr, which
 * no JavaScript can catch. `"auto"` only wants a hardware adapter, so on Linux it asks only when a
 * GPU device node exists.
 *
 * @module
 */

/** Device nodes of GPUs on Linux: DRM render nodes (Mesa, AMD, Intel) and NVIDIA's driver. */
const LINUX_GPU_NODES = /^(renderD\d+|card\d+|nvidia\d+|nvidiactl)$/;

/**
 * `false` when there is certainly no hardware GPU to find: on Linux, when no GPU device node is
 * listed in `/dev` or `/dev/dri`, or when the program may not read them (`--allow-read`; the
 * permission is queried, never prompted for). `true` elsewhere.
 *
 * @example
 * ```ts
 * import { mayHaveHardwareGpu } from "./gpu_presence.ts";
 * if (!mayHaveHardwareGpu()) console.log("no GPU here: WASM it is");
 * ```
 */
export function mayHaveHardwareGpu(): boolean {
  if (typeof Deno === "undefined" || Deno.build.os !== "linux") return true;
  return ["/dev/dri", "/dev"].some((directory) => {
    const permission = Deno.permissions?.querySync?.({ name: "read", path: directory });
    if (permission?.state !== "granted") return false;
    try {
      for (const entry of Deno.readDirSync(directory)) {
        if (LINUX_GPU_NODES.test(entry.name)) return true;
      }
    } catch {
      // No such directory: no GPU there.
    }
    return false;
  });
}
