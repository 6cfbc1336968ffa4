/**
 * `Dropout`: PyTorch's `nn.Dropout`, zeroing features at random while training.
 *
 * @module
 */

import { checkOptions, describe } from "../errors.ts";
import { Random } from "../random.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { resolveSeed } from "./init.ts";
import { Module } from "./module.ts";
import { record, type TrackedTensor } from "./tape.ts";

/** Options of {@linkcode Dropout}. */
export interface DropoutOptions {
  /** Seed of the masks; each training `forward` draws the next one from it. */
  seed?: number;
}

/**
 * Zeroes each element with probability `p` in training mode (`train()`) and scales the others by
 * `1 / (1 − p)`, so the expected value is unchanged ("inverted" dropout, as `nn.Dropout`). In
 * evaluation mode (the default) it passes its input through. The gradient flows through the kept
 * elements, scaled the same way.
 *
 * @example Active in train() only
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dropout, tensor } from "../../mod.ts";
 * const dropout = new Dropout(0.5, { seed: 1 });
 * const x = tensor([1, 1, 1, 1, 1, 1], [2, 3]);
 * assert.deepEqual([...(await dropout.forward(x)).data], [...x.data]); // eval: identity
 * const y = await dropout.train().forward(x);
 * assert.ok(y.data.every((v) => v === 0 || v === 2));
 * ```
 */
export class Dropout extends Module {
  /** The probability of zeroing an element. */
  readonly p: number;
  /** The seed the masks are drawn from. */
  readonly seed: number;
  readonly #random: Random;

  /**
   * Makes a dropout layer.
   *
   * @param p The probability of zeroing an element, in `[0, 1]` (default 0.5, as torch).
   * @param options The seed of the masks.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Dropout } from "../../mod.ts";
   * assert.equal(new Dropout(0.1).p, 0.1);
   * assert.throws(() => new Dropout(1.5), /p must be a probability in \[0, 1\], got 1.5/);
   * ```
   */
  constructor(p = 0.5, options: DropoutOptions = {}) {
    super();
    if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
      throw new RangeError(`p must be a probability in [0, 1], got ${describe(p)}`);
    }
    checkOptions(options);
    this.p = p;
    this.seed = resolveSeed(options.seed);
    this.#random = new Random(this.seed);
  }

  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Dropout } from "../../mod.ts";
   * assert.deepEqual(new Dropout(0.2).stateDict(), {});
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * Applies a fresh mask in training mode; the input unchanged in evaluation mode.
   *
   * @param x Any tensor.
   * @returns The same shape.
   *
   * @example The kept elements are scaled by 1 / (1 − p)
   * ```ts
   * import assert from "node:assert/strict";
   * import { Dropout, tensor } from "../../mod.ts";
   * const y = await new Dropout(0.75, { seed: 2 }).train().forward(tensor([2, 2, 2, 2], [4]));
   * assert.ok(y.data.every((v) => v === 0 || v === 8));
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return Promise.resolve().then(() => this.#forward(x));
  }

  #forward(x: Tensor): TrackedTensor {
    checkTensor("x", x);
    if (!this.training || this.p === 0) {
      return record("Dropout", [{ shape: x.shape, data: x.data }], [x], ([grad]) => [grad])[0];
    }
    // p = 1 keeps nothing: every scale is 0 (torch returns zeros too).
    const scale = this.p === 1 ? 0 : 1 / (1 - this.p);
    const mask = new Float32Array(x.data.length);
    for (let i = 0; i < mask.length; i++) mask[i] = this.#random.uniform() < this.p ? 0 : scale;
    const out = x.data.map((value, i) => value * mask[i]);
    return record("Dropout", [{ shape: [...x.shape], data: out }], [x], ([grad]) => [
      grad!.map((g, i) => g * mask[i]),
    ])[0];
  }
}
