/**
 * Encoding, submitting and reading back the training kernels' work. Each dispatch carries its own
 * uniform record (the kernel's struct, at most {@linkcode RECORD_WORDS} 32-bit words), and all
 * records of one submission are written at once into the record buffer, each bound at its own
 * offset. Records are rewritten for every submission: the queue runs writes and submissions in
 * order. {@linkcode TrainOps} builds the dispatches of `train_gemm.wgsl` and `train_reduce.wgsl`
 * and submits them, with the read-backs a call asks for in the same submission.
 *
 * @module
 */

import { createBuffer } from "./buffers.ts";
import { type GpuContext, pipeline } from "./device.ts";
import { mapForReading } from "./readback.ts";

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

/** A region of a buffer to read back: `[buffer, offset in bytes, bytes]`. */
export type Region = readonly [buffer: GPUBuffer, offsetBytes: number, bytes: number];

/**
 * A GEMM of `train_gemm.wgsl`: `a` and `b` are `[buffer, offset, row or inner stride, inner or
 * column stride]` views, `c` is `[buffer, offset, row stride]`; `bias` are offsets into `b` of one
 * or two vectors added to every row of `c`.
 */
export interface Gemm {
  readonly m: number;
  readonly n: number;
  readonly inner: number;
  readonly a: readonly [GPUBuffer, number, number, number];
  readonly b: readonly [GPUBuffer, number, number, number];
  readonly c: readonly [GPUBuffer, number, number];
  readonly accumulate: boolean;
  readonly bias?: readonly [bias: number, extraBias?: number];
}

/** The variant's constants of `train_cell.wgsl`. */
export interface CellConstants extends Record<string, number> {
  readonly variant: number;
  readonly maxPooling: number;
  readonly gateSlope: number;
}

/** The pipelines of one trainer, but the optimizer's (`optimizer.ts`). */
export interface TrainPipelines {
  readonly forwardStep: GPUComputePipeline;
  readonly backwardStep: GPUComputePipeline;
  readonly gemm: GPUComputePipeline;
  readonly columnSums: GPUComputePipeline;
  readonly sumSquares: GPUComputePipeline;
  readonly scale: GPUComputePipeline;
}

/** Offsets of `train_gemm.wgsl`'s record meaning "no bias". */
const NO_BIAS = 0xffffffff;

/** `train_gemm.wgsl`'s tile. */
const GEMM_TILE = 64;

/** Invocations per workgroup of the 1-D kernels (reduce, optimizer). */
const LINEAR_GROUP = 64;

const scratch = new DataView(new ArrayBuffer(4));

/**
 * The bits of `value` as a float32, for the float fields of a record.
 *
 * @example
 * ```ts
 * import { f32Bits } from "./ops.ts";
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
 * import { encodeDispatches } from "./ops.ts";
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

/**
 * The training kernels of one cell on one device: builds their dispatches, submits them, and
 * reads results back in the same submission. Owns the record buffer.
 *
 * @example
 * ```ts ignore
 * import { TrainOps } from "./ops.ts";
 * const ops = await TrainOps.create(context, { variant: 1, maxPooling: 0, gateSlope: 0 });
 * const [norm] = await ops.submitAndRead([ops.sumSquares(grads, norms, 0, count, 0)], [[norms, 0, 4]]);
 * ops.dispose();
 * ```
 */
export class TrainOps {
  /** The device. */
  readonly context: GpuContext;
  /** The compiled kernels. */
  readonly pipelines: TrainPipelines;
  readonly #records: RecordBuffer = { buffer: null };

  private constructor(context: GpuContext, pipelines: TrainPipelines) {
    this.context = context;
    this.pipelines = pipelines;
  }

  /** Compiles the training kernels of the cell `cell` describes on `context`'s device. */
  static async create(context: GpuContext, cell: CellConstants): Promise<TrainOps> {
    const [forwardStep, backwardStep, gemm, columnSums, sumSquares, scale] = await Promise.all([
      pipeline(context, "trainCell", "forwardStep", cell),
      pipeline(context, "trainCell", "backwardStep", cell),
      pipeline(context, "trainGemm", "multiply", {}),
      pipeline(context, "trainReduce", "columnSums", {}),
      pipeline(context, "trainReduce", "sumSquares", {}),
      pipeline(context, "trainReduce", "scale", {}),
    ]);
    return new TrainOps(context, {
      forwardStep,
      backwardStep,
      gemm,
      columnSums,
      sumSquares,
      scale,
    });
  }

