/**
 * `fit`: the training loop of a `Sequential` (or any model with `forward`, `parameters` and
 * `train`), Keras' `model.fit`: epochs of shuffled batches, an optimizer step per batch,
 * validation, metrics and callbacks, and the history.
 *
 * @module
 */

import { checkOptions, describe, describeKind } from "../errors.ts";
import { crossEntropy, mseLoss, type Targets } from "../nn/loss.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import { Adam } from "../optim/adam.ts";
import { clipGradNorm } from "../optim/clip.ts";
import { NonfiniteGradientError } from "../optim/nonfinite.ts";
import { Optimizer } from "../optim/optimizer.ts";
import { Random } from "../random.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { type Batch, batches, checkData, type SequenceData } from "./batches.ts";
import type { Callback, EpochLog, FitContext, FitModel, History } from "./logs.ts";
import type { Metric } from "./metrics.ts";

/** A loss of a batch's output and targets, reduced to a scalar mean (it is back-propagated). */
export type LossFunction = (output: Tensor, targets: Targets) => TrackedTensor;

/** Options of {@linkcode fit}. */
export interface FitOptions {
  /**
   * `"crossEntropy"` (default: logits against class ids, padded targets skipped), `"mse"`
   * (against tensor targets) or a function `(output, targets) => scalar`.
   */
  loss?: "crossEntropy" | "mse" | LossFunction;
  /** Default `new Adam(model.parameters(), { lr: 1e-3 })`. */
  optimizer?: Optimizer;
  /** Passes over the data (default 1). */
  epochs?: number;
  /** Examples per batch when `data` is `{ inputs, targets }` (default 32). */
  batchSize?: number;
  /** Whether to shuffle the examples every epoch (default `true`). */
  shuffle?: boolean;
  /** Seed of the shuffling (default 0): the same seed, the same batches. */
  seed?: number;
  /** Data to evaluate after every epoch (in `eval()` mode, no gradient): `val_*` metrics. */
  validation?: SequenceData | readonly Batch[];
  /** Metrics to report besides the loss, e.g. `[accuracy(), bitsPerToken()]`. */
  metrics?: readonly Metric[];
  /** Hooks, e.g. `[progress(), earlyStopping(), checkpointBest({ save })]`. */
  callbacks?: readonly Callback[];
  /** Clips the gradients' global norm to this before each step (`clipGradNorm`). */
  clipGradNorm?: number;
  /** The target id that the loss and the metrics skip (default -100, the batches' padding). */
  ignoreIndex?: number;
  /**
   * Stops training once aborted (Ctrl-C, a deadline): looked at after every step, so the step
   * under way finishes and no other starts. An epoch whose last step is done still gets its
   * validation and `onEpochEnd`; an epoch cut short gets neither. `fit` saves nothing itself: it
   * returns with `stopReason` `"aborted"`, the model in `eval()` mode and synced, for the caller
   * to save. Between steps `fit` lets the event loop run (at least every 50 ms), so a signal
   * handler can abort it even when the steps never wait.
   */
  signal?: AbortSignal;
  /**
   * Steps taken before this call, e.g. by the run a checkpoint resumes (default 0):
   * `StepLog.globalStep` counts on from it, and `progress({ totalSteps })` with it.
   */
  initialStep?: number;
}

/** The most time `fit` runs steps without letting the event loop run, when given a `signal`. */
const YIELD_MS = 50;

/** Sums of the loss and the metrics over batches. */
class Totals {
  readonly #sums = new Map<string, { total: number; count: number }>();

  add(name: string, total: number, count: number): void {
    const sum = this.#sums.get(name) ?? { total: 0, count: 0 };
    this.#sums.set(name, { total: sum.total + total, count: sum.count + count });
  }

  mean(name: string): number {
    const sum = this.#sums.get(name);
    return sum === undefined || sum.count === 0 ? NaN : sum.total / sum.count;
  }

