/**
 * `StochasticArrayLSTM`: stochastic output pooling, as the reference runs it.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { ArrayLSTM } from "./array_lstm.ts";
import { registerBuiltin } from "./builtin.ts";
import { type LSTMOptions, setVariant } from "./lstm.ts";
import { readLanes } from "./step_ops.ts";

/**
 * An array LSTM whose hidden state reads out one lane per unit: the lane with the largest output
 * gate (the argmax of `softmax_k(o)`; the first lane wins a tie), `h = o_j·tanh(c_j)`. Despite the
 * name the reference samples nothing, and neither does this port. All lanes' cells still update.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { oneHot, StochasticArrayLSTM } from "../../mod.ts";
 * using model = new StochasticArrayLSTM(10, 32, 4, { backend: "js", seed: 42 });
 * const { output } = await model.forward(oneHot([[3, 1, 4, 1, 5]], 10));
 * assert.deepEqual(output.shape, [1, 5, 32]);
 * ```
 */
export class StochasticArrayLSTM extends ArrayLSTM {
  /**
   * Makes a stochastic array LSTM with weights drawn like PyTorch's `nn.Linear` from
   * `options.seed`.
   *
   * @param inputSize `I`, features per input step.
   * @param hiddenSize `H`, hidden units.
   * @param k Memory cells (lanes) per hidden unit.
   * @param options Backend and seed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { StochasticArrayLSTM } from "../../mod.ts";
   * const model = new StochasticArrayLSTM(10, 128, 4, { seed: 42 });
   * assert.deepEqual([model.inputSize, model.hiddenSize, model.k], [10, 128, 4]);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, k: number, options: LSTMOptions = {}) {
    super(inputSize, hiddenSize, k, options);
    setVariant(this, { kind: "stochastic", k: this.k, maxPooling: false });
  }

  /**
   * The hidden state from the selected lane of each unit.
   *
   * @param outputs Output gates, shape `(k, batch, hiddenSize)`.
   * @param states The new cell states, shape `(k, batch, hiddenSize)`.
   * @returns The hidden state, shape `(1, batch, hiddenSize)`.
   *
   * @example The lane with the larger output gate is read out
   * ```ts
   * import assert from "node:assert/strict";
   * import { StochasticArrayLSTM, tensor } from "../../mod.ts";
   * const outputs = tensor([0.2, 0.9], [2, 1, 1]); // (k, batch, hiddenSize): lane 1 wins
   * const states = tensor([1, -2], [2, 1, 1]);
   * const { data } = new StochasticArrayLSTM(1, 1, 2).updateHidden(outputs, states);
   * assert.ok(Math.abs(data[0] - 0.9 * Math.tanh(-2)) < 1e-6);
   * ```
   */
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    return readLanes(outputs, states, true);
  }
}
registerBuiltin(StochasticArrayLSTM);
