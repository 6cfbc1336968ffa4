/**
 * Encoding one call: per batch chunk, upload its input and initial state, encode the projection
 * and all time steps into one command buffer, copy the results into the staging buffer, submit.
 *
 * @module
 */

import type { SequenceInput } from "../../contract/mod.ts";
import type { CallBuffers } from "./call_buffers.ts";
import { packCells, packHidden, packInput, PROJECTION_ROWS, roundUp } from "./layout.ts";
import type { PackedCell } from "./packed_cell.ts";
import { UNIT_GROUPS } from "./plan.ts";
import type { Resident } from "./resident.ts";

/**
 * Submits all work of `input`; its results land in `call.staging` (see `readback.ts`).
 *
 * @example
 * ```ts ignore
 * import { submitCall } from "./dispatch.ts";
 * submitCall(resident, cell, call, input);
 * ```
 */
export function submitCall(
  resident: Resident,
  cell: PackedCell,
  call: CallBuffers,
  input: SequenceInput,
): void {
  const { batch: B, seqLen: T, x } = input;
  const { hiddenSize: H, inputSize: I, variant: { k } } = cell;
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
    let pass = encoder.beginComputePass();
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
      const attention = call.extras.attention;
      if (attention !== null) {
        // The projection reuses the lane weights buffer per time chunk: copy this chunk's out.
        pass.end();
        const stepFloats = padded * k * roundUp(H, 4);
        encoder.copyBufferToBuffer(
          call.laneWeights,
          0,
          call.staging,
          (attention[index] + span.start * stepFloats) * 4,
          span.length * stepFloats * 4,
        );
        pass = encoder.beginComputePass();
      }
    }
    pass.end();
    encoder.copyBufferToBuffer(call.output, 0, call.staging, start * T * H * 4, size * T * H * 4);
    if (call.extras.lanes !== null) {
      // The kernel wrote the chosen lanes right after this chunk's outputs.
      encoder.copyBufferToBuffer(
        call.output,
        size * T * H * 4,
        call.staging,
        (call.extras.lanes + start * T * H) * 4,
        size * T * H * 4,
      );
    }
    encoder.copyBufferToBuffer(
      call.cells,
      0,
      call.staging,
      call.cellOffsets[index] * 4,
      k * padded * roundUp(H, 4) * 4,
    );
    device.queue.submit([encoder.finish()]);
  }
}
