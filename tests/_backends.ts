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

import type { Backend, ResolvedBackendName } from "../src/contract/mod.ts";
import { concreteBackendNames, selectBackend } from "../src/backends/select.ts";
import { createNativeBackend } from "../src/backends/native/mod.ts";
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
const CONFIGURATIONS: Partial<
  Record<ResolvedBackendName, () => RegisteredBackend[] | Promise<RegisteredBackend[]>>
> = {
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
  native: async () => {
    try {
      // Two threads: large batches split by rows over native threads; one: never split.
      return [
        { label: "native (threads: 2)", backend: await createNativeBackend({ threads: 2 }) },
        { label: "native (threads: 1)", backend: await createNativeBackend({ threads: 1 }) },
      ];
    } catch (error) {
      const reason = error instanceof Error ? error.message.split(". ")[0] : String(error);
      return [{ label: "native", backend: null, unavailable: reason }];
    }
  },
};

/** The backends that need a device (an adapter) to run; the others run on every machine. */
const NEEDS_DEVICE: ReadonlySet<ResolvedBackendName> = new Set(["webgpu"]);

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

/** Every registered backend by name, lowest priority first, available here or not. */
export const BACKEND_NAMES: readonly ResolvedBackendName[] = concreteBackendNames();

/** The registered backends, each in its tested configurations; WebGPU runs on any adapter. */
export const BACKENDS: readonly RegisteredBackend[] = (
  await Promise.all(BACKEND_NAMES.map(entriesOf))
).flat();

const UNAVAILABLE: ReadonlySet<string> = new Set(
  BACKENDS.filter((entry) => entry.backend === null).map((entry) => entry.label),
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
  return !UNAVAILABLE.has(name);
}

/** Whether WebGPU found an adapter here (any adapter, Mesa's lavapipe included). */
export const hasWebGpu: boolean = isAvailable("webgpu");

/**
 * The backends that need no device, by name, where they run here (the native one needs
 * `--allow-ffi` and its library).
 */
export const CPU_BACKENDS: readonly ResolvedBackendName[] = BACKEND_NAMES.filter((name) =>
  !NEEDS_DEVICE.has(name) && isAvailable(name)
);

/** The backends that run on this machine, by name. */
export const AVAILABLE_BACKENDS: readonly ResolvedBackendName[] = BACKEND_NAMES.filter(
  isAvailable,
);
