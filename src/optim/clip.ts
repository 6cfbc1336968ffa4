/**
 * `clipGradNorm`: PyTorch's `clip_grad_norm_`.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Parameter } from "../nn/parameter.ts";

/**
 * Scales the gradients of `params` so that their total L2 norm (over all of them together) is at
 * most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`: the factor is
 * `min(1, maxNorm / (norm + 1e-6))`. Parameters without a gradient are skipped.
 *
 * @param params The parameters whose `grad` to clip.
 * @param maxNorm The largest total norm allowed.
 * @returns The total norm before clipping.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clipGradNorm, Parameter, tensor } from "../../mod.ts";
 * const p = new Parameter("w", tensor([0, 0], [2]));
 * p.grad = tensor([3, 4], [2]);
 * assert.equal(clipGradNorm([p], 1), 5);
 * assert.ok(Math.abs(p.grad.data[0] - 0.6) < 1e-6);
 * ```
 */
export function clipGradNorm(params: readonly Parameter[], maxNorm: number): number {
  if (!Array.isArray(params)) {
    throw new TypeError(`params must be an array of Parameter, got ${describe(params)}`);
  }
  if (typeof maxNorm !== "number" || !(maxNorm >= 0)) {
    throw new RangeError(`maxNorm must be a number ≥ 0, got ${describe(maxNorm)}`);
  }
  let squares = 0;
  for (const { grad } of params) {
    if (grad === null) continue;
    for (let i = 0; i < grad.data.length; i++) squares += grad.data[i] * grad.data[i];
  }
  const norm = Math.sqrt(squares);
  const factor = Math.min(1, maxNorm / (norm + 1e-6));
  if (factor < 1) {
    for (const parameter of params) {
      const grad = parameter.grad;
      if (grad === null) continue;
      parameter.grad = {
        shape: grad.shape,
        data: grad.data.map((value: number) => value * factor),
      };
    }
  }
  return norm;
}
