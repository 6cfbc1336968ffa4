/**
 * `RNN`: torch's Elman recurrent layer (`tanh` or `relu`), one layer, batch first.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { TorchCellKind } from "../reference/gru_rnn.ts";
import { TorchRecurrent, type TorchRecurrentOptions } from "./torch_recurrent.ts";

/** Options of {@linkcode RNN}. */
export interface RNNOptions extends TorchRecurrentOptions {
  /** `"tanh"` (default) or `"relu"`, as torch's `nonlinearity`. */
  nonlinearity?: "tanh" | "relu";
}

/**
 * An Elman RNN with torch's equations and parameter names (`weight_ih` `(H, I)`, `weight_hh`
 * `(H, H)`, `bias_ih`, `bias_hh` `(H)`): `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (or `relu`).
 * Runs in the kernels of its backend (js, wasm, WebGPU); trainable, with the float64 backward of
 * `src/reference/gru_rnn.ts` (no fused training kernel yet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randn, RNN } from "../../mod.ts";
 * const rnn = new RNN(3, 4, { nonlinearity: "relu", seed: 1 });
 * const { output } = await rnn.forward(randn([2, 5, 3], { seed: 2 }));
 * assert.ok(output.data.every((v) => v >= 0));
 * ```
 */
export class RNN extends TorchRecurrent {
  /** The nonlinearity. */
  readonly nonlinearity: "tanh" | "relu";

  /**
   * Makes an RNN with weights drawn like torch's from `options.seed`.
   *
   * @param inputSize Features per input step.
   * @param hiddenSize Hidden units.
   * @param options Backend, seed and nonlinearity.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RNN } from "../../mod.ts";
   * assert.equal(new RNN(2, 3).nonlinearity, "tanh");
   * assert.deepEqual(new RNN(2, 3).stateDict().weight_ih.shape, [3, 2]);
   * assert.throws(() => new RNN(2, 3, { nonlinearity: "gelu" as "relu" }), /nonlinearity/);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    super(inputSize, hiddenSize, options);
    const nonlinearity = options.nonlinearity ?? "tanh";
    if (nonlinearity !== "tanh" && nonlinearity !== "relu") {
      throw new TypeError(
        `options.nonlinearity must be "tanh" or "relu", got ${describe(nonlinearity)}`,
      );
    }
    this.nonlinearity = nonlinearity;
  }

  /** The cell's equations. */
  protected get kind(): TorchCellKind {
    return this.nonlinearity === "tanh" ? "rnn_tanh" : "rnn_relu";
  }
}
