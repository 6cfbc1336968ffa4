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
 * `min(1, maxNorm / (norm + 1e-6))`. Parameters without a gradient are skipped. Gradients kept on
 * the webgpu device count with the norm computed there at the end of `backward()`, and are scaled
 * there (the optimizer's step applies the factor): nothing is read back.
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
  // A gradient held on the webgpu device contributes its squared norm, known since its backward,
  // and is scaled there: clipping reads nothing back.
  let squares = 0;
  for (const parameter of params) squares += parameter.gradSquaredNorm();
  const norm = Math.sqrt(squares);
  const factor = Math.min(1, maxNorm / (norm + 1e-6));
  if (factor < 1) {
    for (const parameter of params) parameter.scaleGrad(factor);
  }
  return norm;
}
