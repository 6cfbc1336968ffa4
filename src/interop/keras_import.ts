/**
 * `importKerasLSTM` and `importKerasDense`: Keras weights as this package's layers (`fromKeras`
 * in `keras_model.ts` builds a whole Sequential model with them).
 *
 * @module
 */

import type { BackendName, RecurrentActivation } from "../contract/mod.ts";
import { checkShape, describe } from "../errors.ts";
import { LSTM } from "../models/lstm.ts";
import { Linear } from "../nn/linear.ts";
import { checkTensor, type Tensor, zeros } from "../tensor.ts";
import { permuteGates, transpose } from "./gates.ts";

/** A Keras LSTM layer's weights: `kernel` `(I, 4H)`, `recurrentKernel` `(H, 4H)`, `bias` `(4H)`. */
export interface KerasLSTMTensors {
  /** `(I, 4H)`, quarters `i, f, c, o`. */
  readonly kernel: Tensor;
  /** `(H, 4H)`, quarters `i, f, c, o`. */
  readonly recurrentKernel: Tensor;
  /** `(4H)`; zeros when absent (`use_bias=False`). */
  readonly bias?: Tensor;
}

/** Options of {@linkcode importKerasLSTM}. */
export interface ImportKerasLSTMOptions {
  /** The layer's `recurrent_activation`: `"sigmoid"` (default) or a hard sigmoid. */
  recurrentActivation?: RecurrentActivation;
  /** Where the layer runs. */
  backend?: BackendName;
}

/**
 * A Keras `LSTM` layer as this package's {@linkcode LSTM}: the `i, f, c, o` quarters reordered
 * to `f, i, o, g` and the kernels transposed. Keras has one bias, which becomes `i2h.bias`
 * (`h2h.bias` is zero). The default activation is `"sigmoid"`; name `"hard_sigmoid"` for a
 * Keras 1/2 model that used it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importKerasLSTM, randn } from "../../mod.ts";
 * const lstm = importKerasLSTM(
 *   { kernel: randn([2, 12], { seed: 1 }), recurrentKernel: randn([3, 12], { seed: 2 }) },
 *   { recurrentActivation: "hard_sigmoid", backend: "js" },
 * );
 * assert.deepEqual([lstm.inputSize, lstm.hiddenSize], [2, 3]);
 * ```
 */
export function importKerasLSTM(
  weights: KerasLSTMTensors,
  options: ImportKerasLSTMOptions = {},
): LSTM {
  if (typeof weights !== "object" || weights === null) {
    throw new TypeError(
      `weights must be { kernel, recurrentKernel, bias? }, got ${describe(weights)}`,
    );
  }
  checkTensor("weights.kernel", weights.kernel);
  checkTensor("weights.recurrentKernel", weights.recurrentKernel);
  checkShape("weights.kernel", weights.kernel.shape, [-1, -1], "(inputSize, 4·units)");
  const [I, G] = weights.kernel.shape, H = G / 4;
  if (!Number.isInteger(H) || H < 1) {
    throw new RangeError(
      `weights.kernel must be (inputSize, 4·units), got ${describe(weights.kernel.shape)}: ` +
        `${G} is not a positive multiple of 4`,
    );
  }
  checkShape("weights.recurrentKernel", weights.recurrentKernel.shape, [H, G], "(units, 4·units)");
  const bias = weights.bias ?? zeros([G]);
  checkTensor("weights.bias", bias);
  checkShape("weights.bias", bias.shape, [G], "(4·units)");
  const lstm = new LSTM(I, H, options);
  lstm.loadStateDict({
    "i2h.weight": permuteGates(transpose(weights.kernel)),
    "i2h.bias": permuteGates(bias),
    "h2h.weight": permuteGates(transpose(weights.recurrentKernel)),
    "h2h.bias": zeros([G]),
  });
  return lstm;
}

/**
 * A Keras `Dense` layer (`kernel` `(I, U)`, `bias` `(U)`) as a {@linkcode Linear}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importKerasDense, tensor } from "../../mod.ts";
 * const dense = importKerasDense({ kernel: tensor([1, 2], [2, 1]), bias: tensor([0.5], [1]) });
 * assert.deepEqual([...(await dense.forward(tensor([1, 1], [1, 2]))).data], [3.5]);
 * ```
 */
export function importKerasDense(weights: { kernel: Tensor; bias?: Tensor }): Linear {
  if (typeof weights !== "object" || weights === null) {
    throw new TypeError(`weights must be { kernel, bias? }, got ${describe(weights)}`);
  }
  checkTensor("weights.kernel", weights.kernel);
  checkShape("weights.kernel", weights.kernel.shape, [-1, -1], "(inputSize, units)");
  const [I, U] = weights.kernel.shape;
  const linear = new Linear(I, U, { bias: weights.bias !== undefined });
  const record: Record<string, Tensor> = { weight: transpose(weights.kernel) };
  if (weights.bias !== undefined) {
    checkTensor("weights.bias", weights.bias);
    checkShape("weights.bias", weights.bias.shape, [U], "(units)");
    record.bias = weights.bias;
  }
  linear.loadStateDict(record);
  return linear;
}
