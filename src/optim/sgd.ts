/**
 * `SGD`: stochastic gradient descent with momentum, dampening, Nesterov and weight decay, with
 * PyTorch's update rule.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Parameter } from "../nn/parameter.ts";
import type { OptimizerUpdate } from "../contract/mod.ts";
import { checkOptionNames, nonfiniteOption, numberOption } from "./options.ts";
import { Optimizer } from "./optimizer.ts";
import type { ParameterState, ResidentParameterState } from "./state.ts";

/** Options of {@linkcode SGD}: PyTorch's, in camelCase, with its defaults. */
export interface SGDOptions {
  /** Learning rate (default `1e-3`). */
  lr?: number;
  /** Momentum factor (default `0`). */
  momentum?: number;
  /** Dampening of the momentum (default `0`). */
  dampening?: number;
  /** Nesterov momentum (default `false`; needs `momentum > 0` and `dampening = 0`). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient (default `0`). */
  weightDecay?: number;
  /** A step with a NaN or infinite gradient: refused with an error (default) or skipped. */
  nonfinite?: "error" | "skip";
}

/**
 * Stochastic gradient descent, as `torch.optim.SGD`: `d = g + weightDecay·p`; with momentum
 * `buf = momentum·buf + (1 − dampening)·d` (`buf = d` on the first step), `d = buf` (or
 * `d + momentum·buf` with Nesterov); `p −= lr·d`.
 *
 * @example One step by hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { Parameter, SGD, tensor } from "../../mod.ts";
 * const p = new Parameter("w", tensor([1], [1]));
 * const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
 * p.grad = tensor([2], [1]);
 * opt.step();
 * assert.ok(Math.abs(p.value.data[0] - 0.8) < 1e-7);
 * ```
 */
export class SGD extends Optimizer {
  /**
   * Makes an SGD optimizer over `params`.
   *
   * @param params The parameters to update.
   * @param options Learning rate, momentum, dampening, nesterov, weightDecay.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * assert.equal(new SGD([p]).lr, 1e-3);
   * assert.throws(() => new SGD([p], { nesterov: true }), RangeError); // needs momentum
   * ```
   */
  constructor(params: readonly Parameter[], options: SGDOptions = {}) {
    checkOptionNames("SGD", options, [
      "lr",
      "momentum",
      "dampening",
      "nesterov",
      "weightDecay",
      "nonfinite",
    ]);
    const record = options as Record<string, unknown>;
    const checked = {
      lr: numberOption(record, "lr", 1e-3),
      momentum: numberOption(record, "momentum", 0),
      dampening: numberOption(record, "dampening", 0),
      nesterov: options.nesterov ?? false,
      weightDecay: numberOption(record, "weightDecay", 0),
    };
    if (typeof checked.nesterov !== "boolean") {
      throw new TypeError(`options.nesterov must be a boolean, got ${describe(checked.nesterov)}`);
    }
    if (checked.nesterov && (checked.momentum <= 0 || checked.dampening !== 0)) {
      throw new RangeError(
        `options.nesterov needs momentum > 0 and dampening = 0, got momentum ${checked.momentum}, dampening ${checked.dampening}`,
      );
    }
    super(params, checked, nonfiniteOption(options));
  }

  /**
   * SGD's fused update, for weights that live in a backend.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const opt = new SGD([new Parameter("w", tensor([1], [1]))], { lr: 0.5 });
   * assert.equal(opt.lr, 0.5);
   * ```
   *
   * @ignore
   */
  protected override residentUpdate(): OptimizerUpdate {
    return {
      kind: "sgd",
      lr: this.lr,
      momentum: this.option<number>("momentum"),
      dampening: this.option<number>("dampening"),
      nesterov: this.option<boolean>("nesterov"),
      weightDecay: this.option<number>("weightDecay"),
    };
  }

  /**
   * The momentum buffer as the backend's first state vector.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p], { momentum: 0.9 });
   * p.grad = tensor([1], [1]);
   * opt.step();
   * assert.deepEqual(Object.keys(opt.stateDict().state[0]!), ["momentumBuffer"]);
   * ```
   *
   * @ignore
   */
  protected override toResident(state: ParameterState | null): ResidentParameterState {
    if (state === null) return { steps: 0, slots: [] };
    return { steps: 1, slots: [(state.momentumBuffer as Float32Array | undefined) ?? null] };
  }

  /**
   * The momentum buffer back from the backend's first state vector.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p]);
   * p.grad = tensor([1], [1]);
   * opt.step();
   * assert.deepEqual(opt.stateDict().state[0], {}); // no momentum, no buffer
   * ```
   *
   * @ignore
   */
  protected override fromResident(
    steps: number,
    slots: readonly Float32Array[],
  ): ParameterState | null {
    if (steps === 0) return null;
    return this.option<number>("momentum") === 0 ? {} : { momentumBuffer: slots[0] };
  }

  /**
   * One SGD step of one parameter.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p], { lr: 0.1, weightDecay: 1 });
   * p.grad = tensor([1], [1]);
   * opt.step(); // d = g + weightDecay·p = 2
   * assert.ok(Math.abs(p.value.data[0] - 0.8) < 1e-7);
   * ```
   */
  protected update(
    value: Float32Array,
    grad: Float32Array,
    state: ParameterState | null,
  ): ParameterState {
    const lr = this.lr, momentum = this.option<number>("momentum");
    const dampening = this.option<number>("dampening"), nesterov = this.option<boolean>("nesterov");
    const weightDecay = this.option<number>("weightDecay");
    const buffer = momentum === 0
      ? null
      : (state?.momentumBuffer as Float32Array | undefined) ?? null;
    const next = momentum === 0 ? null : new Float32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      let d = grad[i] + weightDecay * value[i];
      if (next !== null) {
        next[i] = buffer === null ? d : momentum * buffer[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * next[i] : next[i];
      }
      value[i] -= lr * d;
    }
    return next === null ? {} : { momentumBuffer: next };
  }
}
