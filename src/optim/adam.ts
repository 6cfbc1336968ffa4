/**
 * `Adam` and `AdamW` with PyTorch's update rules (bias correction, AMSGrad, L2 or decoupled
 * weight decay).
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Parameter } from "../nn/parameter.ts";
import type { OptimizerUpdate } from "../contract/mod.ts";
import { checkOptionNames, nonfiniteOption, numberOption } from "./options.ts";
import { Optimizer } from "./optimizer.ts";
import type { ParameterState, ResidentParameterState } from "./state.ts";

/** Options of {@linkcode Adam} and {@linkcode AdamW}: PyTorch's, in camelCase. */
export interface AdamOptions {
  /** Learning rate (default `1e-3`). */
  lr?: number;
  /** Decay rates of the moment estimates (default `[0.9, 0.999]`). */
  betas?: readonly [number, number];
  /** Added to the denominator (default `1e-8`). */
  eps?: number;
  /** Weight decay: an L2 term for `Adam` (default `0`), decoupled for `AdamW` (default `1e-2`). */
  weightDecay?: number;
  /** Use the maximum of the second moments (default `false`). */
  amsgrad?: boolean;
  /** A step with a NaN or infinite gradient: refused with an error (default) or skipped. */
  nonfinite?: "error" | "skip";
}

function checkAdamOptions(
  owner: string,
  options: AdamOptions,
  weightDecay: number,
): Record<string, number | boolean | number[]> {
  checkOptionNames(owner, options, ["lr", "betas", "eps", "weightDecay", "amsgrad", "nonfinite"]);
  const record = options as Record<string, unknown>;
  const betas = options.betas ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2) {
    throw new TypeError(`options.betas must be [beta1, beta2], got ${describe(betas)}`);
  }
  betas.forEach((beta, i) =>
    numberOption({ [`betas[${i}]`]: beta }, `betas[${i}]`, 0, { below: 1 })
  );
  const amsgrad = options.amsgrad ?? false;
  if (typeof amsgrad !== "boolean") {
    throw new TypeError(`options.amsgrad must be a boolean, got ${describe(amsgrad)}`);
  }
  return {
    lr: numberOption(record, "lr", 1e-3),
    betas: [...betas],
    eps: numberOption(record, "eps", 1e-8),
    weightDecay: numberOption(record, "weightDecay", weightDecay),
    amsgrad,
  };
}

/**
 * Adam, as `torch.optim.Adam`: `g += weightDecay·p` (L2); `m = β1·m + (1 − β1)·g`,
 * `v = β2·v + (1 − β2)·g²`; `p −= lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)` (with AMSGrad,
 * `v` is the running maximum).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Parameter, tensor } from "../../mod.ts";
 * const p = new Parameter("w", tensor([1], [1]));
 * const opt = new Adam([p], { lr: 0.1 });
 * p.grad = tensor([5], [1]);
 * opt.step(); // the first step moves by lr, whatever the gradient's size
 * assert.ok(Math.abs(p.value.data[0] - 0.9) < 1e-6);
 * ```
 */
export class Adam extends Optimizer {
  /**
   * Makes an Adam (or AdamW) optimizer over `params`.
   *
   * @param params The parameters to update.
   * @param options lr, betas, eps, weightDecay, amsgrad.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, AdamW, Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * assert.deepEqual(new Adam([p]).stateDict().options.weightDecay, 0);
   * assert.deepEqual(new AdamW([p]).stateDict().options.weightDecay, 1e-2);
   * assert.throws(() => new Adam([p], { beta: 0.9 } as never), TypeError); // unknown option
   * ```
   */
  constructor(params: readonly Parameter[], options: AdamOptions = {}) {
    super(
      params,
      checkAdamOptions(new.target.name, options, new.target === AdamW ? 1e-2 : 0),
      nonfiniteOption(options),
    );
  }

  /** Whether the weight decay is decoupled from the gradient (`AdamW`). */
  protected get decoupled(): boolean {
    return false;
  }

  /**
   * Adam's fused update (with bias correction from the step count kept beside the weights).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AdamW, Parameter, tensor } from "../../mod.ts";
   * const opt = new AdamW([new Parameter("w", tensor([1], [1]))], { amsgrad: true });
   * assert.equal(opt.stateDict().options.amsgrad, true);
   * ```
   *
   * @ignore
   */
  protected override residentUpdate(): OptimizerUpdate {
    const [beta1, beta2] = this.option<number[]>("betas");
    return {
      kind: "adam",
      lr: this.lr,
      beta1,
      beta2,
      eps: this.option<number>("eps"),
      weightDecay: this.option<number>("weightDecay"),
      amsgrad: this.option<boolean>("amsgrad"),
      decoupled: this.decoupled,
    };
  }

