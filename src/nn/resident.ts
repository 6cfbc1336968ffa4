/**
 * `ResidentGroup`: a layer's parameters whose values live in a compiled runner (wasm memory), so
 * that an optimizer updates them there in one fused step instead of in TypeScript.
 *
 * @module
 */

import type { OptimizerUpdate, ResidentOptimizerState, ResidentWeights } from "../contract/mod.ts";
import type { Parameter } from "./parameter.ts";
import { type ReleasingRunner, RunnerGroup } from "./runner_group.ts";

/**
 * The parameters of one recurrent layer (in `parameterSizes` order) bound to the runner that
 * holds their weights. A step updates the weights there and marks each parameter's value as
 * changed in place: `p.value` reads it back on first access (wasm memory reads synchronously).
 * When the runner is freed, the values are read back and the optimizer that owns the state takes
 * it back.
 *
 * @example A layer binds its parameters after a training forward on wasm
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, tensor } from "../../mod.ts";
 * const lstm = new LSTM(1, 2, { backend: "wasm", seed: 1 });
 * lstm.train();
 * await lstm.forward(tensor([1, 2], [1, 2, 1]));
 * const group = lstm.parameters()[0].resident;
 * assert.ok(group !== null && group.usable);
 * assert.equal(group.parameters.length, 4);
 * lstm.dispose();
 * ```
 */
export class ResidentGroup extends RunnerGroup {
  readonly #weights: ResidentWeights;
  /** The flat parameters read back since the last step, shared by the parameters' reads. */
  #flat: Float32Array | null = null;

  /**
   * Binds `parameters` to `weights` and sets their `resident` to this group.
   *
   * @param parameters The layer's parameters, in the runner's flat order.
   * @param weights The runner's resident weights.
   * @param current Whether the layer still runs on this runner (no parameter replaced since).
   * @param stepped Called after each step (the layer notes that its runner is up to date).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident!;
   * assert.deepEqual(group.parameters.map(({ name }) => name), ["i2h.weight", "i2h.bias", "h2h.weight", "h2h.bias"]);
   * lstm.dispose();
   * ```
   */
  constructor(
    parameters: readonly Parameter[],
    weights: ResidentWeights & ReleasingRunner,
    current: () => boolean,
    stepped: () => void,
  ) {
    super(parameters, weights, current, stepped, () => {
      for (const parameter of parameters) parameter.value; // read back what is still here
      this.#flat = null;
    });
    this.#weights = weights;
  }

  /**
   * One update from the parameters' gradients (in order), where the weights live.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import { ResidentGroup } from "./resident.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident as ResidentGroup;
   * const [weight] = group.parameters;
   * const before = weight.value.data[0];
   * const sgd = { kind: "sgd", lr: 1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 } as const;
   * group.step(sgd, group.sizes.map((size) => new Float32Array(size).fill(1)));
   * assert.equal(weight.version, 1);
   * assert.ok(Math.abs(weight.value.data[0] - (before - 1)) < 1e-6); // read back on access
   * lstm.dispose();
   * ```
   */
  step(update: OptimizerUpdate, grads: readonly Float32Array[]): void {
    this.#weights.step(update, this.flatten(grads));
    this.#flat = null;
    this.markStepped((index) => {
      const from = this.offsets[index];
      return (this.#flat ??= this.#weights.parameters()).slice(from, from + this.sizes[index]);
    });
  }

  /**
   * A copy of the optimizer state, flat.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { ResidentGroup } from "./resident.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident as ResidentGroup;
   * assert.equal(group.readState().steps, 0);
   * lstm.dispose();
   * ```
   */
  readState(): ResidentOptimizerState {
    return this.#weights.readState();
  }

  /**
   * Replaces the optimizer state, flat.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { ResidentGroup } from "./resident.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident as ResidentGroup;
   * const { slots } = group.readState();
   * group.writeState({ steps: 3, slots });
   * assert.equal(group.readState().steps, 3);
   * lstm.dispose();
   * ```
   */
  writeState(state: ResidentOptimizerState): void {
    this.#weights.writeState(state);
  }
}
