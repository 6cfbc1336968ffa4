/**
 * Every backend the contract suite (`backend_contract_test.ts`) runs on: register a backend here
 * and it gets every contract test. A backend that is not available on this machine is listed with
 * `backend: null` and the reason, and its tests are ignored.
 *
 * @module
 */

import type { Backend } from "../src/contract.ts";
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
