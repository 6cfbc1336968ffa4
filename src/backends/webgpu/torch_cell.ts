/**
 * torch's GRU and Elman RNN on WebGPU (`kernels/torch_step.wgsl`): the weights stay on the device
 * in torch's layouts, and a call encodes one dispatch per time step into one command buffer, each
 * step reading the previous one's output as its hidden state, then reads the output back once.
 *
 * @module
 */

import type { CellSpec, CompiledCell, SequenceInput, SequenceOutput } from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import { createBuffer, upload } from "./buffers.ts";
import { acquireGpuContext, type GpuContext, pipeline } from "./device.ts";
import { roundUp } from "./layout.ts";
import { mapForReading } from "./readback.ts";

/** Invocations per workgroup of `torch_step.wgsl`. */
const WORKGROUP = 64;
/** Bytes of one step's `TorchStep` record. */
const RECORD_BYTES = 32;

/**
 * A GRU or RNN cell compiled for the WebGPU device: the backend's `CompiledCell` for the kinds
 * `"gru"`, `"rnn_tanh"` and `"rnn_relu"`. Without `runTraining`, these cells train with the
 * float64 oracle.
 *
 * @example
 * ```ts ignore
 * import { TorchGpuCell } from "./torch_cell.ts";
 * const z = (n: number) => new Float32Array(n);
 * const cell = await TorchGpuCell.create({
 *   variant: { kind: "rnn_tanh", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(1), i2hBias: z(1), h2hWeight: z(1), h2hBias: z(1), i2aWeight: null, i2aBias: null },
 * });
 * const { output } = await cell.run({ batch: 1, seqLen: 2, x: z(2), hidden: z(1), state: z(0) });
 * cell.dispose();
 * ```
 */
export class TorchGpuCell implements CompiledCell {
  readonly #context: GpuContext;
  readonly #pipeline: GPUComputePipeline;
  readonly #sizes: { inputSize: number; hiddenSize: number };
  /** weight_ih, weight_hh, bias_ih, bias_hh, in the kernel's binding order. */
  readonly #weights: GPUBuffer[];

  private constructor(
    context: GpuContext,
    compiled: GPUComputePipeline,
    spec: CellSpec,
  ) {
    this.#context = context;
    this.#pipeline = compiled;
    this.#sizes = { inputSize: spec.inputSize, hiddenSize: spec.hiddenSize };
    const { device } = context;
    const { params } = spec;
    this.#weights = [
      upload(device, "weight_ih", params.i2hWeight),
      upload(device, "weight_hh", params.h2hWeight),
      upload(device, "bias_ih", params.i2hBias),
      upload(device, "bias_hh", params.h2hBias),
    ];
  }

  /**
   * Uploads the weights of a spec that passed the contract's checks, of kind `"gru"`,
   * `"rnn_tanh"` or `"rnn_relu"` (they are copied).
   *
   * @throws {Error} Without a WebGPU adapter.
   */
  static async create(spec: CellSpec): Promise<TorchGpuCell> {
    const context = await acquireGpuContext();
    const compiled = await pipeline(context, "torchStep", "main", {
      variant: VARIANTS[spec.variant.kind].code,
    });
    return new TorchGpuCell(context, compiled, spec);
  }

  /** Runs all steps of a checked, non-empty input; returns fresh arrays. */
  async run(input: SequenceInput): Promise<SequenceOutput> {
    const { device } = this.#context;
    const { batch: B, seqLen: T } = input;
    const { inputSize: I, hiddenSize: H } = this.#sizes;
    const outputBytes = B * T * H * 4;
    const { maxStorageBufferBindingSize, maxComputeWorkgroupsPerDimension } = device.limits;
    const largest = Math.max(outputBytes, B * T * I * 4);
    if (largest > maxStorageBufferBindingSize) {
      throw new RangeError(
        `a GRU/RNN call of ${B} sequences of ${T} steps needs ${largest} bytes in one buffer, ` +
          `over this WebGPU device's maxStorageBufferBindingSize (${maxStorageBufferBindingSize}): ` +
          "run the batch in parts",
      );
    }
    const groups = Math.ceil((B * H) / WORKGROUP);
    if (groups > maxComputeWorkgroupsPerDimension) {
      throw new RangeError(
        `batch × hiddenSize = ${B * H} is over this WebGPU device's ${
          maxComputeWorkgroupsPerDimension * WORKGROUP
        } invocations per step: run the batch in parts`,
      );
    }
    const stride = roundUp(RECORD_BYTES, device.limits.minUniformBufferOffsetAlignment);
    const records = new Uint32Array((T * stride) / 4);
    for (let t = 0; t < T; t++) records.set([B, T, I, H, t], (t * stride) / 4);
    const { STORAGE, COPY_SRC, COPY_DST, UNIFORM, MAP_READ } = GPUBufferUsage;
    const steps = createBuffer(device, "torch steps", records.byteLength, UNIFORM | COPY_DST);
    device.queue.writeBuffer(steps, 0, records);
    const x = upload(device, "x", input.x);
    const h0 = upload(device, "h0", input.hidden);
    const output = createBuffer(device, "output", outputBytes, STORAGE | COPY_SRC);
    const staging = createBuffer(device, "output staging", outputBytes, MAP_READ | COPY_DST);
    try {
      const layout = this.#pipeline.getBindGroupLayout(0);
      const buffers = [...this.#weights, x, h0, output];
      const encoder = device.createCommandEncoder({ label: "torch steps" });
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.#pipeline);
      for (let t = 0; t < T; t++) {
        pass.setBindGroup(
          0,
          device.createBindGroup({
            layout,
            entries: [
              { binding: 0, resource: { buffer: steps, offset: t * stride, size: RECORD_BYTES } },
              ...buffers.map((buffer, index) => ({ binding: index + 1, resource: { buffer } })),
            ],
          }),
        );
        pass.dispatchWorkgroups(groups);
      }
      pass.end();
      encoder.copyBufferToBuffer(output, 0, staging, 0, outputBytes);
      device.queue.submit([encoder.finish()]);
      await mapForReading(this.#context, staging);
      const result = new Float32Array(staging.getMappedRange(0, outputBytes)).slice();
      staging.unmap();
      // The final hidden state is the last step of the output.
      const hidden = new Float32Array(B * H);
      for (let b = 0; b < B; b++) {
        hidden.set(result.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
      }
      return { output: result, hidden, state: new Float32Array(0) };
    } finally {
      for (const buffer of [steps, x, h0, output, staging]) buffer.destroy();
    }
  }

  /** Frees the weights on the device. */
  dispose(): void {
    for (const buffer of this.#weights) buffer.destroy();
  }
}
