/**
 * `relevancePerToken`: relevance over the input features summed into one value a time step (a
 * token), the number a reader wants from an explanation of a token model.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { checkTensor, type Tensor } from "../tensor.ts";

/**
 * Sums relevance `(T, I)` or `(B, T, I)` over its features: one value a step (a token) of
 * sequence `sequence`. For a model that starts with an `Embedding`, this is each token's
 * relevance (LRP conserves it: the sum over tokens is the explained score, up to the rule's
 * absorption).
 *
 * @param relevance `(T, I)` or `(B, T, I)`, e.g. `lrp(...).relevance` or `saliency(...).saliency`.
 * @param sequence Which sequence of a `(B, T, I)` relevance (default 0).
 * @returns `T` sums.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { relevancePerToken, tensor } from "../../mod.ts";
 * const relevance = tensor([0.5, -0.25, 1, 1], [2, 2]); // 2 tokens, 2 embedding features
 * assert.deepEqual(relevancePerToken(relevance), [0.25, 2]);
 * ```
 */
export function relevancePerToken(relevance: Tensor, sequence = 0): number[] {
  const { values, T, I } = sequenceOf(relevance, sequence, "sequence");
  return Array.from(sumFeatures(values, T, I));
}

/**
 * One sequence of a relevance `(T, I)` or `(B, T, I)`: its `(T, I)` values (a view) and sizes,
 * after checking the rank and `sequence` (named `argument` in the error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor } from "../tensor.ts";
 * import { sequenceOf } from "./tokens.ts";
 * const { values, T, I } = sequenceOf(tensor([1, 2, 3, 4], [2, 1, 2]), 1, "sequence");
 * assert.deepEqual([[...values], T, I], [[3, 4], 1, 2]);
 * ```
 */
export function sequenceOf(
  relevance: Tensor,
  sequence: number,
  argument: string,
): { values: Float32Array; T: number; I: number } {
  checkTensor("relevance", relevance);
  const rank = relevance.shape.length;
  if (rank !== 2 && rank !== 3) {
    throw new RangeError(
      `relevance must be (seqLen, features) or (batch, seqLen, features), got shape ${
        describe(relevance.shape)
      }`,
    );
  }
  const [B, T, I] = rank === 3 ? relevance.shape : [1, ...relevance.shape];
  if (!Number.isInteger(sequence) || sequence < 0 || sequence >= B) {
    throw new RangeError(`${argument} must be an integer in [0, ${B}), got ${describe(sequence)}`);
  }
  return { values: relevance.data.subarray(sequence * T * I, (sequence + 1) * T * I), T, I };
}

/**
 * Sums `values` `(steps, features)` (flat) over its features in float64: one sum a step,
 * one a step. What {@linkcode relevancePerToken} and `lrp`'s per-step relevance both compute.
 *
 * @param values `(steps, features)` values, flat.
 * @param steps How many steps.
 * @param features How many values one step holds.
 * @returns `steps` sums.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sumFeatures } from "./tokens.ts";
 * assert.deepEqual(sumFeatures(new Float32Array([0.5, -0.25, 1, 1]), 2, 2), new Float64Array([0.25, 2]));
 * ```
 */
export function sumFeatures(
  values: ArrayLike<number>,
  steps: number,
  features: number,
): Float64Array {
  const out = new Float64Array(steps);
  for (let n = 0; n < out.length; n++) {
    let total = 0;
    for (let f = 0; f < features; f++) total += values[n * features + f];
    out[n] = total;
  }
  return out;
}
