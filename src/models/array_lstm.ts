/**
 * `ArrayLSTM`: an LSTM whose every hidden unit has `k` memory cells (lanes), after Rocki's
 * *Recurrent Memory Array Structures*.
 *
 * @module
 */

import { checkShape, checkSize } from "../errors.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { registerBuiltin } from "./builtin.ts";
import { checkHookHistory } from "./hook_path.ts";
import { LSTM, type LSTMOptions, type RecurrentState, setVariant } from "./lstm.ts";
import { readLanes } from "./step_ops.ts";

/**
 * An array LSTM: `k` lanes per unit, each with its own gates and cell
 * `c_j = f_j·c_j + i_j·g_j`, read out as `h = Σ_j o_j·tanh(c_j)` by {@linkcode ArrayLSTM.updateHidden}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArrayLSTM, oneHot } from "../../mod.ts";
 * using model = new ArrayLSTM(10, 16, 4, { backend: "js", seed: 42 });
 * const { output, state } = await model.forward(oneHot([[1, 2, 3]], 10));
 * assert.deepEqual([output.shape, state.shape], [[1, 3, 16], [4, 1, 16]]);
 * ```
 */
export class ArrayLSTM extends LSTM {
  /**
   * Makes an array LSTM with weights drawn like PyTorch's `nn.Linear` from `options.seed`.
   *
   * @param inputSize `I`, features per input step.
   * @param hiddenSize `H`, hidden units.
   * @param k Memory cells (lanes) per hidden unit.
   * @param options Backend and seed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM } from "../../mod.ts";
   * const model = new ArrayLSTM(10, 16, 4, { seed: 42 });
   * assert.equal(model.k, 4);
   * assert.deepEqual(model.stateDict()["i2h.weight"].shape, [4 * 4 * 16, 10]); // 4 gates per lane
   * assert.throws(() => new ArrayLSTM(10, 16, 0), RangeError);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, k: number, options: LSTMOptions = {}) {
    super(inputSize, hiddenSize, options);
    setVariant(this, { kind: "array", k: checkSize("k", k), maxPooling: false });
  }

  /**
   * One step of every lane (the reference's `forward_cell`); the hidden state comes from
   * {@linkcode ArrayLSTM.updateHidden}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM, randn, zeros } from "../../mod.ts";
   * const model = new ArrayLSTM(3, 2, 4, { seed: 1 });
   * const { hidden, state } = model.forwardCell(randn([5, 3]), zeros([1, 5, 2]), zeros([4, 5, 2]));
   * assert.deepEqual([hidden.shape, state.shape], [[1, 5, 2], [4, 5, 2]]);
   * ```
   */
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return this.stepCells(
      x,
      hidden,
      state,
      null,
      (outputs, states) => this.readOut(outputs, states),
    );
  }

  /**
   * {@linkcode ArrayLSTM.updateHidden} with its result checked, so that a wrong override is
   * reported under its own name.
   *
   * @example A wrong override is named in the error
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM, randn, type Tensor, zeros } from "../../mod.ts";
   * class Wrong extends ArrayLSTM {
   *   override updateHidden(_outputs: Tensor, states: Tensor): Tensor {
   *     return states; // (k, B, H), not (1, B, H)
   *   }
   * }
   * const model = new Wrong(3, 2, 4);
   * assert.throws(
   *   () => model.forwardCell(randn([5, 3]), zeros([1, 5, 2]), zeros([4, 5, 2])),
   *   /updateHidden\(outputs, states\)/,
   * );
   * ```
   */
  protected readOut(outputs: Tensor, states: Tensor): Tensor {
    const hidden = this.updateHidden(outputs, states);
    const name = "updateHidden(outputs, states)";
    checkTensor(name, hidden);
    checkShape(name, hidden.shape, [1, states.shape[1], this.hiddenSize], "(1, batch, hiddenSize)");
    checkHookHistory(`${this.constructor.name}.${name}`, hidden, [outputs, states], false);
    return hidden;
  }

  /**
   * The hidden state from the lanes (the reference's `update_hidden`): `Σ_j o_j·tanh(c_j)`.
   * Override it to read the lanes out differently.
   *
   * @param outputs Output gates, shape `(k, batch, hiddenSize)`.
   * @param states The new cell states, shape `(k, batch, hiddenSize)`.
   * @returns The hidden state, shape `(1, batch, hiddenSize)`.
   *
   * @example Two lanes: `h = o₀·tanh(c₀) + o₁·tanh(c₁)`
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM, tensor } from "../../mod.ts";
   * const outputs = tensor([0.5, 1], [2, 1, 1]); // (k, batch, hiddenSize)
   * const states = tensor([1, -2], [2, 1, 1]);
   * const { shape, data } = new ArrayLSTM(1, 1, 2).updateHidden(outputs, states);
   * assert.deepEqual(shape, [1, 1, 1]);
   * assert.ok(Math.abs(data[0] - (0.5 * Math.tanh(1) + Math.tanh(-2))) < 1e-6);
   * ```
   */
  updateHidden(outputs: Tensor, states: Tensor): Tensor {
    return readLanes(outputs, states, false);
  }
}
registerBuiltin(ArrayLSTM);