  /**
   * `step`, `expAvg`, `expAvgSq` and `maxExpAvgSq` in the backend's layout.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new Adam([p]);
   * p.grad = tensor([1], [1]);
   * opt.step();
   * assert.equal(opt.stateDict().state[0]!.step, 1);
   * ```
   *
   * @ignore
   */
  protected override toResident(state: ParameterState | null): ResidentParameterState {
    if (state === null) return { steps: 0, slots: [] };
    const vector = (name: string) => (state[name] as Float32Array | undefined) ?? null;
    return {
      steps: state.step as number,
      slots: [vector("expAvg"), vector("expAvgSq"), vector("maxExpAvgSq")],
    };
  }

  /**
   * The state back from the backend's layout (`maxExpAvgSq` with `amsgrad` only).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new Adam([p], { amsgrad: true });
   * p.grad = tensor([1], [1]);
   * opt.step();
   * assert.ok("maxExpAvgSq" in opt.stateDict().state[0]!);
   * ```
   *
   * @ignore
   */
  protected override fromResident(
    steps: number,
    [expAvg, expAvgSq, maxExpAvgSq]: readonly Float32Array[],
  ): ParameterState | null {
    if (steps === 0) return null;
    const state = { step: steps, expAvg, expAvgSq };
    return this.option<boolean>("amsgrad") ? { ...state, maxExpAvgSq } : state;
  }

  /**
   * One Adam step of one parameter.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AdamW, Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5 });
   * p.grad = tensor([0], [1]);
   * opt.step(); // a zero gradient: only the decoupled decay p·(1 − lr·weightDecay) acts
   * assert.ok(Math.abs(p.value.data[0] - 0.95) < 1e-7);
   * ```
   */
  protected update(
    value: Float32Array,
    grad: Float32Array,
    state: ParameterState | null,
  ): ParameterState {
    const lr = this.lr, [beta1, beta2] = this.option<number[]>("betas");
    const eps = this.option<number>("eps"), weightDecay = this.option<number>("weightDecay");
    const amsgrad = this.option<boolean>("amsgrad");
    const n = value.length;
    const step = ((state?.step as number | undefined) ?? 0) + 1;
    const expAvg = (state?.expAvg as Float32Array | undefined)?.slice() ?? new Float32Array(n);
    const expAvgSq = (state?.expAvgSq as Float32Array | undefined)?.slice() ??
      new Float32Array(n);
    const maxExpAvgSq = amsgrad
      ? (state?.maxExpAvgSq as Float32Array | undefined)?.slice() ?? new Float32Array(n)
      : null;
    const stepSize = lr / (1 - beta1 ** step);
    const correction2 = Math.sqrt(1 - beta2 ** step);
    for (let i = 0; i < n; i++) {
      let g = grad[i];
      if (this.decoupled) value[i] *= 1 - lr * weightDecay;
      else g += weightDecay * value[i];
      expAvg[i] += (g - expAvg[i]) * (1 - beta1);
      expAvgSq[i] = expAvgSq[i] * beta2 + (1 - beta2) * g * g;
      let second = expAvgSq[i];
      if (maxExpAvgSq !== null) second = maxExpAvgSq[i] = Math.max(maxExpAvgSq[i], second);
      value[i] -= stepSize * expAvg[i] / (Math.sqrt(second) / correction2 + eps);
    }
    return maxExpAvgSq === null
      ? { step, expAvg, expAvgSq }
      : { step, expAvg, expAvgSq, maxExpAvgSq };
  }
}

/**
 * AdamW, as `torch.optim.AdamW`: Adam with decoupled weight decay, `p *= 1 − lr·weightDecay`
 * before the Adam step; `weightDecay` defaults to `1e-2`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AdamW, Parameter, tensor } from "../../mod.ts";
 * const p = new Parameter("w", tensor([1], [1]));
 * const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5 });
 * p.grad = tensor([5], [1]);
 * opt.step(); // 1·(1 − 0.1·0.5) − 0.1
 * assert.ok(Math.abs(p.value.data[0] - 0.85) < 1e-6);
 * ```
 */
export class AdamW extends Adam {
  /** AdamW decouples the weight decay. */
  protected override get decoupled(): boolean {
    return true;
  }
}
