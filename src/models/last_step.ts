/**
 * `LastStep`: the output of a sequence's last step, `(B, T, F)` -> `(B, F)`, for a classifier
 * head after a recurrent layer.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { Module } from "../nn/module.ts";
import { record, type TrackedTensor } from "../nn/tape.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { checkLengths } from "./packed.ts";

/**
 * Picks step `T − 1` of every sequence, or step `lengths[b] − 1` of sequence `b` when the batch
 * is padded: torch's `output[:, -1]` and, with lengths, the gather of each sequence's last valid
 * step. The gradient goes to the picked steps only. No parameters.
 *
 * @example A sequence classifier's features
 * ```ts
 * import assert from "node:assert/strict";
 * import { LastStep, tensor } from "../../mod.ts";
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3, 1]); // (B = 2, T = 3, F = 1)
 * assert.deepEqual([...(await new LastStep().forward(x)).data], [3, 6]);
 * assert.deepEqual([...(await new LastStep().forward(x, [2, 1])).data], [2, 4]);
 * ```
 */
export class LastStep extends Module {
  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LastStep } from "../../mod.ts";
   * assert.deepEqual(new LastStep().stateDict(), {});
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * The last step of each sequence.
   *
   * @param x Steps `(batch, seqLen, features)`.
   * @param lengths Steps of each sequence, integers in `[1, seqLen]`; all `seqLen` when omitted.
   * @returns `(batch, features)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LastStep, zeros } from "../../mod.ts";
   * assert.deepEqual((await new LastStep().forward(zeros([4, 7, 5]))).shape, [4, 5]);
   * await assert.rejects(() => new LastStep().forward(zeros([4, 5])), /x must be \(batch/);
   * ```
   */
  forward(x: Tensor, lengths?: readonly number[] | Int32Array): Promise<TrackedTensor> {
    return Promise.resolve().then(() => this.#forward(x, lengths));
  }

  #forward(x: Tensor, lengths?: readonly number[] | Int32Array): TrackedTensor {
    checkTensor("x", x);
    if (x.shape.length !== 3) {
      throw new RangeError(
        `x must be (batch, seqLen, features), got shape ${describe(x.shape)}; LastStep reads ` +
          "the per-step output of a recurrent layer",
      );
    }
    const [B, T, F] = x.shape;
    const steps = lengths === undefined ? new Int32Array(B).fill(T) : checkLengths(lengths, B, T);
    const out = new Float32Array(B * F);
    for (let b = 0; b < B; b++) {
      const from = (b * T + steps[b] - 1) * F;
      out.set(x.data.subarray(from, from + F), b * F);
    }
    return record("LastStep", [{ shape: [B, F], data: out }], [x], ([grad]) => {
      const dx = new Float32Array(x.data.length);
      for (let b = 0; b < B; b++) {
        dx.set(grad!.subarray(b * F, (b + 1) * F), (b * T + steps[b] - 1) * F);
      }
      return [dx];
    })[0];
  }
}
