/**
 * Callbacks for `fit`: `checkpointBest` (save when the monitored metric improves),
 * `earlyStopping`, `learningRateScheduler` (a `StepLR` or `CosineAnnealingLR` stepped per epoch)
 * and `progress` (a line with steps/s, loss and ETA at most every few seconds).
 *
 * @module
 */

import { checkOptions, describe, describeKind } from "../errors.ts";
import { Schedule } from "../optim/schedule.ts";
import type { Tensor } from "../tensor.ts";
import type { Callback, EpochLog, FitModel } from "./logs.ts";

/** Whether a smaller or a larger value of the monitored metric is better. */
export type MonitorMode = "min" | "max";

/** Which metric a callback watches. */
export interface MonitorOptions {
  /**
   * A key of the epoch's metrics; default `"val_loss"` when there is validation data, else
   * `"loss"`.
   */
  monitor?: string;
  /** Default `"max"` for accuracies, `"min"` otherwise. */
  mode?: MonitorMode;
  /** The least change that counts as an improvement (default 0). */
  minDelta?: number;
}

/** Tracks the best value of a metric over epochs. */
class Monitor {
  readonly #name: string | undefined;
  readonly #mode: MonitorMode | undefined;
  readonly #minDelta: number;
  best: number | null = null;
  bestEpoch = -1;

  constructor(owner: string, options: MonitorOptions) {
    checkOptions(options);
    const { monitor, mode, minDelta = 0 } = options;
    if (monitor !== undefined && typeof monitor !== "string") {
      throw new TypeError(
        `${owner}: options.monitor must be a metric name, got ${describe(monitor)}`,
      );
    }
    if (mode !== undefined && mode !== "min" && mode !== "max") {
      throw new TypeError(`${owner}: options.mode must be "min" or "max", got ${describe(mode)}`);
    }
    if (typeof minDelta !== "number" || !(minDelta >= 0)) {
      throw new RangeError(
        `${owner}: options.minDelta must be a number ≥ 0, got ${describe(minDelta)}`,
      );
    }
    this.#name = monitor;
    this.#mode = mode;
    this.#minDelta = minDelta;
  }

