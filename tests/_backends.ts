/**
 * Every backend the contract suite (`backend_contract_test.ts`) runs on: each backend of the
 * registry (`src/backends/registry.ts`), lowest priority first, so a registered backend gets every
 * contract test. A backend that is not available on this machine is listed with `backend: null`
 * and the reason, and its tests are ignored.
 *
 * @module
 */

import type { Backend, ResolvedBackendName } from "../src/contract/mod.ts";
import { concreteBackendNames, selectBackend } from "../src/backends/select.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";

/** A backend under test, with its name in test names. */
export interface RegisteredBackend {
  /** The name in test names, e.g. `wasm (threads: 1)`. */
  readonly label: string;
  /** The backend, or `null` where it is not available here. */
  readonly backend: Backend | null;
  /** Why it is not available, when `backend` is `null`. */
  readonly unavailable?: string;
}

/** The configurations a backend is tested in instead of its default one, by backend. */
const CONFIGURATIONS: Partial<Record<ResolvedBackendName, () => RegisteredBackend[]>> = {
  wasm: () => [
    // Two threads: large batches split over two Workers, small ones stay in the calling thread.
    { label: "wasm (threads: 2)", backend: createWasmBackend({ threads: 2 }) },
    { label: "wasm (threads: 1)", backend: createWasmBackend({ threads: 1 }) },
    // The build that runtimes without relaxed SIMD get.
    {
      label: "wasm (threads: 1, plain SIMD)",
      backend: createWasmBackend({ threads: 1, relaxedSimd: false }),
    },
  ],
};

/** A backend's entries: its configurations, or the backend as named (WebGPU: any adapter). */
async function entriesOf(name: ResolvedBackendName): Promise<RegisteredBackend[]> {
  const configured = CONFIGURATIONS[name];
  if (configured !== undefined) return configured();
  try {
    return [{ label: name, backend: await selectBackend(name) }];
  } catch (error) {
    const reason = error instanceof Error ? error.message.split(". ")[0] : String(error);
    return [{ label: name, backend: null, unavailable: reason }];
  }
}

/** The registered backends; WebGPU runs on any adapter, Mesa's lavapipe included. */
export const BACKENDS: readonly RegisteredBackend[] = (
  await Promise.all(concreteBackendNames().map(entriesOf))
).flat();
