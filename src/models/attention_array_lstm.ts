/**
 * `AttentionArrayLSTM`: lane selection by soft attention computed from the input.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { ArrayLSTM } from "./array_lstm.ts";
import { registerBuiltin } from "./builtin.ts";
import { type LSTMOptions, type RecurrentState, setVariant } from "./lstm.ts";
import { attentionLaneWeights } from "./step_ops.ts";

/** Options of {@linkcode AttentionArrayLSTM}. */
export interface AttentionArrayLSTMOptions extends LSTMOptions {
  /** Broadcast each unit's largest lane weight to all its lanes (the reference's max pooling). */
  maxPooling?: boolean;
}

/**
 * An array LSTM whose lanes are weighted by soft attention: `s = softmax_k(σ(x·i2aᵀ + b))` per
 * unit scales the forget, input and output gates; the cell update is `c_j = (1 − f_j)·c_j + i_j·g_j`
 * (the reference inverts the forget gate here). With `maxPooling`, every lane gets `max_k s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AttentionArrayLSTM, randn } from "../../mod.ts";
 * using model = new AttentionArrayLSTM(6, 16, 4, { maxPooling: true, backend: "js", seed: 3 });
 * const { hidden } = await model.forward(randn([2, 7, 6], { seed: 1 }));
 * assert.deepEqual(hidden.shape, [1, 2, 16]);
 * ```
 */
export class AttentionArrayLSTM extends ArrayLSTM {
  /** Whether lane weights are max-pooled. */
  readonly maxPooling: boolean;

  /**
   * Makes an attention array LSTM with weights drawn like PyTorch's `nn.Linear` from
   * `options.seed`.
   *
   * @param inputSize `I`, features per input step.
   * @param hiddenSize `H`, hidden units.
   * @param k Memory cells (lanes) per hidden unit.
   * @param options `maxPooling`, backend and seed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AttentionArrayLSTM } from "../../mod.ts";
   * const model = new AttentionArrayLSTM(6, 16, 4, { maxPooling: true });
   * assert.equal(model.maxPooling, true);
   * assert.deepEqual(model.stateDict()["i2a.weight"].shape, [4 * 16, 6]);
   * assert.throws(() => new AttentionArrayLSTM(6, 16, 4, { maxPooling: "yes" as never }), TypeError);
   * ```
   */
  constructor(
    inputSize: number,
    hiddenSize: number,
    k: number,
    options: AttentionArrayLSTMOptions = {},
  ) {
    super(inputSize, hiddenSize, k, options);
    const maxPooling = options.maxPooling === undefined ? false : options.maxPooling;
    if (typeof maxPooling !== "boolean") {
      throw new TypeError(`options.maxPooling must be a boolean, got ${describe(maxPooling)}`);
    }
    this.maxPooling = maxPooling;
    setVariant(this, { kind: "attention", k: this.k, maxPooling });
  }

  /**
   * The array LSTM's parameters plus the attention layer `i2a` `(kH, I)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AttentionArrayLSTM } from "../../mod.ts";
   * const names = Object.keys(new AttentionArrayLSTM(6, 16, 4).stateDict());
   * assert.deepEqual(names.slice(4), ["i2a.weight", "i2a.bias"]);
   * ```
   */
  protected override parameterShapes(): Record<string, { shape: number[]; fanIn: number }> {
    const I = this.inputSize;
    return {
      ...super.parameterShapes(),
      "i2a.weight": { shape: [this.k * this.hiddenSize, I], fanIn: I },
      "i2a.bias": { shape: [this.k * this.hiddenSize], fanIn: I },
    };
  }

  /**
   * One step: attention lane weights from `x`, then every lane scaled by them.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AttentionArrayLSTM, randn, zeros } from "../../mod.ts";
   * const model = new AttentionArrayLSTM(3, 2, 4, { seed: 1 });
   * const { hidden, state } = model.forwardCell(randn([5, 3]), zeros([1, 5, 2]), zeros([4, 5, 2]));
   * assert.deepEqual([hidden.shape, state.shape], [[1, 5, 2], [4, 5, 2]]);
   * ```
   */
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    const laneWeights = attentionLaneWeights(
      x,
      this.parameterTensor("i2a.weight"),
      this.parameterTensor("i2a.bias"),
      this.k,
      this.hiddenSize,
      this.maxPooling,
    );
    return this.stepCells(
      x,
      hidden,
      state,
      laneWeights,
      (outputs, states) => this.readOut(outputs, states),
    );
  }
}
registerBuiltin(AttentionArrayLSTM);
