/**
 * The recorded ops of one step on the hooks' path: the lane update of `stepCells`, the attention
 * lane weights, and the built-in readouts. Their forward is the cell equations of
 * `src/reference/cell.ts`, their backward the per-step pieces of the float64 oracle
 * `src/reference/backward.ts`. Each records when an input carries history (in training mode the
 * parameters do), so a hook built from them and the functional ops trains.
 *
 * @module
 */

import type { RecurrentActivation, VariantKind } from "../contract/mod.ts";
import {
  attentionWeights,
  backwardReadout,
  linear,
  selectLanes,
  sumLanes,
  updateLanes,
} from "../reference/cell.ts";
import { backwardAttention, backwardLanes, backwardLinear } from "../reference/backward.ts";
import { record, type TrackedTensor } from "../nn/tape.ts";
import type { Tensor } from "../tensor.ts";

/** The recurrent weights of a cell, `(4kH, I)`, `(4kH)`, `(4kH, H)`, `(4kH)`. */
export interface CellWeights {
  readonly i2hWeight: Tensor;
  readonly i2hBias: Tensor;
  readonly h2hWeight: Tensor;
  readonly h2hBias: Tensor;
}

/** The cell a step runs: its kind (attention inverts the forget gate), lanes and activation. */
export interface StepCell {
  readonly kind: VariantKind;
  readonly k: number;
  readonly activation: RecurrentActivation;
}

/** The lanes after one step: output gates and new cells, both `(k, B, H)`. */
export interface LaneOutputs {
  readonly outputGates: TrackedTensor;
  readonly states: TrackedTensor;
}

const f32 = (values: Float64Array): Float32Array => Float32Array.from(values);

/**
 * One step of every lane: pre-activations `z = x·i2hᵀ + h·h2hᵀ` (with both biases), then
 * `updateLanes`, scaled by the attention `laneWeights (B, k, H)` when given. Recorded with the
 * weights, `x (B, I)`, `hidden (1, B, H)`, `state (k, B, H)` and `laneWeights` as parents.
 *
 * @example One LSTM step with zero weights: every gate is one half
 * ```ts
 * import assert from "node:assert/strict";
 * import { laneStep } from "./step_ops.ts";
 * import { tensor, zeros } from "../tensor.ts";
 * const weights = {
 *   i2hWeight: zeros([4, 1]), i2hBias: zeros([4]), h2hWeight: zeros([4, 1]), h2hBias: zeros([4]),
 * };
 * const cell = { kind: "lstm", k: 1, activation: "sigmoid" } as const;
 * const { outputGates, states } = laneStep(
 *   cell, weights, zeros([1, 1]), zeros([1, 1, 1]), tensor([2], [1, 1, 1]), null,
 * );
 * assert.deepEqual([outputGates.data[0], states.data[0]], [0.5, 1]);
 * ```
 */
export function laneStep(
  cell: StepCell,
  weights: CellWeights,
  x: Tensor,
  hidden: Tensor,
  state: Tensor,
  laneWeights: Tensor | null,
): LaneOutputs {
  const { kind, k, activation } = cell;
  const [batch, I] = x.shape;
  const H = hidden.shape[2], gates = 4 * k * H;
  const z = new Float32Array(batch * gates);
  const recurrent = new Float32Array(batch * gates);
  linear(x.data, batch, I, weights.i2hWeight.data, gates, weights.i2hBias.data, z);
  linear(hidden.data, batch, H, weights.h2hWeight.data, gates, weights.h2hBias.data, recurrent);
  for (let i = 0; i < z.length; i++) z[i] += recurrent[i];
  const next = new Float32Array(k * batch * H);
  const outputGates = new Float32Array(k * batch * H);
  const scales = laneWeights === null ? null : laneWeights.data;
  updateLanes(kind, z, batch, k, H, scales, state.data, next, outputGates, activation);
  const lanes = [k, batch, H];
  const [gatesOut, states] = record(
    "stepCells",
    [{ shape: lanes, data: outputGates }, { shape: lanes, data: next }],
    [
      weights.i2hWeight,
      weights.i2hBias,
      weights.h2hWeight,
      weights.h2hBias,
      x,
      hidden,
      state,
      laneWeights,
    ],
    ([dOutputGates, dNext]) => {
      const size = k * batch * H;
      const dState = dNext === null ? new Float64Array(size) : Float64Array.from(dNext);
      const dz = new Float64Array(batch * gates);
      const dScales = scales === null ? null : new Float64Array(size);
      backwardLanes(
        { kind, activation, batch, k, hiddenSize: H },
        { z, previous: state.data, weights: scales },
        dOutputGates ?? new Float32Array(size),
        dState,
        dz,
        dScales,
      );
      const dI2hWeight = new Float64Array(gates * I), dBias = new Float64Array(gates);
      const dH2hWeight = new Float64Array(gates * H);
      const dx = new Float64Array(batch * I), dHidden = new Float64Array(batch * H);
      const rows = (width: number) => ({ offset: 0, stride: width });
      backwardLinear(
        dz,
        batch,
        gates,
        x.data,
        rows(I),
        I,
        weights.i2hWeight.data,
        dI2hWeight,
        dBias,
        dx,
      );
      backwardLinear(
        dz,
        batch,
        gates,
        hidden.data,
        rows(H),
        H,
        weights.h2hWeight.data,
        dH2hWeight,
        null,
        dHidden,
      );
      const dBias32 = f32(dBias);
      return [
        f32(dI2hWeight),
        dBias32,
        f32(dH2hWeight),
        dBias32,
        f32(dx),
        f32(dHidden),
        f32(dState),
        dScales === null ? null : f32(dScales),
      ];
    },
  );
  return { outputGates: gatesOut, states };
}

