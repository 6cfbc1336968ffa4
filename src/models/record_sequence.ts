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
} from "../contract.ts";
import { backward } from "../reference/backward.ts";
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

/**
 * Runs `input` on `runner` and returns `[output, hidden, state]` as tracked tensors.
 *
 * @param spec The cell `runner` was compiled from (its weights are not copied, so they must not
 *   change in place; parameters are replaced, never written into).
 */
export async function recordSequence(
  runner: SequenceRunner,
  spec: CellSpec,
  input: SequenceInput,
  sources: SequenceSources,
): Promise<TrackedTensor[]> {
  const step: TrainingStep = runner.runTraining ? await runner.runTraining(input) : {
    ...await runner.run(input),
    backward: (grads) => Promise.resolve(backward(spec, input, grads)),
  };
  const { batch: B, seqLen: T } = input;
  const { hiddenSize: H, variant: { k } } = spec;
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
      const [xEdge, hiddenEdge, stateEdge] = parents.slice(sources.parameters.length);
      const grads = await step.backward({
        output: output ?? new Float32Array(B * T * H),
        ...(hidden === null ? {} : { hidden }),
        ...(state === null ? {} : { state }),
        wanted: { x: xEdge !== null, hidden: hiddenEdge !== null },
      });
      // The step's arrays are fresh: only a float64 oracle's need converting, and a gradient
      // nobody reads (an input without history) is not copied at all.
      return [
        ...sources.parameters.map(({ name }) => toFloat32(grads.params[name])),
        xEdge === null ? null : toFloat32(grads.x),
        hiddenEdge === null ? null : toFloat32(grads.hidden),
        stateEdge === null ? null : toFloat32(grads.state),
      ];
    },
  );
}
