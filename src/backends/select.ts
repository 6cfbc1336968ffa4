/**
 * Backend selection: `"auto"` takes WebGPU on a hardware adapter and WASM everywhere else (on
 * Linux it asks WebGPU only when a GPU device node is present, see `gpu_presence.ts`); an
 * explicit choice that is unavailable is an error, never a silent fallback. The environment
 * variable `ARRAYLSTM_BACKEND` overrides `"auto"` (for CI and benchmarks) when env access is granted.
 *
 * @module
 */

import type { Backend, BackendName } from "../contract.ts";
import { jsBackend } from "./js/mod.ts";
import { describe } from "../errors.ts";
import { mayHaveHardwareGpu } from "./gpu_presence.ts";

/** Every name `backend` accepts. */
export const BACKEND_NAMES: readonly BackendName[] = ["auto", "webgpu", "wasm", "js"];

/**
 * Checks a backend name and returns it.
 *
 * @example
 * ```ts
 * import { checkBackendName } from "./select.ts";
 * const name = checkBackendName("backend", "wasm");
 * ```
 */
export function checkBackendName(argument: string, value: unknown): BackendName {
  if (!BACKEND_NAMES.includes(value as BackendName)) {
    throw new TypeError(
      `${argument} must be one of ${BACKEND_NAMES.map(describe).join(", ")}, got ${
        describe(value)
      }`,
    );
  }
  return value as BackendName;
}

function environmentOverride(): BackendName | null {
  const variable = "ARRAYLSTM_BACKEND";
  const permission = Deno.permissions?.querySync?.({ name: "env", variable });
  if (permission?.state !== "granted") return null;
  const value = Deno.env.get(variable);
  if (value === undefined || value === "" || value === "auto") return null;
  return checkBackendName(`the environment variable ${variable}`, value);
}

/**
 * Resolves a backend name to a backend, loading the WASM or WebGPU code only when it is chosen.
 *
 * @throws {Error} If an explicitly named backend is not available here.
 *
 * @example
 * ```ts
 * import { selectBackend } from "./select.ts";
 * const backend = await selectBackend("js");
 * ```
 */
export async function selectBackend(name: BackendName): Promise<Backend> {
  const requested = name === "auto" ? environmentOverride() ?? "auto" : name;
  switch (requested) {
    case "js":
      return jsBackend;
    case "wasm":
      return (await import("./wasm/mod.ts")).wasmBackend;
    case "webgpu": {
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
    case "auto": {
      if (!mayHaveHardwareGpu()) return (await import("./wasm/mod.ts")).wasmBackend;
      const webgpu = await (await import("./webgpu/mod.ts")).requestWebGpuBackend({
        hardwareOnly: true,
      });
      return webgpu ?? (await import("./wasm/mod.ts")).wasmBackend;
    }
  }
}