/**
 * The attention lane weights `softmax_k(σ(x·i2aᵀ + b))` of one step, `(B, k, H)`, with
 * `maxPooling` each unit's largest weight on all its lanes (its gradient to the first maximal
 * lane, as torch's max). Recorded with `i2aWeight (kH, I)`, `i2aBias (kH)` and `x (B, I)`.
 *
 * @example Zero weights: every lane gets `1 / k`
 * ```ts
 * import assert from "node:assert/strict";
 * import { attentionLaneWeights } from "./step_ops.ts";
 * import { zeros } from "../tensor.ts";
 * const weights = attentionLaneWeights(zeros([1, 3]), zeros([4, 3]), zeros([4]), 2, 2, false);
 * assert.deepEqual([...weights.data], [0.5, 0.5, 0.5, 0.5]);
 * ```
 */
export function attentionLaneWeights(
  x: Tensor,
  i2aWeight: Tensor,
  i2aBias: Tensor,
  k: number,
  hiddenSize: number,
  maxPooling: boolean,
): TrackedTensor {
  const [batch, I] = x.shape;
  const H = hiddenSize, kH = k * H;
  const preActivation = new Float32Array(batch * kH);
  linear(x.data, batch, I, i2aWeight.data, kH, i2aBias.data, preActivation);
  const weights = new Float32Array(batch * kH);
  attentionWeights(preActivation, batch, k, H, maxPooling, weights);
  return record(
    "attention lane weights",
    [{ shape: [batch, k, H], data: weights }],
    [i2aWeight, i2aBias, x],
    ([dWeights]) => {
      const dI2aWeight = new Float64Array(kH * I), dI2aBias = new Float64Array(kH);
      const dx = new Float64Array(batch * I);
      const sizes = { B: batch, T: 1, I, H, k, t: 0, maxPooling };
      backwardAttention(
        preActivation,
        Float64Array.from(dWeights!),
        sizes,
        x.data,
        i2aWeight.data,
        dI2aWeight,
        dI2aBias,
        dx,
      );
      return [f32(dI2aWeight), f32(dI2aBias), f32(dx)];
    },
  )[0];
}

/**
 * The built-in readouts of `outputs` and `states` `(k, B, H)` to the hidden state `(1, B, H)`:
 * `Σ_j o_j·tanh(c_j)`, or with `selected` the lane with the largest output gate (the first on a
 * tie, as torch's argmax), `o_j·tanh(c_j)`. Recorded with both as parents.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLanes } from "./step_ops.ts";
 * import { tensor } from "../tensor.ts";
 * const outputs = tensor([0.2, 0.9], [2, 1, 1]), states = tensor([1, -2], [2, 1, 1]);
 * const sum = 0.2 * Math.tanh(1) + 0.9 * Math.tanh(-2);
 * assert.ok(Math.abs(readLanes(outputs, states, false).data[0] - sum) < 1e-6);
 * assert.ok(Math.abs(readLanes(outputs, states, true).data[0] - 0.9 * Math.tanh(-2)) < 1e-6);
 * ```
 */
export function readLanes(outputs: Tensor, states: Tensor, selected: boolean): TrackedTensor {
  const [k, batch, H] = states.shape;
  const hidden = new Float32Array(batch * H);
  (selected ? selectLanes : sumLanes)(outputs.data, states.data, k, batch, H, hidden);
  return record(
    selected ? "updateHidden (selected lane)" : "updateHidden (sum over lanes)",
    [{ shape: [1, batch, H], data: hidden }],
    [outputs, states],
    ([dHidden]) => {
      const size = k * batch * H;
      const dOutputs = new Float64Array(size), dStates = new Float64Array(size);
      backwardReadout(
        selected,
        outputs.data,
        states.data,
        dHidden!,
        k,
        batch * H,
        dOutputs,
        dStates,
      );
      return [f32(dOutputs), f32(dStates)];
    },
  )[0];
}
