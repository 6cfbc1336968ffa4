/**
 * What `fit` and its callbacks share: the model it trains, the context handed to callbacks, the
 * records of steps and epochs, and the history it returns.
 *
 * @module
 */

import type { TokenIds } from "../nn/embedding.ts";
import type { Parameter } from "../nn/parameter.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import type { Tensor } from "../tensor.ts";

/**
 * What `fit` trains: a `Sequential`, or any model with its `forward(inputs, { lengths })`,
 * parameters and training switch.
 */
export interface FitModel {
  /** The output of a batch, e.g. logits `(B, T, V)` or `(B, C)`. */
  forward(
    inputs: TokenIds,
    options?: { readonly lengths?: readonly number[] | Int32Array },
  ): Promise<Tensor>;
  /** The trainable parameters. */
  parameters(): Parameter[];
  /** Switches training mode on or off. */
  train(mode?: boolean): unknown;
  /** Reads device-held parameters back, so `stateDict()` is current. */
  sync(): Promise<void>;
  /** The parameters by name, as copies. */
  stateDict(): Record<string, Tensor>;
  /** Sets the parameters from a record. */
  loadStateDict(record: Record<string, Tensor>): void;
}

/** What callbacks are given: the run and a way to end it. */
export interface FitContext {
  /** The model being trained. */
  readonly model: FitModel;
  /** Its optimizer. */
  readonly optimizer: Optimizer;
  /** Epochs asked for. */
  readonly epochs: number;
  /** Training batches per epoch. */
  readonly stepsPerEpoch: number;
  /** Steps taken before this call (`fit`'s `initialStep`, default 0). */
  readonly initialStep: number;
  /** Ends training after the current epoch; `reason` goes to `History.stopReason`. */
  stop(reason: string): void;
}

/** One training step, as `onBatchEnd` sees it. */
export interface StepLog {
  /** The epoch, from 0. */
  readonly epoch: number;
  /** The step within the epoch, from 0. */
  readonly step: number;
  /** Steps taken in the whole run, this one included: `fit`'s `initialStep` + this call's. */
  readonly globalStep: number;
  /** This batch's loss. */
  readonly loss: number;
  /** The epoch's loss so far (per counted target). */
  readonly meanLoss: number;
  /** Seconds since the epoch began. */
  readonly seconds: number;
}

/** One epoch, as `onEpochEnd` sees it and `History.epochs` keeps it. */
export interface EpochLog {
  /** The epoch, from 0. */
  readonly epoch: number;
  /**
   * `loss` and each metric on the training data (over the epoch, per counted target), and
   * `val_loss`, `val_<metric>` on the validation data when given.
   */
  readonly metrics: Readonly<Record<string, number>>;
  /** The learning rate of this epoch. */
  readonly lr: number;
  /** Training steps run. */
  readonly steps: number;
  /** Seconds the epoch took, validation included. */
  readonly seconds: number;
}

/** What `fit` returns. */
export interface History {
  /** Every epoch run, in order. */
  readonly epochs: readonly EpochLog[];
  /**
   * Why training ended early: a callback's `stop(reason)`, or `"aborted"` for `fit`'s `signal`;
   * `null` when it ran every epoch.
   */
  readonly stopReason: string | null;
}

/**
 * Hooks into `fit`, each optional and possibly asynchronous (awaited in order): Keras' callbacks.
 *
 * @example Record the loss of every step
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Callback, fit, Linear, Sequential, SGD, tensor } from "../../mod.ts";
 * const model = new Sequential([new Linear(1, 2, { seed: 1 })]);
 * const losses: number[] = [];
 * const record: Callback = { onBatchEnd: (step) => void losses.push(step.loss) };
 * const data = { inputs: tensor([0, 1, 2, 3], [4, 1]), targets: [0, 1, 0, 1] };
 * await fit(model, data, { optimizer: new SGD(model.parameters(), { lr: 0.1 }), batchSize: 2, callbacks: [record] });
 * assert.equal(losses.length, 2);
 * ```
 */
export interface Callback {
  /** Before the first epoch. */
  onTrainBegin?(context: FitContext): void | Promise<void>;
  /** Before each epoch. */
  onEpochBegin?(epoch: number, context: FitContext): void | Promise<void>;
  /** After each optimizer step. */
  onBatchEnd?(step: StepLog, context: FitContext): void | Promise<void>;
  /** After each epoch and its validation; the parameters are synced (`stateDict()` current). */
  onEpochEnd?(log: EpochLog, context: FitContext): void | Promise<void>;
  /** After the last epoch (or the one that stopped). */
  onTrainEnd?(history: History, context: FitContext): void | Promise<void>;
}
