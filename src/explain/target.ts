/**
 * The class an explanation is about, per sequence: given, or the predicted one.
 *
 * @module
 */

import { describe } from "../errors.ts";

/**
 * The target class of each of `B` sequences: `target` (one class, or one per sequence), checked
 * against the `C` classes of `layer`, or the largest score of each row of `scores` `(B, C)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTargets } from "./target.ts";
 * assert.deepEqual(resolveTargets(undefined, new Float32Array([0, 1, 3, 2]), 2, 2, "head"), [1, 0]);
 * ```
 */
export function resolveTargets(
  target: number | readonly number[] | undefined,
  scores: Float32Array | Float64Array,
  B: number,
  C: number,
  layer: string,
): number[] {
  if (target === undefined) {
    return Array.from({ length: B }, (_, b) => {
      let best = 0;
      for (let c = 1; c < C; c++) if (scores[b * C + c] > scores[b * C + best]) best = c;
      return best;
    });
  }
  const one = typeof target === "number";
  if (!one && (!Array.isArray(target) || target.length !== B)) {
    throw new RangeError(
      `options.target must be a class or one class per sequence (${B}), got ${describe(target)}`,
    );
  }
  const list: number[] = one ? Array(B).fill(target) : [...target as readonly number[]];
  list.forEach((value, b) => {
    if (!Number.isInteger(value) || value < 0 || value >= C) {
      throw new RangeError(
        `options.target${one ? "" : `[${b}]`} must be a class in [0, ${C}) (${layer} has ${C} ` +
          `outputs), got ${describe(value)}`,
      );
    }
  });
  return list;
}
