/**
 * Parameter initialisation shared by the layers: the seed option and PyTorch's `nn.Linear`
 * uniform draw from the seeded generator.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Random } from "../random.ts";
import { sizeOf, type Tensor } from "../tensor.ts";

/**
 * `options.seed` checked, or a fresh random seed when it is `undefined`.
 *
 * @example
 * ```ts
 * import { resolveSeed } from "./init.ts";
 * const seed = resolveSeed(42); // 42
 * ```
 */
export function resolveSeed(seed: unknown): number {
  const resolved = seed === undefined ? crypto.getRandomValues(new Uint32Array(1))[0] : seed;
  if (!Number.isSafeInteger(resolved)) {
    throw new RangeError(`options.seed must be a safe integer, got ${describe(resolved)}`);
  }
  return resolved as number;
}

/**
 * A tensor drawn from U(−1/√fanIn, 1/√fanIn), PyTorch's `nn.Linear` init of weight and bias.
 *
 * @example
 * ```ts
 * import { linearInit } from "./init.ts";
 * import { Random } from "../random.ts";
 * const weight = linearInit(new Random(1), [4, 3], 3);
 * ```
 */
export function linearInit(random: Random, shape: readonly number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = (2 * random.uniform() - 1) * bound;
  return { shape: [...shape], data };
}
