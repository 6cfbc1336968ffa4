/**
 * The WASM backend's constructor: its options, and the `Backend` that compiles a cell into a
 * {@linkcode WasmRunner} sharing one pool of workers.
 *
 * @module
 */

import { type Backend, defineBackend, RECURRENT_ACTIVATIONS } from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import { supportsRelaxedSimd } from "./bindings.ts";
import { checkWasmWeights, WASM_MEMORY_LIMITS, type WasmMemoryLimits } from "./memory_plan.ts";
import { WasmRunner } from "./runner.ts";
import { defaultThreads, POOLED_WORKER_MS } from "./scheduler.ts";
import { WorkerPool } from "./thread.ts";

/** Options of {@linkcode createWasmBackend}. */
export interface WasmBackendOptions {
  /**
   * Threads a large batch is split over: `1` never starts a Worker and runs in the calling thread.
   * Default: one per core (`navigator.hardwareConcurrency`, at most 8) where
   * `Worker` exists and may load its modules without a permission prompt (see
   * `workersPermitted` of `thread.ts`), else 1.
   */
  readonly threads?: number;
  /**
   * Use the kernels built with relaxed SIMD (`f32x4.relaxed_madd`, about 1.5× the GEMM rate) where
   * the runtime supports them. Default `true`. A relaxed multiply-add is fused or not depending on
   * the CPU, so results can differ between machines in the last bits; `false` takes the plain
   * SIMD kernels, whose results are the same everywhere.
   */
  readonly relaxedSimd?: boolean;
  /**
   * The memory a wasm instance may use, and that one call may add to it before it is split into
   * chunks of batch rows. Default {@linkcode WASM_MEMORY_LIMITS}; mainly for tests.
   */
  readonly memory?: WasmMemoryLimits;
}

/**
 * Creates a WASM backend that splits large batches over `options.threads` Workers.
 *
 * @throws {RangeError} If `threads` is not a positive integer.
 * @throws {Error} If `threads > 1` and this runtime has no `Worker`.
 *
 * @example Run in the calling thread only (no Workers)
 * ```ts
 * import { createWasmBackend } from "./backend.ts";
 * const backend = createWasmBackend({ threads: 1 });
 * const runner = await backend.compile({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * const { output } = await runner.run({
 *   batch: 1, seqLen: 2, x: new Float32Array(2),
 *   hidden: new Float32Array(1), state: new Float32Array(1),
 * });
 * runner.dispose();
 * ```
 */
export function createWasmBackend(options: WasmBackendOptions = {}): Backend {
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be a positive integer, got ${threads}`);
  }
  if (threads > 1 && typeof Worker !== "function") {
    throw new Error(
      `threads: ${threads} needs Web Workers, which this runtime does not have; use threads: 1`,
    );
  }
  const relaxedSimd = options.relaxedSimd ?? true;
  const memory = options.memory ?? WASM_MEMORY_LIMITS;
  const pool = new WorkerPool(POOLED_WORKER_MS);
  return defineBackend("wasm", (spec) => {
    checkWasmWeights(spec, memory);
    const flavor = relaxedSimd && supportsRelaxedSimd() ? "relaxed" : "plain";
    const runner = new WasmRunner(spec, threads, flavor, memory, pool);
    if (VARIANTS[spec.variant.kind].cellStates) return Promise.resolve(runner);
    // GRU and RNN have no fused training kernel: without runTraining they train with the oracle.
    return Promise.resolve({ run: (input) => runner.run(input), dispose: () => runner.dispose() });
  }, RECURRENT_ACTIVATIONS);
}

/**
 * The WASM backend with the default threading: large batches split over one Worker per core
 * (at most 8) where the runtime has them, everything else in the calling thread.
 *
 * @example
 * ```ts
 * import { wasmBackend } from "./backend.ts";
 * const runner = await wasmBackend.compile({
 *   variant: { kind: "array", k: 2, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(8), i2hBias: new Float32Array(8),
 *     h2hWeight: new Float32Array(8), h2hBias: new Float32Array(8),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * runner.dispose();
 * ```
 */
export const wasmBackend: Backend = createWasmBackend();