  /** A GEMM dispatch (see {@linkcode Gemm}). */
  gemm(g: Gemm): TrainDispatch {
    const [bias = NO_BIAS, extraBias = NO_BIAS] = g.bias ?? [];
    return {
      pipeline: this.pipelines.gemm,
      record: [
        g.m,
        g.n,
        g.inner,
        ...g.a.slice(1) as number[],
        ...g.b.slice(1) as number[],
        ...g.c.slice(1) as number[],
        g.accumulate ? 1 : 0,
        bias,
        extraBias,
      ],
      bindings: [[1, g.a[0]], [2, g.b[0]], [3, g.c[0]]],
      groups: [Math.ceil(g.n / GEMM_TILE), Math.ceil(g.m / GEMM_TILE)],
    };
  }

  /** Adds the column sums of `input (rows, columns)` to `grads` at `offset` and `extraOffset`. */
  columnSums(
    input: GPUBuffer,
    grads: GPUBuffer,
    rows: number,
    columns: number,
    offset: number,
    extraOffset: number,
  ): TrainDispatch {
    return this.linear(this.pipelines.columnSums, [rows, columns, offset, extraOffset], [
      [1, input],
      [2, grads],
    ], columns);
  }

  /** `norms[index] = Σ g²` over `count` gradients of `grads` from `offset`. */
  sumSquares(
    grads: GPUBuffer,
    norms: GPUBuffer,
    offset: number,
    count: number,
    index: number,
  ): TrainDispatch {
    return {
      pipeline: this.pipelines.sumSquares,
      record: [0, 0, offset, index, count],
      bindings: [[2, grads], [3, norms]],
      groups: [1, 1],
    };
  }

  /** Multiplies `count` gradients of `grads` from `offset` by `factor`. */
  scale(grads: GPUBuffer, offset: number, count: number, factor: number): TrainDispatch {
    return this.linear(
      this.pipelines.scale,
      [0, 0, offset, 0, count, f32Bits(factor)],
      [[2, grads]],
      count,
    );
  }

  /**
   * A dispatch of a 1-D kernel over `count` elements.
   *
   * @throws {RangeError} If `count` needs more workgroups than the device dispatches.
   */
  linear(
    kernel: GPUComputePipeline,
    record: number[],
    bindings: TrainDispatch["bindings"],
    count: number,
  ): TrainDispatch {
    const groups = Math.ceil(count / LINEAR_GROUP);
    const limit = this.context.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups > limit) {
      throw new RangeError(
        `the cell has ${count} parameters, more than this WebGPU device's training kernels ` +
          `handle (${limit * LINEAR_GROUP}); use the wasm backend`,
      );
    }
    return { pipeline: kernel, record, bindings, groups: [groups, 1] };
  }

  /** Encodes `dispatches` and submits them. */
  submit(dispatches: readonly TrainDispatch[]): void {
    const { device } = this.context;
    const encoder = device.createCommandEncoder();
    encodeDispatches(device, encoder, this.#records, dispatches);
    device.queue.submit([encoder.finish()]);
  }

  /** Clears `buffer` to zeros (in submission order). */
  clear(buffer: GPUBuffer): void {
    const encoder = this.context.device.createCommandEncoder();
    encoder.clearBuffer(buffer);
    this.context.device.queue.submit([encoder.finish()]);
  }

  /**
   * Submits `dispatches`, then copies `regions` into one staging buffer in the same submission,
   * and resolves to fresh copies of them.
   */
  async submitAndRead(
    dispatches: readonly TrainDispatch[],
    regions: readonly Region[],
  ): Promise<Float32Array<ArrayBuffer>[]> {
    const { device } = this.context;
    const encoder = device.createCommandEncoder();
    encodeDispatches(device, encoder, this.#records, dispatches);
    const bytes = regions.reduce((sum, [, , size]) => sum + size, 0);
    if (bytes === 0) {
      device.queue.submit([encoder.finish()]);
      return [];
    }
    const staging = createBuffer(
      device,
      "training staging",
      bytes,
      GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    );
    let at = 0;
    for (const [buffer, offset, size] of regions) {
      encoder.copyBufferToBuffer(buffer, offset, staging, at, size);
      at += size;
    }
    device.queue.submit([encoder.finish()]);
    try {
      await mapForReading(this.context, staging);
      const all = new Float32Array(staging.getMappedRange(0, bytes)).slice();
      staging.unmap();
      const arrays: Float32Array<ArrayBuffer>[] = [];
      at = 0;
      for (const [, , size] of regions) {
        arrays.push(all.slice(at / 4, (at + size) / 4));
        at += size;
      }
      return arrays;
    } finally {
      staging.destroy();
    }
  }

  /** Frees the record buffer. Idempotent. */
  dispose(): void {
    this.#records.buffer?.destroy();
    this.#records.buffer = null;
  }
}
