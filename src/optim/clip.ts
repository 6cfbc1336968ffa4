/**
 * `clipGradNorm`: PyTorch's `clip_grad_norm_`.
 *
 * @module
 */

import { checkOptions, describe } from "../errors.ts";
import { firstNonfiniteGrad, NonfiniteGradientError } from "./nonfinite.ts";
import type { Parameter } from "../nn/parameter.ts";

/**
 * Scales the gradients of `params` so that their total L2 norm (over all of them together) is at
 * most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`: the factor is
 * `min(1, maxNorm / (norm + 1e-6))`. Parameters without a gradient are skipped. Gradients kept on
 * the webgpu device count with the norm computed there at the end of `backward()`, and are scaled
 * there (the optimizer's step applies the factor): nothing is read back.
 *
 * A non-finite total norm is handled as torch does. With `errorIfNonfinite` it throws, naming
 * the first parameter whose gradient holds a NaN or an infinity, and changes nothing. Without it
 * (the default) the norm is returned and the gradients are scaled by the factor anyway: an
 * infinite norm gives the factor 0 (finite entries become 0, infinite ones 0 · ∞ = NaN), a NaN
 * norm the factor NaN (every entry becomes NaN). The optimizer's step then refuses those
 * gradients, or skips the step (its `nonfinite` option).
 *
 * @param params The parameters whose `grad` to clip.
 * @param maxNorm The largest total norm allowed.
 * @param options `errorIfNonfinite`.
 * @returns The total norm before clipping.
 * @throws {Error} With `errorIfNonfinite`, when the total norm is not finite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clipGradNorm, Parameter, tensor } from "../../mod.ts";
 * const p = new Parameter("w", tensor([0, 0], [2]));
 * p.grad = tensor([3, 4], [2]);
 * assert.equal(clipGradNorm([p], 1), 5);
 * assert.ok(Math.abs(p.grad.data[0] - 0.6) < 1e-6);
 * p.grad = tensor([1, NaN], [2]);
 * assert.throws(() => clipGradNorm([p], 1, { errorIfNonfinite: true }), /params\[0\] \("w"\)/);
 * ```
 */
export function clipGradNorm(
  params: readonly Parameter[],
  maxNorm: number,
  options: {
    /**
     * Throw when the total norm is NaN or infinite, naming the first parameter whose gradient
     * is not finite, before scaling anything (torch's `error_if_nonfinite`; default `false`).
     */
    errorIfNonfinite?: boolean;
  } = {},
): number {
  if (!Array.isArray(params)) {
    throw new TypeError(`params must be an array of Parameter, got ${describe(params)}`);
  }
  if (typeof maxNorm !== "number" || !(maxNorm >= 0)) {
    throw new RangeError(`maxNorm must be a number ≥ 0, got ${describe(maxNorm)}`);
  }
  const { errorIfNonfinite = false } = checkOptions(options);
  if (typeof errorIfNonfinite !== "boolean") {
    throw new TypeError(
      `options.errorIfNonfinite must be a boolean, got ${describe(errorIfNonfinite)}`,
    );
  }
  // A gradient held on the webgpu device contributes its squared norm, known since its backward,
  // and is scaled there: clipping reads nothing back.
  let squares = 0;
  for (const parameter of params) squares += parameter.gradSquaredNorm();
  const norm = Math.sqrt(squares);
  if (errorIfNonfinite && !Number.isFinite(norm)) {
    const found = firstNonfiniteGrad(params);
    const culprit = found === null
      ? "no single gradient is, their squares overflow together"
      : `the gradient of params[${found.index}] ("${found.name}") is not (${found.problem})`;
    throw new NonfiniteGradientError(
      `clipGradNorm: the total norm of the gradients is ${norm}, so it cannot be clipped: ` +
        `${culprit}; nothing was scaled. Check the inputs, the loss and the learning rate, or ` +
        "pass errorIfNonfinite: false to scale by the non-finite norm anyway, as torch does",
    );
  }
  // As torch: min(1, NaN) is NaN, and a NaN factor scales too (every gradient becomes NaN).
  const factor = Math.min(1, maxNorm / (norm + 1e-6));
  if (!(factor >= 1)) {
    for (const parameter of params) parameter.scaleGrad(factor);
  }
  return norm;
}
