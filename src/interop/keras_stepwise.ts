/**
 * Keras LSTM and GRU layers the fused layers do not compute, as the step-by-step
 * {@linkcode StepwiseLSTM} and {@linkcode StepwiseGRU} (`fromKeras` builds them).
 *
 * @module
 */

import { type Tensor, zeros } from "../tensor.ts";
import { transpose } from "./gates.ts";
import type { KerasGRUWeights, KerasLSTMWeights } from "./keras_layers.ts";
import type { StepActivation } from "./stepwise.ts";
import { StepwiseGRU } from "./stepwise_gru.ts";
import { StepwiseLSTM } from "./stepwise_lstm.ts";

/** The activations of a Keras recurrent layer. */
export interface KerasStepActivations {
  /** Keras' `activation`. */
  readonly activation: StepActivation;
  /** Keras' `recurrent_activation`. */
  readonly recurrentActivation: StepActivation;
}

/** `value`'s row blocks `[from, to)` of `rows` rows each, as a new tensor. */
function rows(value: Tensor, from: number, to: number): Tensor {
  const width = value.data.length / value.shape[0];
  return {
    shape: [to - from, ...value.shape.slice(1)],
    data: value.data.slice(from * width, to * width),
  };
}

/**
 * A Keras LSTM (shapes checked by `loadKeras`) as a {@linkcode StepwiseLSTM}: its gate blocks
 * `i, f, c, o` are the layer's own order, the kernels transposed, the one bias the input's.
 *
 * @example Keras' `LSTM(2, activation="relu")` on 3 features
 * ```ts
 * import assert from "node:assert/strict";
 * import { randn } from "../../mod.ts";
 * import { kerasStepwiseLSTM } from "./keras_stepwise.ts";
 * const lstm = kerasStepwiseLSTM(
 *   {
 *     kind: "lstm", name: "lstm", units: 2, kernel: randn([3, 8]), recurrentKernel: randn([2, 8]),
 *     weights: {},
 *   },
 *   { activation: "relu", recurrentActivation: "sigmoid" },
 * );
 * assert.deepEqual([lstm.inputSize, lstm.hiddenSize], [3, 2]);
 * ```
 */
export function kerasStepwiseLSTM(
  layer: KerasLSTMWeights,
  activations: KerasStepActivations,
): StepwiseLSTM {
  const [I, G] = layer.kernel.shape;
  const lstm = new StepwiseLSTM(I, layer.units, activations);
  lstm.loadStateDict({
    "input.weight": transpose(layer.kernel),
    "input.bias": layer.bias ?? zeros([G]),
    "recurrent.weight": transpose(layer.recurrentKernel),
  });
  return lstm;
}

/**
 * A Keras GRU (shapes checked by `loadKeras`) as a {@linkcode StepwiseGRU}: blocks `z, r, h`,
 * kernels transposed; `reset_after=True`'s bias `(2, 3H)` split into the input's and the
 * recurrent products', `reset_after=False`'s `(3H)` the input's.
 *
 * @example Keras' `GRU(2, reset_after=False)` on 3 features
 * ```ts
 * import assert from "node:assert/strict";
 * import { randn } from "../../mod.ts";
 * import { kerasStepwiseGRU } from "./keras_stepwise.ts";
 * const gru = kerasStepwiseGRU(
 *   {
 *     kind: "gru", name: "gru", units: 2, kernel: randn([3, 6]), recurrentKernel: randn([2, 6]),
 *     weights: {},
 *   },
 *   { activation: "tanh", recurrentActivation: "sigmoid" },
 *   false,
 * );
 * assert.equal(gru.resetAfter, false);
 * ```
 */
export function kerasStepwiseGRU(
  layer: KerasGRUWeights,
  activations: KerasStepActivations,
  resetAfter: boolean,
): StepwiseGRU {
  const [I, G] = layer.kernel.shape, H = layer.units;
  const gru = new StepwiseGRU(I, H, { ...activations, resetAfter });
  const recurrent = transpose(layer.recurrentKernel);
  const bias = layer.bias ?? zeros(resetAfter ? [2, G] : [G]);
  const record: Record<string, Tensor> = {
    "input.weight": transpose(layer.kernel),
    "input.bias": resetAfter ? { shape: [G], data: bias.data.slice(0, G) } : bias,
    "gates.weight": rows(recurrent, 0, 2 * H),
    "candidate.weight": rows(recurrent, 2 * H, G),
  };
  if (resetAfter) {
    record["gates.bias"] = { shape: [2 * H], data: bias.data.slice(G, G + 2 * H) };
    record["candidate.bias"] = { shape: [H], data: bias.data.slice(G + 2 * H, 2 * G) };
  }
  gru.loadStateDict(record);
  return gru;
}
