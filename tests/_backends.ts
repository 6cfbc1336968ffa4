/**
 * The backends the tests run on, from one place: by name ({@linkcode BACKEND_NAMES},
 * {@linkcode CPU_BACKENDS}, {@linkcode isAvailable}, {@linkcode hasWebGpu}) for the tests that go
 * through the public model API, and as configured instances ({@linkcode BACKENDS}) for the
 * contract suite (`backend_contract_test.ts`): register a backend here and it gets every contract
 * test. A backend that is not available on this machine is listed with `backend: null` and the
 * reason, and its tests are ignored.
 *
 * @module
 */

import type { Backend, ResolvedBackendName } from "../src/contract.ts";
import { jsBackend } from "../src/backends/js/mod.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";

/** A backend under test, with its name in test names. */
export interface RegisteredBackend {
  /** The name in test names, e.g. `wasm (threads: 1)`. */
  readonly label: string;
  /** The backend, or `null` where it is not available here. */
  readonly backend: Backend | null;
  /** Why it is not available, when `backend` is `null`. */
  readonly unavailable?: string;
}

const webgpu = await requestWebGpuBackend();

// The list's source: every backend by name, and those that need a device (an adapter) to run.
const NAMES: readonly ResolvedBackendName[] = ["js", "wasm", "webgpu"];
const NEEDS_DEVICE: ReadonlySet<ResolvedBackendName> = new Set(["webgpu"]);

/** Whether WebGPU found an adapter here (any adapter, Mesa's lavapipe included). */
export const hasWebGpu: boolean = webgpu !== null;

/** Every backend by name, available here or not: define a test per name, ignore the unavailable. */
export const BACKEND_NAMES: readonly ResolvedBackendName[] = NAMES;

/** The backends that run on every machine (no device needed), by name. */
export const CPU_BACKENDS: readonly ResolvedBackendName[] = NAMES.filter((name) =>
  !NEEDS_DEVICE.has(name)
);

/**
 * Whether the backend named `name` runs on this machine.
 *
 * @example
 * ```ts
 * import { BACKEND_NAMES, isAvailable } from "./_backends.ts";
 * for (const name of BACKEND_NAMES) {
 *   Deno.test({ name: `runs on ${name}`, ignore: !isAvailable(name), fn() {} });
 * }
 * ```
 */
export function isAvailable(name: ResolvedBackendName): boolean {
  return !NEEDS_DEVICE.has(name) || hasWebGpu;
}

/** The backends that run on this machine, by name. */
export const AVAILABLE_BACKENDS: readonly ResolvedBackendName[] = NAMES.filter(isAvailable);

/** The registered backends; WebGPU runs on any adapter, Mesa's lavapipe included. */
export const BACKENDS: readonly RegisteredBackend[] = [
  { label: "js", backend: jsBackend },
  // Two threads: large batches split over two Workers, small ones stay in the calling thread.
  { label: "wasm (threads: 2)", backend: createWasmBackend({ threads: 2 }) },
  { label: "wasm (threads: 1)", backend: createWasmBackend({ threads: 1 }) },
  // The build that runtimes without relaxed SIMD get.
  {
    label: "wasm (threads: 1, plain SIMD)",
    backend: createWasmBackend({ threads: 1, relaxedSimd: false }),
  },
  {
    label: "webgpu",
    backend: webgpu,
    unavailable: webgpu === null ? "navigator.gpu found no WebGPU adapter" : undefined,
  },
];
