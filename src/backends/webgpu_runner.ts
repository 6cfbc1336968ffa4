/**
 * A compiled cell on the WebGPU device. Weights are packed once (and kept in CPU memory, so that a
 * lost device can be replaced); buffers, bind groups and step records are made once per call shape
 * and reused. A call uploads the input and initial state, encodes the projection and all time
 * steps of a batch chunk into one command buffer, copies the results into one staging buffer and
 * reads it back once.
 *
 * @module
 */

import type { CellSpec, SequenceInput, SequenceOutput, SequenceRunner } from "./backend.ts";
import {
  acquireGpuContext,
  forgetGpuContext,
  type GpuContext,
  lossOf,
  pipeline,
} from "./webgpu_device.ts";
import {
  packAttentionWeights,
  packCells,
  packGateBias,
  packGateWeights,
  packHidden,
  packInput,
  packLaneVector,
  PROJECTION_ROWS,
  roundUp,
  unpackCells,
} from "./webgpu_layout.ts";
import { type ChunkPlan, planChunks, UNIT_GROUPS } from "./webgpu_plan.ts";
import { STEP_WORDS, stepRecord } from "../step_record.ts";
import { VARIANTS } from "../variants.ts";

/** Call shapes whose buffers a runner keeps; older ones are freed. */
const CACHED_SHAPES = 2;

/** Storage buffers bound in place of attention buffers by the other variants. */
const PLACEHOLDER_BYTES = 64;

/** The device went away during a call; the call is retried once on a new device. */
class DeviceLost extends Error {}

/** The weights in the kernels' layouts (see `webgpu_layout.ts`). */
interface PackedCell {
  readonly variant: CellSpec["variant"];
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly recurrentWeights: Float32Array;
  readonly inputWeights: Float32Array;
  readonly gateBias: Float32Array;
  readonly attentionWeights: Float32Array | null;
  readonly attentionBias: Float32Array | null;
}

/** The weights on one device, and the buffers of the call shapes seen so far. */
interface Resident {
  readonly context: GpuContext;
  readonly weightBuffers: readonly GPUBuffer[];
  readonly recurrentWeights: GPUTexture;
  readonly inputWeights: GPUBuffer;
  readonly gateBias: GPUBuffer;
  readonly attentionWeights: GPUBuffer;
  readonly attentionBias: GPUBuffer;
  readonly projection: GPUComputePipeline;
  readonly calls: Map<string, CallBuffers>;
  readonly maxBindingBytes: number;
}

/** Everything one call shape needs on the device. */
interface CallBuffers {
  readonly plan: ChunkPlan;
  readonly step: GPUComputePipeline;
  readonly buffers: readonly GPUBuffer[];
  readonly input: GPUBuffer;
  readonly hidden: GPUBuffer;
  readonly cells: GPUBuffer;
  readonly output: GPUBuffer;
  readonly staging: GPUBuffer;
  readonly projectionGroup: GPUBindGroup;
  /** Bind groups of even and odd steps: the hidden state ping-pongs between two buffers. */
  readonly stepGroups: readonly [GPUBindGroup, GPUBindGroup];
  /** Byte offset of the record of batch chunk `chunk`, step `time` in the step records. */
  readonly recordOffset: (chunk: number, time: number) => number;
  /** Float offset of each batch chunk's cell states in the staging buffer. */
  readonly cellOffsets: readonly number[];
}

/** Packs `spec`'s weights for the kernels, checking their sizes. */
function packCell(spec: CellSpec): PackedCell {
  const { variant, inputSize: I, hiddenSize: H, params } = spec;
  const { k } = variant;
  const expect = (name: string, array: Float32Array | null, length: number) => {
    if (array === null || array.length !== length) {
      throw new RangeError(
        `${name} must be a Float32Array of ${length} values for k = ${k}, I = ${I}, H = ${H}; ` +
          `got ${array === null ? "null" : array.length}`,
      );
    }
    return array;
  };
  if (!(k >= 1 && H >= 1 && I >= 0)) {
    throw new RangeError(`the WebGPU backend needs k >= 1 and H >= 1, got k = ${k}, H = ${H}`);
  }
  const attention = variant.kind === "attention";
  return {
    variant: { ...variant },
    inputSize: I,
    hiddenSize: H,
    recurrentWeights: packGateWeights(
      expect("h2h.weight", params.h2hWeight, 4 * k * H * H),
      k,
      H,
      H,
    ),
    inputWeights: packGateWeights(expect("i2h.weight", params.i2hWeight, 4 * k * H * I), k, H, I),
    gateBias: packGateBias(
      expect("i2h.bias", params.i2hBias, 4 * k * H),
      expect("h2h.bias", params.h2hBias, 4 * k * H),
      k,
      H,
    ),
    attentionWeights: attention
      ? packAttentionWeights(expect("i2a.weight", params.i2aWeight, k * H * I), k, H, I)
      : null,
    attentionBias: attention
      ? packLaneVector(expect("i2a.bias", params.i2aBias, k * H), k, H)
      : null,
  };
}

