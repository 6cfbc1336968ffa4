/**
 * The WebGPU backend: whole sequences in two WGSL kernels (`kernels/*.wgsl`). The input
 * projection of a chunk of steps runs as one GEMM over all their rows; each time step then runs
 * one dispatch that fuses the recurrent GEMM with the cell update of the variant, so the gate
 * pre-activations never reach memory. All steps of a call are encoded into one command buffer per
 * batch chunk, hidden and cell states stay on the GPU, and the results are read back once.
 * torch's GRU and RNN run in their own step kernel (`torch_cell.ts`).
 *
 * @module
 */

import { type Backend, defineBackend, RECURRENT_ACTIVATIONS } from "../../contract/mod.ts";
import { isSoftwareAdapter, requestGpuAdapter } from "./device.ts";
import { WebGpuRunner } from "./runner.ts";
import { TorchGpuCell } from "./torch_cell.ts";
import { VARIANTS } from "../../variants.ts";

/**
 * Options of {@linkcode requestWebGpuBackend}.
 *
 * @example Force small batch chunks, as the tests do
 * ```ts
 * import { requestWebGpuBackend, type WebGpuBackendOptions } from "./mod.ts";
 * const options: WebGpuBackendOptions = { maxStorageBufferBindingSize: 1 << 20 };
 * const backend = await requestWebGpuBackend(options);
 * ```
 */
export interface WebGpuBackendOptions {
  /**
   * Only accept a hardware adapter: return `null` on software ones (a fallback adapter, Mesa's
   * lavapipe/llvmpipe, SwiftShader), which are slower than the WASM backend. Default `false`.
   */
  readonly hardwareOnly?: boolean;
  /**
   * Bytes bound per storage buffer at most, below the device's `maxStorageBufferBindingSize`.
   * Larger calls are split by batch (and their input projection by time). Mainly for tests.
   */
  readonly maxStorageBufferBindingSize?: number;
}

/**
 * The WebGPU backend, or `null` when there is no `navigator.gpu`, no adapter, or only a software
 * adapter while `hardwareOnly` is set. The adapter and device are requested once per process and
 * shared by all runners.
 *
 * @example Run an LSTM step on the GPU when there is one
 * ```ts
 * import { requestWebGpuBackend } from "./mod.ts";
 * const backend = await requestWebGpuBackend({ hardwareOnly: true });
 * if (backend !== null) {
 *   using runner = await backend.compile({
 *     variant: { kind: "lstm", k: 1, maxPooling: false },
 *     inputSize: 1,
 *     hiddenSize: 1,
 *     params: {
 *       i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *       h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *       i2aWeight: null, i2aBias: null,
 *     },
 *   });
 *   const { hidden } = await runner.run({
 *     batch: 1, seqLen: 1, x: new Float32Array(1),
 *     hidden: new Float32Array(1), state: new Float32Array(1),
 *   });
 * }
 * ```
 */
export async function requestWebGpuBackend(
  options: WebGpuBackendOptions = {},
): Promise<Backend | null> {
  const adapter = await requestGpuAdapter();
  if (adapter === null) return null;
  if (options.hardwareOnly === true && isSoftwareAdapter(adapter)) return null;
  const maxBindingBytes = options.maxStorageBufferBindingSize ?? Infinity;
  return defineBackend(
    "webgpu",
    (spec) =>
      VARIANTS[spec.variant.kind].cellStates
        ? WebGpuRunner.create(spec, maxBindingBytes)
        : TorchGpuCell.create(spec),
    RECURRENT_ACTIVATIONS,
  );
}
