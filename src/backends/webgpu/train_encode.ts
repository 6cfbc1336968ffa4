/**
 * Encoding the training kernels: each dispatch carries its own uniform record (the kernel's
 * struct, at most {@linkcode RECORD_WORDS} 32-bit words), and all records of one submission are
 * written at once into the trainer's record buffer, each bound at its own offset. Records are
 * rewritten for every submission: the queue runs writes and submissions in order.
 *
 * @module
 */

import { createBuffer } from "./buffers.ts";

/** Words of the largest record (the GEMM's, rounded up to 16 bytes). */
export const RECORD_WORDS = 16;

/** A buffer bound at one binding of a dispatch. */
export type Binding = readonly [binding: number, buffer: GPUBuffer];

/** One compute dispatch of a training kernel. */
export interface TrainDispatch {
  /** The pipeline (its layout is derived from its code). */
  readonly pipeline: GPUComputePipeline;
  /** The record bound at binding 0, as 32-bit words (floats as their bits, see `f32Bits`). */
  readonly record: readonly number[];
  /** The storage buffers, by binding. */
  readonly bindings: readonly Binding[];
  /** Workgroups along x and y. */
  readonly groups: readonly [number, number];
}

/** The record buffer of a trainer, grown when a submission needs more records. */
export interface RecordBuffer {
  buffer: GPUBuffer | null;
}

const scratch = new DataView(new ArrayBuffer(4));

/**
 * The bits of `value` as a float32, for the float fields of a record.
 *
 * @example
 * ```ts
 * import { f32Bits } from "./train_encode.ts";
 * f32Bits(1); // 0x3f800000
 * ```
 */
export function f32Bits(value: number): number {
  scratch.setFloat32(0, value, true);
  return scratch.getUint32(0, true);
}

/**
 * Writes the records of `dispatches` and encodes them, in order, into one compute pass of
 * `encoder`.
 *
 * @example
 * ```ts ignore
 * import { encodeDispatches } from "./train_encode.ts";
 * encodeDispatches(device, encoder, records, [{ pipeline, record: [4], bindings: [[1, grads]], groups: [1, 1] }]);
 * ```
 */
export function encodeDispatches(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  records: RecordBuffer,
  dispatches: readonly TrainDispatch[],
): void {
  if (dispatches.length === 0) return;
  const stride = Math.max(RECORD_WORDS * 4, device.limits.minUniformBufferOffsetAlignment);
  const bytes = dispatches.length * stride;
  if (records.buffer === null || records.buffer.size < bytes) {
    records.buffer?.destroy();
    records.buffer = createBuffer(
      device,
      "training records",
      bytes,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    );
  }
  const words = new Uint32Array(bytes / 4);
  for (const [index, dispatch] of dispatches.entries()) {
    words.set(dispatch.record, index * stride / 4);
  }
  device.queue.writeBuffer(records.buffer, 0, words);
  const pass = encoder.beginComputePass();
  for (const [index, dispatch] of dispatches.entries()) {
    const group = device.createBindGroup({
      layout: dispatch.pipeline.getBindGroupLayout(0),
      entries: [
        {
          binding: 0,
          resource: { buffer: records.buffer, offset: index * stride, size: RECORD_WORDS * 4 },
        },
        ...dispatch.bindings.map(([binding, buffer]) => ({ binding, resource: { buffer } })),
      ],
    });
    pass.setPipeline(dispatch.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(dispatch.groups[0], dispatch.groups[1]);
  }
  pass.end();
}
