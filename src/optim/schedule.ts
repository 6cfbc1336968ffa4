/**
 * Learning-rate schedules with PyTorch's semantics: `StepLR` and `CosineAnnealingLR`. Call
 * `step()` once per epoch, after the optimizer's `step()`.
 *
 * @module
 */

import type { Optimizer } from "./optimizer.ts";
import { checkOptionNames, numberOption } from "./options.ts";
import { describe } from "../errors.ts";

/** What a schedule's `stateDict()` returns. */
export interface ScheduleStateDict {
  /** Epochs stepped so far. */
  readonly lastEpoch: number;
  /** The learning rate the schedule started from. */
  readonly baseLr: number;
}

/** Checks that a schedule's epoch count `options[name]` is a positive integer. */
function positiveIntegerOption(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`options.${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/**
 * The base of the schedules: owns the epoch count and sets `optimizer.lr` on every `step()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, type Schedule, SGD, StepLR } from "../../mod.ts";
 * const schedule: Schedule = new StepLR(new SGD(new Linear(1, 1).parameters()), { stepSize: 1 });
 * schedule.step();
 * assert.equal(schedule.lastEpoch, 1);
 * ```
 */
export abstract class Schedule {
  /** The optimizer whose `lr` this schedule sets. */
  readonly optimizer: Optimizer;
  #baseLr: number;
  #lastEpoch = 0;

  /**
   * Starts from the optimizer's current learning rate, at epoch 0.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, SGD, StepLR } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters(), { lr: 0.3 });
   * const schedule = new StepLR(opt, { stepSize: 1 });
   * assert.deepEqual([schedule.baseLr, schedule.lastEpoch], [0.3, 0]);
   * ```
   */
  constructor(optimizer: Optimizer) {
    if (typeof optimizer !== "object" || optimizer === null || !("lr" in optimizer)) {
      throw new TypeError(
        `optimizer must be an optimizer (SGD, Adam, AdamW), got ${describe(optimizer)}`,
      );
    }
    this.optimizer = optimizer;
    this.#baseLr = optimizer.lr;
  }

  /** The learning rate at the start. */
  get baseLr(): number {
    return this.#baseLr;
  }

  /** Epochs stepped so far. */
  get lastEpoch(): number {
    return this.#lastEpoch;
  }

  /** The learning rate now (PyTorch's `get_last_lr()`). */
  get lr(): number {
    return this.optimizer.lr;
  }

  /**
   * Advances one epoch and sets the optimizer's learning rate.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, SGD, StepLR } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters(), { lr: 1 });
   * const schedule = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
   * schedule.step();
   * assert.deepEqual([schedule.lastEpoch, opt.lr], [1, 0.5]);
   * ```
   */
  step(): void {
    this.#lastEpoch++;
    this.optimizer.lr = this.next(this.optimizer.lr, this.#lastEpoch);
  }

  /**
   * The learning rate of `epoch` from that of the epoch before (PyTorch's chainable form).
   *
   * @example A schedule that halves the rate every epoch
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, Schedule, SGD } from "../../mod.ts";
   * class Halve extends Schedule {
   *   protected next(lr: number): number {
   *     return lr / 2;
   *   }
   * }
   * const opt = new SGD(new Linear(1, 1).parameters(), { lr: 1 });
   * const schedule = new Halve(opt);
   * schedule.step();
   * schedule.step();
   * assert.equal(opt.lr, 0.25);
   * ```
   */
  protected abstract next(lr: number, epoch: number): number;

  /**
   * The epoch count and base learning rate, to resume exactly (with the optimizer's).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, SGD, StepLR } from "../../mod.ts";
   * const schedule = new StepLR(new SGD(new Linear(1, 1).parameters(), { lr: 1 }), { stepSize: 1 });
   * schedule.step();
   * assert.deepEqual(schedule.stateDict(), { lastEpoch: 1, baseLr: 1 });
   * ```
   */
  stateDict(): ScheduleStateDict {
    return { lastEpoch: this.#lastEpoch, baseLr: this.#baseLr };
  }

  /**
   * Restores a `stateDict()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, SGD, StepLR } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters(), { lr: 1 });
   * const schedule = new StepLR(opt, { stepSize: 1 });
   * schedule.loadStateDict({ lastEpoch: 3, baseLr: 1 });
   * assert.equal(schedule.lastEpoch, 3);
   * ```
   */
  loadStateDict(dict: ScheduleStateDict): void {
    if (!Number.isInteger(dict?.lastEpoch) || dict.lastEpoch < 0) {
      throw new RangeError(
        `dict.lastEpoch must be an integer ≥ 0, got ${describe(dict?.lastEpoch)}`,
      );
    }
    this.#baseLr = numberOption(dict as unknown as Record<string, unknown>, "baseLr", NaN);
    this.#lastEpoch = dict.lastEpoch;
  }
}

/** Options of {@linkcode StepLR}. */
export interface StepLROptions {
  /** Epochs between decays. */
  stepSize: number;
  /** Factor of each decay (default `0.1`). */
  gamma?: number;
}

/**
 * Multiplies the learning rate by `gamma` every `stepSize` epochs, as `torch.optim.lr_scheduler.StepLR`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, SGD, StepLR } from "../../mod.ts";
 * const opt = new SGD(new Linear(2, 1, { seed: 1 }).parameters(), { lr: 1 });
 * const schedule = new StepLR(opt, { stepSize: 2, gamma: 0.5 });
 * for (let epoch = 0; epoch < 4; epoch++) schedule.step();
 * assert.equal(opt.lr, 0.25);
 * ```
 */
export class StepLR extends Schedule {
  /** Epochs between decays. */
  readonly stepSize: number;
  /** Factor of each decay. */
  readonly gamma: number;

  /**
   * Decays `optimizer.lr` by `gamma` every `stepSize` epochs.
   *
   * @param optimizer The optimizer whose `lr` to set.
   * @param options stepSize and gamma.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, SGD, StepLR } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters());
   * assert.equal(new StepLR(opt, { stepSize: 3 }).gamma, 0.1);
   * assert.throws(() => new StepLR(opt, { stepSize: 0 }), RangeError);
   * ```
   */
  constructor(optimizer: Optimizer, options: StepLROptions) {
    super(optimizer);
    checkOptionNames("StepLR", options, ["stepSize", "gamma"]);
    this.stepSize = positiveIntegerOption(options.stepSize, "stepSize");
    this.gamma = numberOption(options as unknown as Record<string, unknown>, "gamma", 0.1);
  }

  /**
   * `lr·gamma` at multiples of `stepSize`, else `lr`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, SGD, StepLR } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters(), { lr: 1 });
   * const schedule = new StepLR(opt, { stepSize: 2, gamma: 0.1 });
   * schedule.step();
   * assert.equal(opt.lr, 1);
   * schedule.step();
   * assert.ok(Math.abs(opt.lr - 0.1) < 1e-12);
   * ```
   */
  protected next(lr: number, epoch: number): number {
    return epoch % this.stepSize === 0 ? lr * this.gamma : lr;
  }
}

/** Options of {@linkcode CosineAnnealingLR}. */
export interface CosineAnnealingLROptions {
  /** Epochs of half a cosine period. */
  tMax: number;
  /** The smallest learning rate (default `0`). */
  etaMin?: number;
}

/**
 * Anneals the learning rate from its start to `etaMin` along a cosine over `tMax` epochs, as
 * `torch.optim.lr_scheduler.CosineAnnealingLR` (its recursive form, so past `tMax` it rises again).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, CosineAnnealingLR, Linear } from "../../mod.ts";
 * const opt = new Adam(new Linear(2, 1, { seed: 1 }).parameters(), { lr: 1 });
 * const schedule = new CosineAnnealingLR(opt, { tMax: 4 });
 * schedule.step();
 * schedule.step();
 * assert.ok(Math.abs(opt.lr - 0.5) < 1e-12);
 * ```
 */
export class CosineAnnealingLR extends Schedule {
  /** Epochs of half a period. */
  readonly tMax: number;
  /** The smallest learning rate. */
  readonly etaMin: number;

  /**
   * Anneals `optimizer.lr` to `etaMin` over `tMax` epochs.
   *
   * @param optimizer The optimizer whose `lr` to set.
   * @param options tMax and etaMin.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CosineAnnealingLR, Linear, SGD } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters());
   * assert.equal(new CosineAnnealingLR(opt, { tMax: 10 }).etaMin, 0);
   * assert.throws(() => new CosineAnnealingLR(opt, { tMax: 0 }), RangeError);
   * ```
   */
  constructor(optimizer: Optimizer, options: CosineAnnealingLROptions) {
    super(optimizer);
    checkOptionNames("CosineAnnealingLR", options, ["tMax", "etaMin"]);
    this.tMax = positiveIntegerOption(options.tMax, "tMax");
    this.etaMin = numberOption(options as unknown as Record<string, unknown>, "etaMin", 0);
  }

  /**
   * PyTorch's recursive cosine step.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CosineAnnealingLR, Linear, SGD } from "../../mod.ts";
   * const opt = new SGD(new Linear(1, 1).parameters(), { lr: 1 });
   * const schedule = new CosineAnnealingLR(opt, { tMax: 2, etaMin: 0.5 });
   * schedule.step();
   * schedule.step();
   * assert.ok(Math.abs(opt.lr - 0.5) < 1e-12);
   * ```
   */
  protected next(lr: number, epoch: number): number {
    const { tMax: T, etaMin } = this;
    if ((epoch - 1 - T) % (2 * T) === 0) {
      return lr + (this.baseLr - etaMin) * (1 - Math.cos(Math.PI / T)) / 2;
    }
    return (1 + Math.cos(Math.PI * epoch / T)) / (1 + Math.cos(Math.PI * (epoch - 1) / T)) *
        (lr - etaMin) + etaMin;
  }
}
