/**
 * Reading a call's results back: one mapping of the staging buffer, which fails with
 * {@linkcode DeviceLost} rather than hanging when the device goes away meanwhile.
 *
 * @module
 */

import type { SequenceInput, SequenceOutput } from "../../contract/mod.ts";
import type { CallBuffers } from "./call_buffers.ts";
import { type GpuContext, lossOf } from "./device.ts";
import { unpackCells } from "./layout.ts";
import type { PackedCell } from "./packed_cell.ts";

/**
 * The device went away during a call; the runner retries the call once on a new device.
 *
 * @example
 * ```ts
 * import { DeviceLost } from "./readback.ts";
 * const error = new DeviceLost("destroyed");
 * ```
 */
export class DeviceLost extends Error {}

/**
 * Maps `buffer` for reading; fails with `DeviceLost` if the device goes away first, or if the
 * mapping fails (a lost device fails its calls before it reports the loss: the error then carries
 * the loss's reason when it comes within a grace period, not the mapping's "validation error").
 *
 * @example
 * ```ts ignore
 * import { mapForReading } from "./readback.ts";
 * await mapForReading(context, staging);
 * ```
 */
export async function mapForReading(context: GpuContext, buffer: GPUBuffer): Promise<void> {
  const mapped = buffer.mapAsync(GPUMapMode.READ).then(() => null, (error: unknown) => error);
  const outcome = await Promise.race([
    mapped,
    context.lost.then((reason) => new DeviceLost(reason)),
  ]);
  if (outcome instanceof DeviceLost) throw outcome;
  if (outcome !== null) {
    throw new DeviceLost(await lossOf(context) ?? `mapping the results failed: ${outcome}`);
  }
}

/**
 * Waits for the work submitted for `input` and returns its results in the contract's layouts.
 *
 * @throws {DeviceLost} If the device is lost before the results can be read.
 *
 * @example
 * ```ts ignore
 * import { readResults } from "./readback.ts";
 * const { output, hidden, state } = await readResults(context, cell, call, input);
 * ```
 */
export async function readResults(
  context: GpuContext,
  cell: PackedCell,
  call: CallBuffers,
  input: SequenceInput,
): Promise<SequenceOutput> {
  const { batch: B, seqLen: T } = input;
  const { hiddenSize: H, variant: { k } } = cell;
  await mapForReading(context, call.staging);
  const output = new Float32Array(B * T * H);
  const state = new Float32Array(k * B * H);
  const { extras } = call;
  const lanes = extras.lanes === null ? null : new Int32Array(B * T * H);
  const attention = extras.attention === null ? null : new Float32Array(B * T * H * k);
  try {
    const results = new Float32Array(call.staging.getMappedRange());
    output.set(results.subarray(0, B * T * H));
    if (lanes !== null) {
      const staged = results.subarray(extras.lanes!, extras.lanes! + B * T * H);
      for (let i = 0; i < lanes.length; i++) lanes[i] = staged[i];
    }
    if (attention !== null) {
      for (const [index, chunk] of call.plan.batchChunks.entries()) {
        unpackAttention(results.subarray(extras.attention![index]), chunk, T, H, k, attention);
      }
    }
    for (const [index, chunk] of call.plan.batchChunks.entries()) {
      const packed = results.subarray(call.cellOffsets[index]);
      unpackCells(packed, k, B, H, chunk.start, chunk.size, chunk.padded, state);
    }
  } finally {
    call.staging.unmap();
  }
  // The final hidden state is the last step of the output.
  const hidden = new Float32Array(B * H);
  for (let b = 0; b < B; b++) {
    hidden.set(output.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
  }
  return {
    output,
    hidden,
    state,
    ...(attention === null ? {} : { attention }),
    ...(lanes === null ? {} : { lanes }),
  };
}

/**
 * One batch chunk's attention weights, `[time][padded row][lane][paddedUnits]`, into their rows of
 * `out (B, T, H, k)`.
 */
function unpackAttention(
  packed: Float32Array,
  chunk: { readonly start: number; readonly size: number; readonly padded: number },
  T: number,
  H: number,
  k: number,
  out: Float32Array,
): void {
  const paddedUnits = Math.ceil(H / 4) * 4;
  for (let t = 0; t < T; t++) {
    for (let row = 0; row < chunk.size; row++) {
      const from = (t * chunk.padded + row) * k * paddedUnits;
      const to = ((chunk.start + row) * T + t) * H * k;
      for (let u = 0; u < H; u++) {
        for (let lane = 0; lane < k; lane++) {
          out[to + u * k + lane] = packed[from + lane * paddedUnits + u];
        }
      }
    }
  }
}
