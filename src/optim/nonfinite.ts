/**
 * Non-finite gradients: how they are found (without reading a device's gradients back), and the
 * error of a step refused or a clipping refused for them.
 *
 * @module
 */

import type { Parameter } from "../nn/parameter.ts";

/**
 * The error of a gradient that holds a NaN or an infinity: `step()` refused it, or `clipGradNorm`
 * could not clip it. Nothing was changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Parameter, SGD, tensor } from "../../mod.ts";
 * import { NonfiniteGradientError } from "./nonfinite.ts";
 * const p = new Parameter("w", tensor([1], [1]));
 * p.grad = tensor([NaN], [1]);
 * assert.throws(() => new SGD([p]).step(), NonfiniteGradientError);
 * ```
 */
export class NonfiniteGradientError extends Error {
  override name = "NonfiniteGradientError";
}

/**
 * What is not finite in `parameter`'s gradient, or `null`: a gradient held on a device by its
 * squared norm there (no read-back; a NaN or an infinity makes it non-finite), a host gradient
 * by its first non-finite element.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Parameter, tensor } from "../../mod.ts";
 * import { nonfiniteGrad } from "./nonfinite.ts";
 * const p = new Parameter("w", tensor([0, 0], [2]));
 * p.grad = tensor([1, Infinity], [2]);
 * assert.equal(nonfiniteGrad(p), "element 1 of 2 is Infinity");
 * ```
 */
export function nonfiniteGrad(parameter: Parameter): string | null {
  const held = parameter.heldGrad;
  if (held !== null) {
    const squares = held.squaredNorm();
    return Number.isFinite(squares) ? null : `its squared norm on the device is ${squares}`;
  }
  const data = parameter.grad?.data;
  if (data === undefined) return null;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) return `element ${i} of ${data.length} is ${data[i]}`;
  }
  return null;
}

/** A parameter whose gradient is not finite: its index, its name, and what is not finite. */
export interface NonfiniteFound {
  readonly index: number;
  readonly name: string;
  readonly problem: string;
}

/**
 * The first parameter (in order) whose gradient is not finite, with what is not, or `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Parameter, tensor } from "../../mod.ts";
 * import { firstNonfiniteGrad } from "./nonfinite.ts";
 * const [p, q] = [new Parameter("p", tensor([0], [1])), new Parameter("q", tensor([0], [1]))];
 * q.grad = tensor([NaN], [1]);
 * assert.deepEqual(firstNonfiniteGrad([p, q]), {
 *   index: 1,
 *   name: "q",
 *   problem: "element 0 of 1 is NaN",
 * });
 * ```
 */
export function firstNonfiniteGrad(params: readonly Parameter[]): NonfiniteFound | null {
  for (const [index, parameter] of params.entries()) {
    const problem = nonfiniteGrad(parameter);
    if (problem !== null) return { index, name: parameter.name, problem };
  }
  return null;
}

/**
 * The error of an optimizer's `step()` (of class `owner`) refused for the non-finite gradient
 * of `params[index]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Parameter, SGD, tensor } from "../../mod.ts";
 * const p = new Parameter("w", tensor([1], [1]));
 * p.grad = tensor([Infinity], [1]);
 * assert.throws(() => new SGD([p]).step(), /the gradient of params\[0\] \("w"\) is not finite/);
 * ```
 */
export function refusedStep(
  owner: string,
  { index, name, problem }: NonfiniteFound,
): NonfiniteGradientError {
  return new NonfiniteGradientError(
    `${owner}.step() refused a non-finite gradient: the gradient of params[${index}] ` +
      `("${name}") is not finite (${problem}); no weight and no ` +
      "optimizer state changed. NaN and infinities come from the inputs, the loss or a too " +
      "large learning rate: check those, clip with clipGradNorm, or pass " +
      '{ nonfinite: "skip" } to skip such steps as torch\'s GradScaler does',
  );
}