  /** Whether `log` improves on the best so far (and records it when it does). */
  improves(owner: string, log: EpochLog): boolean {
    const name = this.#name ?? ("val_loss" in log.metrics ? "val_loss" : "loss");
    const value = log.metrics[name];
    if (value === undefined) {
      throw new RangeError(
        `${owner}: options.monitor ${describe(name)} is not among this run's metrics (${
          Object.keys(log.metrics).join(", ")
        }): pass one of those, or add the metric or validation data to fit`,
      );
    }
    const mode = this.#mode ?? (name.endsWith("accuracy") ? "max" : "min");
    const better = this.best === null ||
      (mode === "min" ? value < this.best - this.#minDelta : value > this.best + this.#minDelta);
    if (better) {
      this.best = value;
      this.bestEpoch = log.epoch;
    }
    return better;
  }
}

/** Options of {@linkcode checkpointBest}. */
export interface CheckpointBestOptions extends MonitorOptions {
  /** Saves the model, e.g. writes `saveModel(model)` to a file; awaited before training goes on. */
  save: (model: FitModel, log: EpochLog) => void | Promise<void>;
}

/**
 * Calls `save(model, log)` after every epoch that improves the monitored metric (Keras'
 * `ModelCheckpoint(save_best_only=True)`), so the best model is kept even if later epochs
 * overfit.
 *
 * @example Keep the best weights in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkpointBest, fit, Linear, Sequential, SGD, type Tensor, tensor } from "../../mod.ts";
 * const model = new Sequential([new Linear(1, 2, { seed: 1 })]);
 * let best: { epoch: number; weights: Record<string, Tensor> } | null = null;
 * const save = checkpointBest({
 *   monitor: "loss",
 *   save: (m, log) => void (best = { epoch: log.epoch, weights: m.stateDict() }),
 * });
 * const data = { inputs: tensor([0, 1], [2, 1]), targets: [0, 1] };
 * await fit(model, data, { optimizer: new SGD(model.parameters(), { lr: 0.5 }), epochs: 3, callbacks: [save] });
 * assert.equal(best!.epoch, 2); // the loss fell every epoch
 * ```
 */
export function checkpointBest(options: CheckpointBestOptions): Callback {
  checkOptions(options);
  if (typeof options.save !== "function") {
    throw new TypeError(
      `checkpointBest: options.save must be a function (model, log) => void, got ${
        describeKind(options.save)
      }`,
    );
  }
  const monitor = new Monitor("checkpointBest", options);
  return {
    async onEpochEnd(log, context): Promise<void> {
      if (monitor.improves("checkpointBest", log)) await options.save(context.model, log);
    },
  };
}

/** Options of {@linkcode earlyStopping}. */
export interface EarlyStoppingOptions extends MonitorOptions {
  /** Epochs without improvement before stopping (default 0: stop at the first). */
  patience?: number;
  /** Whether to put back the best epoch's weights at the end (default `false`). */
  restoreBest?: boolean;
}

/**
 * Stops training once the monitored metric has not improved for `patience` epochs (Keras'
 * `EarlyStopping`); with `restoreBest`, the model ends with its best epoch's weights.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { earlyStopping, fit, Linear, Sequential, SGD, tensor } from "../../mod.ts";
 * const model = new Sequential([new Linear(1, 2, { seed: 1 })]);
 * const data = { inputs: tensor([0, 1], [2, 1]), targets: [0, 1] };
 * const history = await fit(model, data, {
 *   optimizer: new SGD(model.parameters(), { lr: 0 }), // learns nothing
 *   epochs: 10,
 *   callbacks: [earlyStopping({ monitor: "loss", patience: 2 })],
 * });
 * assert.equal(history.epochs.length, 3);
 * assert.match(history.stopReason!, /loss did not improve for 2 epochs/);
 * ```
 */
export function earlyStopping(options: EarlyStoppingOptions = {}): Callback {
  const monitor = new Monitor("earlyStopping", options);
  const patience = options.patience ?? 0;
  if (!Number.isInteger(patience) || patience < 0) {
    throw new RangeError(
      `earlyStopping: options.patience must be an integer ≥ 0, got ${describe(patience)}`,
    );
  }
  const restoreBest = options.restoreBest ?? false;
  let best: Record<string, Tensor> | null = null;
  return {
    onEpochEnd(log, context): void {
      if (monitor.improves("earlyStopping", log)) {
        if (restoreBest) best = context.model.stateDict();
      } else if (log.epoch - monitor.bestEpoch >= patience) {
        context.stop(
          `earlyStopping: ${options.monitor ?? "the monitored metric"} did not improve for ${
            log.epoch - monitor.bestEpoch
          } epochs (best ${monitor.best} at epoch ${monitor.bestEpoch})`,
        );
      }
    },
    onTrainEnd(history, context): void {
      if (best !== null && history.epochs.at(-1)?.epoch !== monitor.bestEpoch) {
        context.model.loadStateDict(best);
      }
    },
  };
}

/**
 * Steps a learning-rate schedule after every epoch (PyTorch's `scheduler.step()` per epoch).
 * The schedule must drive the optimizer given to `fit`.
 *
 * @example Halve the rate every epoch
 * ```ts
 * import assert from "node:assert/strict";
 * import { fit, learningRateScheduler, Linear, Sequential, SGD, StepLR, tensor } from "../../mod.ts";
 * const model = new Sequential([new Linear(1, 2, { seed: 1 })]);
 * const optimizer = new SGD(model.parameters(), { lr: 0.4 });
 * const schedule = new StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
 * const data = { inputs: tensor([0, 1], [2, 1]), targets: [0, 1] };
 * const history = await fit(model, data, { optimizer, epochs: 3, callbacks: [learningRateScheduler(schedule)] });
 * assert.deepEqual(history.epochs.map((e) => e.lr), [0.4, 0.2, 0.1]);
 * ```
 */
export function learningRateScheduler(schedule: Schedule): Callback {
  if (!(schedule instanceof Schedule)) {
    throw new TypeError(
      `schedule must be a learning-rate schedule (new StepLR(optimizer, ...), new ` +
        `CosineAnnealingLR(optimizer, ...)), got ${describeKind(schedule)}`,
    );
  }
  return {
    onTrainBegin(context): void {
      if (schedule.optimizer !== context.optimizer) {
        throw new TypeError(
          "schedule drives another optimizer than the one fit uses: build the schedule on " +
            "options.optimizer",
        );
      }
    },
    onEpochEnd(): void {
      schedule.step();
    },
  };
}

/** Options of {@linkcode progress}. */
export interface ProgressOptions {
  /** Where lines go (default `console.log`). */
  write?: (line: string) => void;
  /** The least time between two step lines, in seconds (default 2). */
  intervalSeconds?: number;
  /**
   * The run's last step, for a run of several `fit` calls (resumed from a checkpoint, or cut into
   * parts between evaluations) that passes each call its `initialStep`: step lines then count
   * the run's steps (`step 120/500 · ...`, the rate and time left over the whole run) and no epoch
   * line is written (a call's epochs are parts of the run). Default: this call's epochs and steps.
   */
  totalSteps?: number;
}

/** `1m05s` or `12s`. */
function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const whole = Math.max(0, Math.round(seconds));
  return whole < 60
    ? `${whole}s`
    : `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
}

/** A metric's value, short. */
function short(value: number): string {
  return Math.abs(value) >= 1e-3 || value === 0 ? value.toFixed(4) : value.toExponential(2);
}

/**
 * Prints a line at most every `intervalSeconds` while training (epoch, step, steps/s, the epoch's
 * loss so far and the estimated time left) and one per epoch with every metric, the learning
 * rate and the time taken. With `totalSteps`, the step lines count the steps of a whole run of
 * several `fit` calls instead.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fit, Linear, progress, Sequential, SGD, tensor } from "../../mod.ts";
 * const model = new Sequential([new Linear(1, 2, { seed: 1 })]);
 * const lines: string[] = [];
 * const data = { inputs: tensor([0, 1], [2, 1]), targets: [0, 1] };
 * const report = progress({ write: (line) => void lines.push(line), intervalSeconds: 0 });
 * await fit(model, data, { optimizer: new SGD(model.parameters()), batchSize: 1, callbacks: [report] });
 * assert.match(lines[0], /^epoch 1\/1 · step 1\/2 · [\d.]+ steps\/s · loss [\d.]+ · ETA \d+s$/);
 * assert.match(lines.at(-1)!, /^epoch 1\/1 done in [\d.]+s · loss [\d.]+ · lr 0.001$/);
 * ```
 *
 * @example One run of 10 steps resumed at step 6: lines count the run's steps
 * ```ts
 * import assert from "node:assert/strict";
 * import { fit, Linear, progress, Sequential, SGD, tensor } from "../../mod.ts";
 * const model = new Sequential([new Linear(1, 2, { seed: 1 })]);
 * const lines: string[] = [];
 * const report = progress({ write: (l) => void lines.push(l), intervalSeconds: 0, totalSteps: 10 });
 * const data = { inputs: tensor([0, 1], [2, 1]), targets: [0, 1] };
 * const optimizer = new SGD(model.parameters());
 * await fit(model, data, { optimizer, batchSize: 1, initialStep: 6, callbacks: [report] });
 * assert.match(lines[0], /^step 7\/10 · [\d.]+ steps\/s · loss [\d.]+ · ETA \d+s$/);
 * assert.equal(lines.length, 2);
 * ```
 */
export function progress(options: ProgressOptions = {}): Callback {
  checkOptions(options);
  const write = options.write ?? ((line: string) => console.log(line));
  const interval = options.intervalSeconds ?? 2;
  const total = options.totalSteps;
  if (typeof write !== "function") {
    throw new TypeError(`progress: options.write must be a function, got ${describeKind(write)}`);
  }
  if (typeof interval !== "number" || !(interval >= 0)) {
    throw new RangeError(
      `progress: options.intervalSeconds must be a number ≥ 0, got ${describe(interval)}`,
    );
  }
  if (total !== undefined && !(Number.isInteger(total) && total >= 1)) {
    throw new RangeError(
      `progress: options.totalSteps must be an integer ≥ 1, got ${describe(total)}`,
    );
  }
  let last = -Infinity;
  // The run's rate is counted from the first call's start (a resumed run's from its own).
  let runStart: { seconds: number; step: number } | null = null;
  return {
    onTrainBegin(context): void {
      runStart ??= { seconds: performance.now() / 1000, step: context.initialStep };
    },
    onBatchEnd(step, context): void {
      const now = performance.now() / 1000;
      if (now - last < interval) return;
      last = now;
      if (total !== undefined && runStart !== null) {
        const rate = (step.globalStep - runStart.step) / Math.max(now - runStart.seconds, 1e-9);
        write(
          `step ${step.globalStep}/${total} · ${rate.toFixed(1)} steps/s · loss ${
            short(step.meanLoss)
          } · ETA ${duration((total - step.globalStep) / rate)}`,
        );
        return;
      }
      const done = step.step + 1;
      const rate = done / Math.max(step.seconds, 1e-9);
      const left = (context.stepsPerEpoch - done) +
        (context.epochs - step.epoch - 1) * context.stepsPerEpoch;
      write(
        `epoch ${step.epoch + 1}/${context.epochs} · step ${done}/${context.stepsPerEpoch} · ` +
          `${rate.toFixed(1)} steps/s · loss ${short(step.meanLoss)} · ETA ${
            duration(left / rate)
          }`,
      );
    },
    onEpochEnd(log, context): void {
      if (total !== undefined) return;
      const values = Object.entries(log.metrics).map(([name, value]) => `${name} ${short(value)}`);
      write(
        `epoch ${log.epoch + 1}/${context.epochs} done in ${log.seconds.toFixed(1)}s · ` +
          `${values.join(" · ")} · lr ${log.lr}`,
      );
    },
  };
}
