/**
 * The step bookkeeping of `lrp` between the positions of a batch and the order each direction
 * reads them: a backward direction reads each sequence reversed within its own length, as
 * `Bidirectional` does with `lengths`; the steps past a length stay where they are.
 *
 * @module
 */

/**
 * The position a direction reads at step `t` of a sequence of `length` steps: `t` forward,
 * `length − 1 − t` backward (a padded step, `t ≥ length`, stays at `t`). Its own inverse.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPosition } from "./lrp_steps.ts";
 * assert.deepEqual([0, 1, 2, 3].map((t) => readPosition(t, 3, true)), [2, 1, 0, 3]);
 * assert.equal(readPosition(1, 3, false), 1);
 * ```
 */
export function readPosition(t: number, length: number, reversed: boolean): number {
  return reversed && t < length ? length - 1 - t : t;
}

/**
 * `(B, T, F)` with each sequence's first `lengths[b]` steps in reverse order (all `T`: the time
 * axis flipped); its own inverse.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reverseWithin } from "./lrp_steps.ts";
 * const x = new Float32Array([1, 2, 3, 4, 5, 6]); // (B = 2, T = 3, F = 1)
 * assert.deepEqual([...reverseWithin(x, 2, 3, 1, new Int32Array([3, 2]))], [3, 2, 1, 5, 4, 6]);
 * ```
 */
export function reverseWithin<A extends Float32Array | Float64Array>(
  data: A,
  B: number,
  T: number,
  F: number,
  lengths: Int32Array,
): A {
  const out = new (data.constructor as { new (n: number): A })(data.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const to = readPosition(t, lengths[b], true);
      out.set(data.subarray((b * T + t) * F, (b * T + t + 1) * F), (b * T + to) * F);
    }
  }
  return out;
}

/**
 * A level's output `(B, T, ΣH)`: every direction's hidden states `(B, T, H)` (in the order it
 * read the steps) at the positions it read them, the directions side by side.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { joinDirections } from "./lrp_steps.ts";
 * const forward = { hiddenSize: 1, hidden: new Float32Array([1, 2, 3]) };
 * const backward = { hiddenSize: 1, hidden: new Float32Array([30, 20, 10]) };
 * const out = joinDirections([forward, backward], [false, true], 1, 3, new Int32Array([3]));
 * assert.deepEqual([...out], [1, 10, 2, 20, 3, 30]);
 * ```
 */
export function joinDirections(
  directions: readonly {
    readonly hiddenSize: number;
    readonly hidden: Float32Array | Float64Array;
  }[],
  reversed: readonly boolean[],
  B: number,
  T: number,
  lengths: Int32Array,
): Float32Array {
  const width = directions.reduce((sum, direction) => sum + direction.hiddenSize, 0);
  const out = new Float32Array(B * T * width);
  let offset = 0;
  directions.forEach(({ hiddenSize: H, hidden }, d) => {
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const at = readPosition(t, lengths[b], reversed[d]);
        out.set(
          hidden.subarray((b * T + t) * H, (b * T + t + 1) * H),
          (b * T + at) * width + offset,
        );
      }
    }
    offset += H;
  });
  return out;
}
