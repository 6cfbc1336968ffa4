/**
 * The built-in backends' registrations, one line each: `"auto"` takes WebGPU on a hardware
 * adapter (on Linux it asks WebGPU only when a GPU device node is present, see `gpu_presence.ts`),
 * else WASM; the TypeScript backend runs only when named. A backend's code is imported only when
 * it is chosen. A new backend adds one `registerBackend` line here (see `registry.ts`).
 *
 * @module
 */

import type { Backend } from "../contract/mod.ts";
import { mayHaveHardwareGpu } from "./gpu_presence.ts";
import { registerBackend } from "./registry.ts";
import "./native/registration.ts";

/** Whether `"auto"` may take WebGPU: a hardware adapter (software ones are slower than WASM). */
async function hardwareWebGpu(): Promise<boolean> {
  if (!mayHaveHardwareGpu()) return false;
  const { requestWebGpuBackend } = await import("./webgpu/mod.ts");
  return await requestWebGpuBackend({ hardwareOnly: true }) !== null;
}

/** WebGPU on any adapter, software ones included, as an explicit `"webgpu"` asks. */
async function loadWebGpu(): Promise<Backend> {
  const backend = await (await import("./webgpu/mod.ts")).requestWebGpuBackend();
  if (backend === null) {
    throw new Error(
      'backend "webgpu" is not available: navigator.gpu found no adapter. Use backend "auto" ' +
        "to fall back to WASM, or install a GPU driver (on Linux without a GPU, Mesa's " +
        "lavapipe: apt-get install mesa-vulkan-drivers).",
    );
  }
  return backend;
}

registerBackend("webgpu", { priority: 30, available: hardwareWebGpu, load: loadWebGpu });
registerBackend("wasm", {
  priority: 20,
  available: () => true,
  load: async () => (await import("./wasm/mod.ts")).wasmBackend,
});
registerBackend("js", {
  priority: 10,
  available: () => true,
  load: async () => (await import("./js/mod.ts")).jsBackend,
});
