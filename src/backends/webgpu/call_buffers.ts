/**
 * Everything one call shape (`batch` × `seqLen`) needs on the device: the chunk plan, the
 * recurrent pipeline, the per-call buffers, the step records (the kernels' uniforms) and the bind
 * groups. Made on the first call of a shape and reused by the next ones.
 *
 * @module
 */

import { createBuffer } from "./buffers.ts";
import { pipeline } from "./device.ts";
import { roundUp } from "./layout.ts";
import type { PackedCell } from "./packed_cell.ts";
import { type ChunkPlan, planChunks } from "./plan.ts";
import { cachedCall, type Resident } from "./resident.ts";
import { STEP_WORDS, stepRecord } from "../../step_record.ts";
import { hardSigmoidSlope } from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";

const NO_EXTRAS = { attention: false, lanes: false } as const;

/** Everything one call shape needs on the device. */
export interface CallBuffers {
  /** How the call is cut into batch and time chunks. */
  readonly plan: ChunkPlan;
  /** The recurrent kernel's entry point for this plan. */
  readonly step: GPUComputePipeline;
  /** Every buffer below, to free them. */
  readonly buffers: readonly GPUBuffer[];
  /** The packed input of one batch chunk. */
  readonly input: GPUBuffer;
  /** The initial hidden state of one batch chunk. */
  readonly hidden: GPUBuffer;
  /** The cell states of one batch chunk. */
  readonly cells: GPUBuffer;
  /** The outputs of one batch chunk. */
  readonly output: GPUBuffer;
  /** Where all results are copied for the one read-back. */
  readonly staging: GPUBuffer;
  /** The projection's bind group. */
  readonly projectionGroup: GPUBindGroup;
  /** Bind groups of even and odd steps: the hidden state ping-pongs between two buffers. */
  readonly stepGroups: readonly [GPUBindGroup, GPUBindGroup];
  /** Byte offset of the record of batch chunk `chunk`, step `time` in the step records. */
  readonly recordOffset: (chunk: number, time: number) => number;
  /** Float offset of each batch chunk's cell states in the staging buffer. */
  readonly cellOffsets: readonly number[];
  /** The attention weights of a time chunk, `[chunk step][row][lane][unitVec]` vec4s. */
  readonly laneWeights: GPUBuffer;
  /** Where the opt-in outputs land in `staging` (floats), when asked for. */
  readonly extras: StagedExtras;
}

/** Offsets (in floats) of the opt-in outputs in the staging buffer; `null` when not asked for. */
export interface StagedExtras {
  /** The chosen lanes `(B, T, H)`, as floats. */
  readonly lanes: number | null;
  /** Per batch chunk: its attention weights, `[time][padded row][lane][paddedUnits]`. */
  readonly attention: readonly number[] | null;
}

/**
 * The buffers for calls of `batch` × `seqLen` on `resident`'s device (with room for the opt-in
 * outputs `extras` asks for), made on the first such call and cached there (`cachedCall`).
 *
 * @throws {RangeError} If the call does not fit the device (the message says what to do).
 *
 * @example
 * ```ts ignore
 * import { callBuffers } from "./call_buffers.ts";
 * const call = await callBuffers(resident, cell, 64, 100);
 * ```
 */
export function callBuffers(
  resident: Resident<CallBuffers>,
  cell: PackedCell,
  batch: number,
  seqLen: number,
  extras: Extras = NO_EXTRAS,
): Promise<CallBuffers> {
  const key = `${batch}x${seqLen}${extras.attention ? "+attention" : ""}${
    extras.lanes ? "+lanes" : ""
  }`;
  return cachedCall(resident, key, () => makeCallBuffers(resident, cell, batch, seqLen, extras));
}

/** The opt-in outputs a call asks for. */
type Extras = { readonly attention: boolean; readonly lanes: boolean };

async function makeCallBuffers(
  resident: Resident<CallBuffers>,
  cell: PackedCell,
  batch: number,
  seqLen: number,
  extras: Extras,
): Promise<CallBuffers> {
  const { device } = resident.context;
  const { hiddenSize: H, inputSize: I, variant: { k, kind, recurrentActivation } } = cell;
  const plan = planChunks(
    { batch, seqLen, inputSize: I, hiddenSize: H, lanes: k, withLanes: extras.lanes },
    resident.maxBindingBytes,
  );
  const step = await pipeline(resident.context, "recurrentStep", plan.recurrent.entryPoint, {
    variant: VARIANTS[VARIANTS[kind].equations].code,
    gateSlope: hardSigmoidSlope(recurrentActivation),
    ...(extras.lanes ? { writeLanes: 1 } : {}),
  });
  const cellFloats = plan.batchChunks.reduce(
    (sum, chunk) => sum + k * chunk.padded * roundUp(H, 4),
    0,
  );
  const lanesOffset = batch * seqLen * H + cellFloats;
  const attentionStart = lanesOffset + (extras.lanes ? batch * seqLen * H : 0);
  const attentionOffsets: number[] = [];
  let attentionEnd = attentionStart;
  for (const chunk of extras.attention ? plan.batchChunks : []) {
    attentionOffsets.push(attentionEnd);
    attentionEnd += seqLen * chunk.padded * k * roundUp(H, 4);
  }
  const stagingBytes = attentionEnd * 4;
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
    extras.attention ? STORAGE | COPY_SRC : STORAGE,
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
    laneWeights,
    extras: {
      lanes: extras.lanes ? lanesOffset : null,
      attention: extras.attention ? attentionOffsets : null,
    },
  };
  return call;
}
