/**
 * The gate activations of the LSTM family: their names and the number the kernels take for each.
 *
 * @module
 */

/**
 * The activation of an LSTM's forget, input and output gates: `"sigmoid"` (torch, tf.keras 2),
 * `"hard_sigmoid"` (`clip(0.2x + 0.5, 0, 1)`, Keras 1/2) or `"hard_sigmoid_keras3"`
 * (`clip(x/6 + 0.5, 0, 1)`).
 */
export type RecurrentActivation = "sigmoid" | "hard_sigmoid" | "hard_sigmoid_keras3";

/** Every {@linkcode RecurrentActivation}. */
export const RECURRENT_ACTIVATIONS: readonly RecurrentActivation[] = [
  "sigmoid",
  "hard_sigmoid",
  "hard_sigmoid_keras3",
];

/**
 * The number the kernels take for a gate activation: the hard sigmoid's slope (`0.2` for
 * `"hard_sigmoid"`, `1/6` for `"hard_sigmoid_keras3"`), or 0 for the sigmoid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hardSigmoidSlope } from "./activation.ts";
 * assert.equal(hardSigmoidSlope("sigmoid"), 0);
 * assert.equal(hardSigmoidSlope("hard_sigmoid"), 0.2);
 * ```
 */
export function hardSigmoidSlope(activation: RecurrentActivation = "sigmoid"): number {
  if (activation === "sigmoid") return 0;
  return activation === "hard_sigmoid" ? 0.2 : 1 / 6;
}