function createBuffer(device: GPUDevice, label: string, bytes: number, usage: number): GPUBuffer {
  return device.createBuffer({
    label,
    size: roundUp(Math.max(bytes, PLACEHOLDER_BYTES), 4),
    usage,
  });
}

function upload(device: GPUDevice, label: string, data: Float32Array | null): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: roundUp(Math.max(data?.byteLength ?? 0, PLACEHOLDER_BYTES), 4),
    usage: GPUBufferUsage.STORAGE,
    mappedAtCreation: true,
  });
  if (data !== null) new Float32Array(buffer.getMappedRange()).set(data);
  buffer.unmap();
  return buffer;
}

/** Fails with `DeviceLost` if the device goes away before `buffer` is mapped for reading. */
async function mapForReading(context: GpuContext, buffer: GPUBuffer): Promise<void> {
  const mapped = buffer.mapAsync(GPUMapMode.READ).then(() => null, (error: unknown) => error);
  const outcome = await Promise.race([
    mapped,
    context.lost.then((reason) => new DeviceLost(reason)),
  ]);
  if (outcome instanceof DeviceLost) throw outcome;
  if (outcome !== null) throw new DeviceLost(`mapping the results failed: ${outcome}`);
}

/**
 * Runs sequences of one compiled cell on the shared WebGPU device.
 *
 * @example
 * ```ts ignore
 * import { WebGpuRunner } from "./webgpu_runner.ts";
 * const runner = await WebGpuRunner.create(spec);
 * const { output } = await runner.run(input);
 * runner.dispose();
 * ```
 */
export class WebGpuRunner implements SequenceRunner {
  /** The backend's name. */
  readonly backend = "webgpu" as const;
  #cell: PackedCell | null;
  #resident: Resident | null = null;
  #bindingLimit: number;
  /** Calls run one at a time: they share the call buffers. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(cell: PackedCell, bindingLimit: number) {
    this.#cell = cell;
    this.#bindingLimit = bindingLimit;
  }

  /**
   * Packs `spec`, uploads it to the device and compiles the projection pipeline.
   * `maxBindingBytes` caps the bytes bound per storage buffer below the device's limit.
   */
  static async create(spec: CellSpec, maxBindingBytes = Infinity): Promise<WebGpuRunner> {
    const runner = new WebGpuRunner(packCell(spec), maxBindingBytes);
    await runner.#onWorkingDevice((context) => runner.#ensureResident(context));
    return runner;
  }

  /** Runs all steps of `input`; the input arrays are left untouched. */
  run(input: SequenceInput): Promise<SequenceOutput> {
    if (this.#cell === null) {
      return Promise.reject(new Error("this webgpu runner was disposed; compile the cell again"));
    }
    const result = this.#queue.then(() => this.#runExclusive(input));
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Frees the runner's GPU memory. Calling `run` afterwards throws. */
  dispose(): void {
    this.#cell = null;
    this.#release();
  }

  /** Same as {@linkcode WebGpuRunner.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #release(): void {
    const resident = this.#resident;
    this.#resident = null;
    if (resident === null) return;
    for (const buffer of resident.weightBuffers) buffer.destroy();
    resident.recurrentWeights.destroy();
    for (const call of resident.calls.values()) {
      for (const buffer of call.buffers) buffer.destroy();
    }
  }

  #disposedError(): Error {
    return new Error("this webgpu runner was disposed during run; compile the cell again");
  }

  async #runExclusive(input: SequenceInput): Promise<SequenceOutput> {
    const cell = this.#cell;
    if (cell === null) throw this.#disposedError();
    checkInput(cell, input);
    const { batch: B, seqLen: T } = input;
    if (B === 0 || T === 0) {
      return {
        output: new Float32Array(B * T * cell.hiddenSize),
        hidden: input.hidden.slice(),
        state: input.state.slice(),
      };
    }
    return await this.#onWorkingDevice(async (context) =>
      this.#runOn(await this.#ensureResident(context), cell, input)
    );
  }

  /**
   * Runs `work` on the shared device. A device lost meanwhile (driver reset, `destroy()`) is
   * replaced and `work` retried once: losses surface as failing calls before `device.lost`
   * resolves, so failures are checked against it.
   */
  async #onWorkingDevice<T>(work: (context: GpuContext) => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      const context = await acquireGpuContext();
      try {
        return await work(context);
      } catch (error) {
        if (this.#cell === null) throw this.#disposedError();
        // Our own RangeErrors are about sizes; anything else may be a symptom of a lost device.
        const loss = error instanceof DeviceLost
          ? error.message
          : error instanceof RangeError
          ? null
          : await lossOf(context);
        if (loss === null) throw error;
        forgetGpuContext(context, loss);
        this.#release();
        if (attempt > 0) {
          throw new Error(
            `the WebGPU device was lost twice in a row (${loss}); the GPU driver seems to be ` +
              "failing: use the wasm or js backend",
          );
        }
      }
    }
  }