  means(prefix: string): Record<string, number> {
    return Object.fromEntries(
      [...this.#sums.keys()].map((name) => [prefix + name, this.mean(name)]),
    );
  }
}

/** How many targets a batch's loss averages over. */
function targetCount(targets: Targets, ignoreIndex: number): number {
  if (Array.isArray(targets) || targets instanceof Int32Array) {
    let count = 0;
    for (const id of targets as Iterable<number>) if (id !== ignoreIndex) count++;
    return count;
  }
  return (targets as Tensor).data.length;
}

function lossOf(option: FitOptions["loss"], ignoreIndex: number): LossFunction {
  if (option === undefined || option === "crossEntropy") {
    return (output, targets) => crossEntropy(output, targets, { ignoreIndex });
  }
  if (option === "mse") {
    return (output, targets) =>
      mseLoss(
        output,
        Array.isArray(targets) || targets instanceof Int32Array
          ? tensor(targets as ArrayLike<number>, output.shape)
          : targets as Tensor,
      );
  }
  if (typeof option !== "function") {
    throw new TypeError(
      `options.loss must be "crossEntropy", "mse" or a function (output, targets) => loss, got ${
        describeKind(option)
      }`,
    );
  }
  return option;
}

function checkBatches(name: string, data: readonly Batch[]): readonly Batch[] {
  if (data.length === 0) throw new RangeError(`${name} must hold at least one batch, got none`);
  data.forEach((batch, i) => {
    if (typeof batch !== "object" || batch === null || !("inputs" in batch)) {
      throw new TypeError(
        `${name}[${i}] must be a batch { inputs, targets, lengths? }, got ${describeKind(batch)}`,
      );
    }
  });
  return data;
}

function positiveInteger(name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new RangeError(`${name} must be an integer ≥ 1, got ${describe(value)}`);
  }
  return value as number;
}

/**
 * Trains `model` on `data` for `epochs` passes and returns the history of each epoch's loss and
 * metrics, as Keras' `model.fit`. Each epoch: `model.train()`, then per batch the forward, the
 * loss, `backward()`, optional gradient clipping and the optimizer step; then, with
 * `validation`, `model.eval()` and the validation loss and metrics. The model is left in
 * `eval()` mode.
 *
 * A NaN or infinite loss or gradient stops training with an error naming the epoch and the step,
 * before that step changes any weight and before any later callback (a checkpoint keeps the last
 * good weights); with an optimizer made with `{ nonfinite: "skip" }`, such steps are skipped
 * instead (counted in `optimizer.skippedSteps`, left out of the epoch's loss and metrics).
 *
 * `data` is `{ inputs, targets }` (one entry per example: token-id sequences with per-step or
 * per-sequence class ids, or tensors), cut by {@linkcode batches} into `batchSize` batches,
 * shuffled every epoch from `seed`; or batches of one's own, used as given.
 *
 * @param model A `Sequential`, or any {@linkcode FitModel}.
 * @param data The training examples or batches.
 * @param options Loss, optimizer, epochs, batch size, validation, metrics, callbacks.
 * @returns Every epoch's metrics, learning rate and time, and why it stopped early if it did.
 *
 * @example A character model learns to predict the next token
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracy, Adam, Embedding, fit, Linear, LSTM, Sequential } from "../../mod.ts";
 * const text = "abcdabcdabcdabcdabcdabcd".split("").map((c) => c.charCodeAt(0) - 97);
 * const inputs = [], targets = [];
 * for (let i = 0; i + 5 <= text.length - 1; i += 2) {
 *   inputs.push(text.slice(i, i + 5));
 *   targets.push(text.slice(i + 1, i + 6));
 * }
 * const model = new Sequential([
 *   new Embedding(4, 8, { seed: 1 }),
 *   new LSTM(8, 16, { backend: "js", seed: 2 }),
 *   new Linear(16, 4, { seed: 3 }),
 * ]);
 * const history = await fit(model, { inputs, targets }, {
 *   optimizer: new Adam(model.parameters(), { lr: 0.05 }),
 *   epochs: 15,
 *   batchSize: 4,
 *   metrics: [accuracy()],
 * });
 * const [first, last] = [history.epochs[0], history.epochs.at(-1)!];
 * assert.ok(last.metrics.loss < first.metrics.loss / 2);
 * assert.ok(last.metrics.accuracy > 0.9);
 * ```
 */
