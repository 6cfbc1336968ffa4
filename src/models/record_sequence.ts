/**
 * Records a recurrent forward on the backward tape through the runner's `trainingStep`: the
 * backend's fused backward, or the contract's float64 reference backward for a backend without
 * one (any variant: the LSTM family, GRU and RNN). Every recurrent layer records through it.
 *
 * @module
 */

import {
  type SequenceInput,
  type SequenceRunner,
  toFloat32,
  type TrainingStep,
} from "../contract/mod.ts";
import { DeviceGroup } from "../nn/device_group.ts";
import type { Parameter } from "../nn/parameter.ts";
import { type Edge, edgeOf, parameterEdge, record, type TrackedTensor } from "../nn/tape.ts";
import type { Tensor } from "../tensor.ts";

/**
 * What a recorded forward depends on: parameters (training mode only), input and state (`(0, B,
 * H)` for a cell without cell states).
 */
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
 * A zero output gradient of `length` values, one array reused from call to call: a loss that reads
 * only the final state (the documentation's classifier) leaves the output's gradient zero, 5 MB
 * a step at its sizes, and the backends only read it.
 */
function zeroOutputGradient(length: number): Float32Array {
  if (zeroOutput.length !== length) zeroOutput = new Float32Array(length);
  return zeroOutput;
}
let zeroOutput = new Float32Array(0);

/** Runs `input` on `runner` and returns `[output, hidden, state]` as tracked tensors. */
export async function recordSequence(
  runner: SequenceRunner,
  input: SequenceInput,
  sources: SequenceSources,
): Promise<TrackedTensor[]> {
  const step: TrainingStep = await runner.trainingStep(input);
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
          output: output ?? zeroOutputGradient(B * T * H),
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
