/**
 * Optimizer settings for {@linkcode WebGpuTrainer.step} and the uniform record of
 * `kernels/train_optimizer.wgsl`: PyTorch's options in camelCase, PyTorch's defaults, and the
 * step-dependent scalars (Adam's bias corrections) computed here in float64.
 *
 * @module
 */

import { describe } from "../../errors.ts";
import { f32Bits } from "./train_encode.ts";

/** `torch.optim.SGD`'s options. */
export interface SgdConfig {
  /** Selects SGD. */
  readonly kind: "sgd";
  /** Learning rate. */
  readonly lr: number;
  /** Momentum factor; default 0 (plain SGD). */
  readonly momentum?: number;
  /** Dampening of the momentum; default 0. */
  readonly dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0); default `false`. */
  readonly nesterov?: boolean;
  /** L2 penalty added to the gradient; default 0. */
  readonly weightDecay?: number;
}

/** `torch.optim.Adam`'s and `torch.optim.AdamW`'s options. */
export interface AdamConfig {
  /** `"adam"`: weight decay added to the gradient; `"adamw"`: decoupled weight decay. */
  readonly kind: "adam" | "adamw";
  /** Learning rate; default 1e-3. */
  readonly lr?: number;
  /** Decay rates of the moment estimates; default `[0.9, 0.999]`. */
  readonly betas?: readonly [number, number];
  /** Added to the denominator; default 1e-8. */
  readonly eps?: number;
  /** Weight decay; default 0 for Adam, 1e-2 for AdamW. */
  readonly weightDecay?: number;
  /** Use the maximum of past second moments (AMSGrad); default `false`. */
  readonly amsgrad?: boolean;
}

/** The optimizer of one {@linkcode WebGpuTrainer.step}. */
export type OptimizerConfig = SgdConfig | AdamConfig;

/** Flags of the `Optimizer` record (see `kernels/train_optimizer.wgsl`). */
const NESTEROV = 1, FIRST_STEP = 2, DECOUPLED = 4, AMSGRAD = 8;

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !(value >= 0) || value === Infinity) {
    throw new RangeError(`${name} must be a finite number ≥ 0, got ${describe(value)}`);
  }
  return value;
}

function probability(name: string, value: number): number {
  if (typeof value !== "number" || !(value >= 0 && value < 1)) {
    throw new RangeError(`${name} must be a number in [0, 1), got ${describe(value)}`);
  }
  return value;
}

/**
 * The uniform record of one optimizer step over `count` floats: `step` is the 1-based step number
 * of this optimizer (Adam's bias corrections; SGD's first step starts the momentum buffer).
 *
 * @throws {RangeError | TypeError} For an unknown kind or an option out of range (named).
 *
 * @example
 * ```ts
 * import { optimizerRecord } from "./train_optimizer.ts";
 * const words = optimizerRecord({ kind: "adam", lr: 0.01 }, 1, 100);
 * ```
 */
export function optimizerRecord(config: OptimizerConfig, step: number, count: number): number[] {
  if (config?.kind === "sgd") {
    const lr = nonNegative("config.lr", config.lr);
    const momentum = nonNegative("config.momentum", config.momentum ?? 0);
    const dampening = nonNegative("config.dampening", config.dampening ?? 0);
    const weightDecay = nonNegative("config.weightDecay", config.weightDecay ?? 0);
    const nesterov = config.nesterov ?? false;
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new RangeError(
        `config.nesterov needs momentum > 0 and dampening 0 (as in PyTorch), got momentum ` +
          `${momentum} and dampening ${dampening}`,
      );
    }
    const flags = (nesterov ? NESTEROV : 0) | (step === 1 ? FIRST_STEP : 0);
    return [count, flags, ...[lr, weightDecay, momentum, dampening, 0, 0, 0, 0, 0].map(f32Bits)];
  }
  if (config?.kind === "adam" || config?.kind === "adamw") {
    const decoupled = config.kind === "adamw";
    const lr = nonNegative("config.lr", config.lr ?? 1e-3);
    const [beta1, beta2] = config.betas ?? [0.9, 0.999];
    probability("config.betas[0]", beta1);
    probability("config.betas[1]", beta2);
    const eps = nonNegative("config.eps", config.eps ?? 1e-8);
    const weightDecay = nonNegative(
      "config.weightDecay",
      config.weightDecay ?? (decoupled ? 1e-2 : 0),
    );
    const flags = (decoupled ? DECOUPLED : 0) | (config.amsgrad ? AMSGRAD : 0);
    const stepSize = lr / (1 - beta1 ** step);
    const correction2Sqrt = Math.sqrt(1 - beta2 ** step);
    return [
      count,
      flags,
      ...[lr, weightDecay, 0, 0, beta1, beta2, eps, stepSize, correction2Sqrt].map(f32Bits),
    ];
  }
  throw new TypeError(
    `config.kind must be "sgd", "adam" or "adamw", got ${describe(config?.kind)}`,
  );
}
