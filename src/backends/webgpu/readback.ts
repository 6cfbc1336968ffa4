/**
 * Reading a call's results back: one mapping of the staging buffer, which fails with
 * {@linkcode DeviceLost} rather than hanging when the device goes away meanwhile.
 *
 * @module
 */

import type { SequenceInput, SequenceOutput } from "../../contract.ts";
import type { CallBuffers } from "./call_buffers.ts";
import type { GpuContext } from "./device.ts";
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
 * Maps `buffer` for reading; fails with `DeviceLost` if the device goes away first.
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
  if (outcome !== null) throw new DeviceLost(`mapping the results failed: ${outcome}`);
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
  try {
    const results = new Float32Array(call.staging.getMappedRange());
    output.set(results.subarray(0, B * T * H));
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
  return { output, hidden, state };
}
