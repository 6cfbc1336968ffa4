/**
 * Records a recurrent forward on the backward tape. The backward is the runner's own when it
 * offers one (`runTraining`, fused kernels), else the float64 oracle of `src/reference/backward.ts`, which
 * recomputes the forward trace from the same weights.
 *
 * @module
 */

import {
  type CellSpec,
  type SequenceInput,
  type SequenceRunner,
  toFloat32,
  type TrainingStep,
} from "../contract/mod.ts";
import { backward } from "../reference/backward.ts";
import { DeviceGroup } from "../nn/device_group.ts";
import type { Parameter } from "../nn/parameter.ts";
import { type Edge, edgeOf, parameterEdge, record, type TrackedTensor } from "../nn/tape.ts";
import type { Tensor } from "../tensor.ts";

/** What a recorded forward depends on: parameters (training mode only), input and state. */
export interface SequenceSources {
  /** The parameters whose gradients to fill; empty in evaluation mode. */
  readonly parameters: readonly Parameter[];
  readonly x: Tensor;
  readonly hidden: Tensor;
  readonly state: Tensor;
}

/** The device group that holds exactly `parameters` (a webgpu layer in training), or `null`. */
function deviceGroupOf(parameters: readonly Parameter[]): DeviceGroup | null {
  const group = parameters[0]?.resident;
  if (!(group instanceof DeviceGroup)) return null;
  const same = group.parameters.length === parameters.length &&
    parameters.every((parameter) => parameter.resident === group);
  return same ? group : null;
}

/**
 * Runs `input` on `runner` and returns `[output, hidden, state]` as tracked tensors.
 *
 * @param spec The cell `runner` was compiled from, read only for the oracle's backward (its
 *   weights are not copied, so they must not change in place; parameters are replaced, never
 *   written into).
 */
export async function recordSequence(
  runner: SequenceRunner,
  spec: () => CellSpec,
  input: SequenceInput,
  sources: SequenceSources,
): Promise<TrackedTensor[]> {
  const oracle = runner.runTraining ? null : spec();
  const step: TrainingStep = oracle === null ? await runner.runTraining!(input) : {
    ...await runner.run(input),
    backward: (grads) => Promise.resolve(backward(oracle, input, grads)),
  };
  const { batch: B, seqLen: T } = input;
  const [k, , H] = sources.state.shape;
  const parents: (Edge | null)[] = [
    ...sources.parameters.map(parameterEdge),
    edgeOf(sources.x),
    edgeOf(sources.hidden),
    edgeOf(sources.state),
  ];
  return record(
    "recurrent forward",
    [
      { shape: [B, T, H], data: step.output },
      { shape: [1, B, H], data: step.hidden },
      { shape: [k, B, H], data: step.state },
    ],
    parents,
    async ([output, hidden, state]) => {
      // Input gradients are wanted only where history goes on; on a device that holds the
      // weights, the parameter gradients stay there (the group learns their squared norms).
      const [xEdge, hiddenEdge, stateEdge] = parents.slice(sources.parameters.length);
      const group = deviceGroupOf(sources.parameters);
      const keep = group?.backwardMode() ?? null;
      const grads = await step.backward(
        {
          output: output ?? new Float32Array(B * T * H),
          ...(hidden === null ? {} : { hidden }),
          ...(state === null ? {} : { state }),
          wanted: { x: xEdge !== null, hidden: hiddenEdge !== null, state: stateEdge !== null },
        },
        keep === null ? {} : { keepParameterGradients: keep },
      );
      const held = keep !== null && grads.squaredNorms !== undefined;
      if (held) group!.heldAfterBackward(grads.squaredNorms!);
      // The step's arrays are fresh: only a float64 oracle's need converting, and a gradient
      // nobody reads (an input without history) is not copied at all.
      const inputGradient = (edge: Edge | null, grad: Float32Array | Float64Array) =>
        edge === null ? null : toFloat32(grad);
      return [
        ...sources.parameters.map(({ name }) => held ? null : toFloat32(grads.params[name])),
        inputGradient(xEdge, grads.x),
        inputGradient(hiddenEdge, grads.hidden),
        inputGradient(stateEdge, grads.state),
      ];
    },
  );
}
