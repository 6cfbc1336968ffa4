/**
 * `GRU`: torch's gated recurrent unit, one layer, batch first.
 *
 * @module
 */

import type { TorchCellKind } from "../reference/gru_rnn.ts";
import { TorchRecurrent, type TorchRecurrentOptions } from "./torch_recurrent.ts";

/**
 * A gated recurrent unit with torch's equations and parameter names (`weight_ih` `(3H, I)`,
 * `weight_hh` `(3H, H)`, `bias_ih`, `bias_hh` `(3H)`, gate blocks `r, z, n`):
 * `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` likewise, `n = tanh(W_in x + b_in + r·(W_hn h +
 * b_hn))`, `h' = (1 − z)·n + z·h`. Runs in the kernels of its backend (js, wasm, WebGPU); trainable,
 * with the float64 backward of `src/reference/gru_rnn.ts` (no fused training kernel yet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GRU, randn } from "../../mod.ts";
 * const gru = new GRU(3, 4, { seed: 1 });
 * const { output, hidden } = await gru.forward(randn([2, 5, 3], { seed: 2 }));
 * assert.deepEqual([output.shape, hidden.shape], [[2, 5, 4], [1, 2, 4]]);
 * ```
 */
export class GRU extends TorchRecurrent {
  /**
   * Makes a GRU with weights drawn like torch's from `options.seed`.
   *
   * @param inputSize Features per input step.
   * @param hiddenSize Hidden units.
   * @param options Backend and seed.
   *
   * @example The same seed gives the same weights
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU } from "../../mod.ts";
   * const a = new GRU(2, 3, { seed: 7 }), b = new GRU(2, 3, { seed: 7 });
   * assert.deepEqual(a.stateDict().weight_hh.data, b.stateDict().weight_hh.data);
   * assert.deepEqual(a.stateDict().bias_ih.shape, [9]);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, options: TorchRecurrentOptions = {}) {
    super(inputSize, hiddenSize, options);
  }

  /** The cell's equations. */
  protected get kind(): TorchCellKind {
    return "gru";
  }
}