  /** The weights on `context`'s device, uploaded there unless they already are. */
  async #ensureResident(context: GpuContext): Promise<Resident> {
    if (this.#resident?.context === context) return this.#resident;
    this.#release();
    const cell = this.#cell;
    if (cell === null) throw this.#disposedError();
    const { device } = context;
    const maxBindingBytes = Math.min(this.#bindingLimit, device.limits.maxStorageBufferBindingSize);
    const paddedUnits = roundUp(cell.hiddenSize, 4);
    const textureRows = cell.variant.k * paddedUnits;
    if (textureRows > device.limits.maxTextureDimension2D) {
      throw new RangeError(
        `k · H rounded up to a multiple of 4 (${textureRows}) exceeds this WebGPU device's ` +
          `maxTextureDimension2D (${device.limits.maxTextureDimension2D}), which holds the h2h ` +
          "weights; use the wasm backend",
      );
    }
    if (cell.inputWeights.byteLength > maxBindingBytes) {
      throw new RangeError(
        `the packed i2h weights (${cell.inputWeights.byteLength} bytes) exceed this WebGPU ` +
          `device's maxStorageBufferBindingSize (${maxBindingBytes} bytes); use the wasm backend`,
      );
    }
    const { maxPooling, kind } = cell.variant;
    const projection = await pipeline(context, "projection", "project", {
      attention: kind === "attention" ? 1 : 0,
      maxPooling: kind === "attention" && maxPooling ? 1 : 0,
    });
    // Texel (4·unitVec + gate, lane·paddedUnits + inner): the packed rows are the texture's rows.
    const recurrentWeights = device.createTexture({
      label: "h2h weights",
      size: [paddedUnits, textureRows],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    device.queue.writeTexture(
      { texture: recurrentWeights },
      cell.recurrentWeights,
      { bytesPerRow: paddedUnits * 16 },
      [paddedUnits, textureRows],
    );
    const weights = {
      inputWeights: upload(device, "i2h weights", cell.inputWeights),
      gateBias: upload(device, "gate bias", cell.gateBias),
      attentionWeights: upload(device, "i2a weights", cell.attentionWeights),
      attentionBias: upload(device, "i2a bias", cell.attentionBias),
    };
    // Disposed while waiting for the device: free what was just made.
    if (this.#cell === null) {
      for (const buffer of Object.values(weights)) buffer.destroy();
      recurrentWeights.destroy();
      throw this.#disposedError();
    }
    this.#resident = {
      context,
      recurrentWeights,
      ...weights,
      weightBuffers: Object.values(weights),
      projection,
      calls: new Map(),
      maxBindingBytes,
    };
    return this.#resident;
  }

  /** The buffers for calls of `batch` × `seqLen`, made on the first such call. */
  async #callBuffers(
    resident: Resident,
    cell: PackedCell,
    batch: number,
    seqLen: number,
  ): Promise<CallBuffers> {
    const key = `${batch}x${seqLen}`;
    const cached = resident.calls.get(key);
    if (cached !== undefined) {
      // Most recently used last, so that eviction frees the oldest shape.
      resident.calls.delete(key);
      resident.calls.set(key, cached);
      return cached;
    }
    const { device } = resident.context;
    const { hiddenSize: H, inputSize: I, variant: { k, kind } } = cell;
    const plan = planChunks(
      { batch, seqLen, inputSize: I, hiddenSize: H, lanes: k },
      resident.maxBindingBytes,
    );
    const step = await pipeline(resident.context, "recurrentStep", plan.recurrent.entryPoint, {
      variant: VARIANTS[VARIANTS[kind].equations].code,
    });
    const stagingBytes = (batch * seqLen * H +
      plan.batchChunks.reduce((sum, chunk) => sum + k * chunk.padded * roundUp(H, 4), 0)) * 4;
    if (stagingBytes > device.limits.maxBufferSize) {
      throw new RangeError(
        `the results of ${batch} sequences of ${seqLen} steps (${stagingBytes} bytes) exceed this ` +
          `WebGPU device's maxBufferSize (${device.limits.maxBufferSize} bytes): run the batch in parts`,
      );
    }
    const { STORAGE, COPY_DST, COPY_SRC, UNIFORM, MAP_READ } = GPUBufferUsage;
    const { bytes } = plan;
    const recordStride = roundUp(STEP_WORDS * 4, device.limits.minUniformBufferOffsetAlignment);
    device.pushErrorScope("out-of-memory");
    const records = createBuffer(
      device,
      "step records",
      plan.batchChunks.length * seqLen * recordStride,
      UNIFORM | COPY_DST,
    );
    const input = createBuffer(device, "input", bytes.input, STORAGE | COPY_DST);
    const inputGates = createBuffer(device, "input gates", bytes.inputGates, STORAGE);
    const laneWeights = createBuffer(
      device,
      "lane weights",
      kind === "attention" ? bytes.laneWeights : 0,
      STORAGE,
    );
    const hidden = createBuffer(device, "hidden A", bytes.hidden, STORAGE | COPY_DST);
    const hiddenNext = createBuffer(device, "hidden B", bytes.hidden, STORAGE);
    const cells = createBuffer(device, "cells", bytes.cells, STORAGE | COPY_DST | COPY_SRC);
    const output = createBuffer(device, "output", bytes.output, STORAGE | COPY_SRC);
    const staging = createBuffer(device, "staging", stagingBytes, MAP_READ | COPY_DST);
    const outOfMemory = await device.popErrorScope();
    const buffers = [
      records,
      input,
      inputGates,
      laneWeights,
      hidden,
      hiddenNext,
      cells,
      output,
      staging,
    ];
    if (outOfMemory !== null) {
      for (const buffer of buffers) buffer.destroy();
      throw new RangeError(
        `the WebGPU device is out of memory for ${batch} sequences of ${seqLen} steps ` +
          `(${outOfMemory.message}): run the batch in parts`,
      );
    }

    const recordWords = new Uint32Array(records.size / 4);
    for (const [index, chunk] of plan.batchChunks.entries()) {
      for (const span of plan.timeChunks) {
        for (let time = span.start; time < span.start + span.length; time++) {
          recordWords.set(
            stepRecord({
              batch: chunk.padded,
              time,
              chunkStep: time - span.start,
              chunkStart: span.start,
              seqLen,
              validBatch: chunk.size,
              inputRows: plan.inputPlaneRows(chunk),
              lanes: k,
              hiddenSize: H,
              paddedUnits: roundUp(H, 4),
              paddedInputs: roundUp(I, 4),
            }),
            (index * seqLen + time) * recordStride / 4,
          );
        }
      }
    }
    device.queue.writeBuffer(records, 0, recordWords);

    const record = { buffer: records, size: STEP_WORDS * 4 };
    const entries = (resources: GPUBuffer[], first = 1): GPUBindGroupEntry[] =>
      resources.map((buffer, i) => ({ binding: first + i, resource: { buffer } }));
    const stepGroup = (previous: GPUBuffer, next: GPUBuffer) =>
      device.createBindGroup({
        layout: resident.context.stepLayout,
        entries: [
          { binding: 0, resource: record },
          { binding: 1, resource: resident.recurrentWeights.createView() },
          ...entries([inputGates, laneWeights, previous, next, cells, output], 2),
        ],
      });
    const projectionGroup = device.createBindGroup({
      layout: resident.context.projectionLayout,
      entries: [
        { binding: 0, resource: record },
        ...entries([
          resident.inputWeights,
          resident.gateBias,
          resident.attentionWeights,
          resident.attentionBias,
          input,
          inputGates,
          laneWeights,
        ]),
      ],
    });
    const cellOffsets: number[] = [];
    let cellOffset = batch * seqLen * H;
    for (const chunk of plan.batchChunks) {
      cellOffsets.push(cellOffset);
      cellOffset += k * chunk.padded * roundUp(H, 4);
    }
    const call: CallBuffers = {
      plan,
      step,
      buffers,
      input,
      hidden,
      cells,
      output,
      staging,
      projectionGroup,
      stepGroups: [stepGroup(hidden, hiddenNext), stepGroup(hiddenNext, hidden)],
      recordOffset: (chunk, time) => (chunk * seqLen + time) * recordStride,
      cellOffsets,
    };
    resident.calls.set(key, call);
    for (const [oldKey, old] of resident.calls) {
      if (resident.calls.size <= CACHED_SHAPES) break;
      resident.calls.delete(oldKey);
      for (const buffer of old.buffers) buffer.destroy();
    }
    return call;
  }

  async #runOn(
    resident: Resident,
    cell: PackedCell,
    input: SequenceInput,
  ): Promise<SequenceOutput> {
    const { batch: B, seqLen: T, x } = input;
    const { hiddenSize: H, inputSize: I, variant: { k } } = cell;
    const call = await this.#callBuffers(resident, cell, B, T);
    const { device } = resident.context;
    const { plan } = call;
    const unitGroups = Math.ceil(roundUp(H, 4) / 4 / UNIT_GROUPS);
    for (const [index, chunk] of plan.batchChunks.entries()) {
      const planeRows = plan.inputPlaneRows(chunk);
      const { start, size, padded } = chunk;
      device.queue.writeBuffer(call.input, 0, packInput(x, T, I, start, size, padded, planeRows));
      device.queue.writeBuffer(call.hidden, 0, packHidden(input.hidden, H, start, size, padded));
      device.queue.writeBuffer(call.cells, 0, packCells(input.state, k, B, H, start, size, padded));
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      for (const span of plan.timeChunks) {
        pass.setPipeline(resident.projection);
        pass.setBindGroup(0, call.projectionGroup, [call.recordOffset(index, span.start)]);
        pass.dispatchWorkgroups(
          roundUp(span.length * padded, PROJECTION_ROWS) / PROJECTION_ROWS,
          unitGroups,
        );
        pass.setPipeline(call.step);
        for (let time = span.start; time < span.start + span.length; time++) {
          pass.setBindGroup(0, call.stepGroups[time % 2], [call.recordOffset(index, time)]);
          pass.dispatchWorkgroups(padded / plan.recurrent.rowsPerWorkgroup, unitGroups);
        }
      }
      pass.end();
      encoder.copyBufferToBuffer(call.output, 0, call.staging, start * T * H * 4, size * T * H * 4);
      encoder.copyBufferToBuffer(
        call.cells,
        0,
        call.staging,
        call.cellOffsets[index] * 4,
        k * padded * roundUp(H, 4) * 4,
      );
      device.queue.submit([encoder.finish()]);
    }
    await mapForReading(resident.context, call.staging);
    const output = new Float32Array(B * T * H);
    const state = new Float32Array(k * B * H);
    try {
      const results = new Float32Array(call.staging.getMappedRange());
      output.set(results.subarray(0, B * T * H));
      for (const [index, chunk] of plan.batchChunks.entries()) {
        const packed = results.subarray(call.cellOffsets[index]);
        unpackCells(packed, k, B, H, chunk.start, chunk.size, chunk.padded, state);
      }
    } finally {
      call.staging.unmap();
    }
    const hidden = new Float32Array(B * H);
    for (let b = 0; b < B; b++) {
      hidden.set(output.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
    }
    return { output, hidden, state };
  }
}

/** Checks that `input`'s arrays match its sizes and the cell's. */
function checkInput(cell: PackedCell, input: SequenceInput): void {
  const { batch: B, seqLen: T } = input;
  const { inputSize: I, hiddenSize: H, variant: { k } } = cell;
  if (!Number.isInteger(B) || B < 0 || !Number.isInteger(T) || T < 0) {
    throw new RangeError(`batch and seqLen must be non-negative integers, got ${B} and ${T}`);
  }
  const check = (name: string, array: Float32Array, shape: number[]) => {
    const length = shape.reduce((a, b) => a * b, 1);
    if (!(array instanceof Float32Array) || array.length !== length) {
      throw new RangeError(
        `${name} must be a Float32Array of shape (${shape.join(", ")}) = ${length} values, got ` +
          `${array instanceof Float32Array ? array.length : typeof array}`,
      );
    }
  };
  check("x", input.x, [B, T, I]);
  check("hidden", input.hidden, [B, H]);
  check("state", input.state, [k, B, H]);
}