export async function fit(
  model: FitModel,
  data: SequenceData | readonly Batch[],
  options: FitOptions = {},
): Promise<History> {
  if (
    typeof model !== "object" || model === null || typeof model.forward !== "function" ||
    typeof model.parameters !== "function" || typeof model.train !== "function"
  ) {
    throw new TypeError(
      `model must be a Sequential (or a model with forward, parameters and train), got ${
        describeKind(model)
      }`,
    );
  }
  checkOptions(options);
  const ignoreIndex = options.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) {
    throw new TypeError(`options.ignoreIndex must be an integer, got ${describe(ignoreIndex)}`);
  }
  const loss = lossOf(options.loss, ignoreIndex);
  const epochs = positiveInteger("options.epochs", options.epochs ?? 1);
  const batchSize = positiveInteger("options.batchSize", options.batchSize ?? 32);
  const shuffle = options.shuffle ?? true;
  const random = new Random(options.seed ?? 0);
  const metrics = options.metrics ?? [];
  const callbacks = options.callbacks ?? [];
  if (!Array.isArray(metrics)) {
    throw new TypeError(
      `options.metrics must be an array of metrics, got ${describeKind(metrics)}`,
    );
  }
  metrics.forEach((metric, i) => {
    if (typeof metric?.measure !== "function" || typeof metric?.name !== "string") {
      throw new TypeError(
        `options.metrics[${i}] must be a metric such as accuracy(), topKAccuracy(5) or ` +
          `bitsPerToken(), got ${describeKind(metric)}`,
      );
    }
  });
  if (!Array.isArray(callbacks)) {
    throw new TypeError(
      `options.callbacks must be an array of callbacks, got ${describeKind(callbacks)}`,
    );
  }
  callbacks.forEach((callback, i) => {
    if (typeof callback !== "object" || callback === null) {
      throw new TypeError(
        `options.callbacks[${i}] must be a callback such as progress() or earlyStopping(), got ${
          describeKind(callback)
        }`,
      );
    }
  });
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `options.signal must be an AbortSignal (new AbortController().signal), got ${
        describeKind(signal)
      }`,
    );
  }
  const initialStep = options.initialStep ?? 0;
  if (!Number.isInteger(initialStep) || initialStep < 0) {
    throw new RangeError(
      `options.initialStep must be an integer ≥ 0, got ${describe(initialStep)}`,
    );
  }
  const clip = options.clipGradNorm;
  if (clip !== undefined && !(typeof clip === "number" && clip > 0)) {
    throw new RangeError(`options.clipGradNorm must be a number > 0, got ${describe(clip)}`);
  }
  const optimizer = options.optimizer ?? new Adam(model.parameters(), { lr: 1e-3 });
  if (!(optimizer instanceof Optimizer)) {
    throw new TypeError(
      `options.optimizer must be an optimizer (new Adam(model.parameters()), SGD, AdamW), got ${
        describeKind(optimizer)
      }`,
    );
  }
  const epochBatches: () => readonly Batch[] = Array.isArray(data)
    ? ((given) => () => given)(checkBatches("data", data))
    : (checkData("data", data as SequenceData),
      () => batches(data as SequenceData, { batchSize, shuffle, seed: random, ignoreIndex }));
  const validation = options.validation === undefined
    ? null
    : Array.isArray(options.validation)
    ? checkBatches("options.validation", options.validation)
    : (checkData("options.validation", options.validation as SequenceData),
      batches(options.validation as SequenceData, { batchSize, ignoreIndex }));

  const measure = (totals: Totals, output: Tensor, targets: Targets): void => {
    for (const metric of metrics) {
      const { total, count } = metric.measure(output, targets, ignoreIndex);
      totals.add(metric.name, total, count);
    }
  };

  let stopReason: string | null = null;
  const first = epochBatches();
  const context: FitContext = {
    model,
    optimizer,
    epochs,
    stepsPerEpoch: first.length,
    initialStep,
    stop(reason: string): void {
      stopReason ??= String(reason);
    },
  };
  const log: EpochLog[] = [];
  const history = (): History => ({ epochs: log, stopReason });
  let globalStep = initialStep;
  let lastYield = performance.now();
  /** Whether the signal asks to stop; lets the event loop run first when it has not for a while. */
  const aborted = async (): Promise<boolean> => {
    if (signal === undefined) return false;
    if (performance.now() - lastYield > YIELD_MS) {
      await new Promise((done) => setTimeout(done, 0));
      lastYield = performance.now();
    }
    if (signal.aborted) stopReason ??= "aborted";
    return signal.aborted;
  };
  for (const callback of callbacks) await callback.onTrainBegin?.(context);
  for (let epoch = 0; epoch < epochs && stopReason === null; epoch++) {
    for (const callback of callbacks) await callback.onEpochBegin?.(epoch, context);
    const started = performance.now();
    const lr = optimizer.lr;
    const totals = new Totals();
    model.train();
    const epochData = epoch === 0 ? first : epochBatches();
    let cut = false;
    for (const [step, batch] of epochData.entries()) {
      optimizer.zeroGrad();
      const output = await model.forward(batch.inputs, lengthsOf(batch));
      const value = loss(output, batch.targets);
      const skips = optimizer.nonfinite === "skip";
      if (!Number.isFinite(value.data[0]) && !skips) {
        throw nonfiniteStop(epoch, step, `the loss is ${value.data[0]}`);
      }
      await value.backward();
      let stepped: boolean;
      try {
        if (clip !== undefined) {
          clipGradNorm(model.parameters(), clip, { errorIfNonfinite: !skips });
        }
        stepped = optimizer.step();
      } catch (error) {
        if (!(error instanceof NonfiniteGradientError)) throw error;
        throw nonfiniteStop(epoch, step, error.message, error);
      }
      const count = options.loss === undefined || typeof options.loss === "string"
        ? targetCount(batch.targets, ignoreIndex)
        : 1;
      // A skipped step's loss (NaN or infinite) would make the epoch's mean meaningless.
      if (stepped) {
        totals.add("loss", value.data[0] * count, count);
        measure(totals, output, batch.targets);
      } else {
        for (const name of ["loss", ...metrics.map((metric) => metric.name)]) {
          totals.add(name, 0, 0);
        }
      }
      const stepLog = {
        epoch,
        step,
        globalStep: ++globalStep,
        loss: value.data[0],
        meanLoss: totals.mean("loss"),
        seconds: (performance.now() - started) / 1000,
      };
      for (const callback of callbacks) await callback.onBatchEnd?.(stepLog, context);
      if (await aborted() && step < epochData.length - 1) {
        cut = true;
        break;
      }
    }
    model.train(false);
    if (cut) {
      await model.sync();
      break;
    }
    let metricsOf = totals.means("");
    if (validation !== null) {
      const checked = new Totals();
      for (const batch of validation) {
        const output = await model.forward(batch.inputs, lengthsOf(batch));
        const value = loss(output, batch.targets);
        const count = options.loss === undefined || typeof options.loss === "string"
          ? targetCount(batch.targets, ignoreIndex)
          : 1;
        checked.add("loss", value.data[0] * count, count);
        measure(checked, output, batch.targets);
      }
      metricsOf = { ...metricsOf, ...checked.means("val_") };
    }
    await model.sync();
    const entry: EpochLog = {
      epoch,
      metrics: metricsOf,
      lr,
      steps: epochData.length,
      seconds: (performance.now() - started) / 1000,
    };
    log.push(entry);
    for (const callback of callbacks) await callback.onEpochEnd?.(entry, context);
  }
  for (const callback of callbacks) await callback.onTrainEnd?.(history(), context);
  return history();
}

/**
 * The error that stops `fit` on a non-finite loss or gradient: the step's weights were not
 * changed, and no epoch end (no checkpoint) saw them.
 */
function nonfiniteStop(epoch: number, step: number, what: string, cause?: unknown): Error {
  return new Error(
    `fit stopped at epoch ${epoch}, step ${step} (counted from 0, as in the logs): ${what}. ` +
      "The weights are those before this step, and the last checkpoint stays as it was. Check " +
      "this batch's inputs and targets, lower the learning rate or clip the gradients " +
      '(clipGradNorm), or pass an optimizer with { nonfinite: "skip" } to skip such steps',
    cause === undefined ? undefined : { cause },
  );
}

function lengthsOf(batch: Batch): { lengths?: Int32Array } {
  return batch.lengths === undefined ? {} : { lengths: batch.lengths };
}
