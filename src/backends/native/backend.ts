/**
 * The native backend's constructor: its options, and the `Backend` that compiles a cell into a
 * {@linkcode NativeRunner} on the opened library.
 *
 * @module
 */

import { type Backend, defineBackend, RECURRENT_ACTIVATIONS } from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import { type NativeLibrary, openNativeLibrary } from "./library.ts";
import { NativeRunner } from "./runner.ts";

/** Options of {@linkcode createNativeBackend}. */
export interface NativeBackendOptions {
  /**
   * Threads a large batch is split over (by rows). Default: one per core
   * (`navigator.hardwareConcurrency`, at most 16).
   */
  readonly threads?: number;
}

/** Most threads by default: each holds its own copy of the weights. */
const MAX_DEFAULT_THREADS = 16;

/**
 * Opens the native library (see `library.ts`) and creates a backend on it.
 *
 * @throws {RangeError} If `threads` is not a positive integer.
 * @throws {Error} If the library cannot be opened here, saying why and what to do.
 *
 * @example
 * ```ts ignore
 * import { createNativeBackend } from "./backend.ts";
 * const backend = await createNativeBackend({ threads: 2 });
 * ```
 */
export async function createNativeBackend(options: NativeBackendOptions = {}): Promise<Backend> {
  const threads = options.threads ??
    Math.min(MAX_DEFAULT_THREADS, Math.max(1, navigator.hardwareConcurrency ?? 1));
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be a positive integer, got ${threads}`);
  }
  let library: NativeLibrary;
  try {
    library = await openNativeLibrary();
  } catch (error) {
    throw new Error(
      `backend "native" is not available: ${(error as Error).message}. Use backend "auto" to ` +
        "fall back to WASM.",
      { cause: error },
    );
  }
  return defineBackend("native", (spec) => {
    const runner = new NativeRunner(library, spec, threads);
    if (VARIANTS[spec.variant.kind].cellStates) return Promise.resolve(runner);
    // GRU and RNN have no fused training kernel: without runTraining they train with the oracle.
    return Promise.resolve({ run: (input) => runner.run(input), dispose: () => runner.dispose() });
  }, RECURRENT_ACTIVATIONS);
}
