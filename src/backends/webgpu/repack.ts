/**
 * Packing a trainer's weights, stepped on the device, into an inference runner's layouts there
 * (`kernels/repack.wgsl`): evaluation after training reads no weights back and uploads none.
 *
 * @module
 */

import { createBuffer } from "./buffers.ts";
import { lostTrainedWeights, pipeline } from "./device.ts";
import { roundUp } from "./layout.ts";
import type { PackedCell } from "./packed_cell.ts";
import type { Resident } from "./resident.ts";
import { encodeDispatches, type RecordBuffer, type TrainDispatch } from "./ops.ts";
import type { TrainerParameters } from "./trainer.ts";

/** Invocations per workgroup of `repack.wgsl`. */
const GROUP = 64;

/** The fields of `repack.wgsl`'s record. */
interface RepackRecord {
  readonly count: number;
  readonly offset: number;
  readonly extraOffset?: number;
  readonly inner?: number;
  readonly rowLength?: number;
  readonly rowStride?: number;
}

/**
 * Overwrites `resident`'s weights (sized by `cell`) with `source`'s, packed on the device in one
 * submission. The weights a call reads are bound by buffer, so the call buffers stay valid.
 *
 * @throws {Error} If `source` lives on another device than `resident` (that device was lost).
 *
 * @example
 * ```ts ignore
 * import { repackOnDevice } from "./repack.ts";
 * await repackOnDevice(resident, cell, trainer.parameterBuffer());
 * ```
 */
export async function repackOnDevice(
  resident: Resident,
  cell: PackedCell,
  source: TrainerParameters,
): Promise<void> {
  const { context } = resident;
  if (source.context !== context) throw lostTrainedWeights(source.context.lostReason);
  const { device } = context;
  // The `packing` codes of repack.wgsl, in its order.
  const [gateWeights, gateBias, attentionWeights, laneVector] = await Promise.all(
    [0, 1, 2, 3].map((packing) => pipeline(context, "repack", "pack", { packing })),
  );
  const slot = source.layout.byName;
  const H = cell.hiddenSize, I = cell.inputSize;
  const paddedUnits = roundUp(H, 4), textureRows = cell.variant.k * paddedUnits;
  // The texture's rows, as a buffer whose rows are aligned as copyBufferToTexture wants.
  const rowStride = roundUp(paddedUnits * 16, 256) / 4;
  const recurrent = createBuffer(
    device,
    "packed h2h weights",
    rowStride * textureRows * 4,
    GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  );
  const dispatch = (
    kernel: GPUComputePipeline,
    target: GPUBuffer,
    record: RepackRecord,
  ): TrainDispatch => {
    const groups = Math.ceil(record.count / GROUP);
    const across = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
    return {
      pipeline: kernel,
      record: [
        record.count,
        record.offset,
        record.extraOffset ?? 0,
        H,
        record.inner ?? 0,
        record.rowLength ?? record.count,
        record.rowStride ?? record.count,
      ],
      bindings: [[1, source.buffer], [2, target]],
      groups: [across, Math.ceil(groups / across)],
    };
  };
  const dispatches = [
    dispatch(gateWeights, resident.inputWeights, {
      count: cell.inputWeights.length,
      offset: slot["i2h.weight"].offset,
      inner: I,
    }),
    dispatch(gateWeights, recurrent, {
      count: rowStride * textureRows,
      offset: slot["h2h.weight"].offset,
      inner: H,
      rowLength: paddedUnits * 4,
      rowStride,
    }),
    dispatch(gateBias, resident.gateBias, {
      count: cell.gateBias.length,
      offset: slot["i2h.bias"].offset,
      extraOffset: slot["h2h.bias"].offset,
    }),
  ];
  if (cell.attentionWeights !== null && cell.attentionBias !== null) {
    dispatches.push(
      dispatch(attentionWeights, resident.attentionWeights, {
        count: cell.attentionWeights.length,
        offset: slot["i2a.weight"].offset,
        inner: I,
      }),
      dispatch(laneVector, resident.attentionBias, {
        count: cell.attentionBias.length,
        offset: slot["i2a.bias"].offset,
      }),
    );
  }
  const records: RecordBuffer = { buffer: null };
  const encoder = device.createCommandEncoder();
  encodeDispatches(device, encoder, records, dispatches);
  encoder.copyBufferToTexture(
    { buffer: recurrent, bytesPerRow: rowStride * 4 },
    { texture: resident.recurrentWeights },
    [paddedUnits, textureRows],
  );
  device.queue.submit([encoder.finish()]);
  // Freed once the submitted work is done.
  recurrent.destroy();
  records.buffer?.destroy();
}
