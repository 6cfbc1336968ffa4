/**
 * What the step-by-step recurrent layers (`StepwiseLSTM`, `StepwiseGRU`) share: their base class,
 * their activations composed of the tape's functional ops, and the cutting of a sequence into
 * steps and of an initial state into rows.
 *
 * @module
 */

import { hardSigmoidSlope } from "../contract/mod.ts";
import { checkShape, describe } from "../errors.ts";
import { add, mul, relu, reshape, sigmoid, tanh } from "../nn/functional.ts";
import { concat, split } from "../nn/layout.ts";
import { Module } from "../nn/module.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import type { RecurrentInit, RecurrentLayer, RecurrentResult } from "../models/recurrent.ts";
import { checkTensor, type Tensor, zeros } from "../tensor.ts";

/**
 * The activations a step-by-step layer computes: `"linear"` is the identity, the hard sigmoids
 * are Keras 1/2's `clip(0.2x + 0.5, 0, 1)` and Keras 3's `clip(x/6 + 0.5, 0, 1)`.
 */
export type StepActivation =
  | "tanh"
  | "relu"
  | "sigmoid"
  | "linear"
  | "hard_sigmoid"
  | "hard_sigmoid_keras3";

/** Every {@linkcode StepActivation}. */
export const STEP_ACTIVATIONS: readonly StepActivation[] = [
  "tanh",
  "relu",
  "sigmoid",
  "linear",
  "hard_sigmoid",
  "hard_sigmoid_keras3",
];

/** Checks that `value` is one of {@linkcode STEP_ACTIVATIONS}. */
export function checkStepActivation(name: string, value: unknown): StepActivation {
  if (!STEP_ACTIVATIONS.includes(value as StepActivation)) {
    throw new TypeError(
      `${name} must be one of ${STEP_ACTIVATIONS.join(", ")}, got ${describe(value)}`,
    );
  }
  return value as StepActivation;
}

/** The activations in the options of a step-by-step layer (Keras' `activation` and friends). */
export interface StepActivations {
  /** The candidate's (and an LSTM's cell output's) activation (default tanh). */
  readonly activation?: StepActivation;
  /** The gates' activation (default sigmoid). */
  readonly recurrentActivation?: StepActivation;
}

/**
 * A recurrent layer computed step by step on the tape by its `Linear`s: the sizes, the checked
 * activations and the one row of `hidden` that `StepwiseLSTM` and `StepwiseGRU` share.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StepwiseGRU } from "./stepwise_gru.ts";
 * import { StepwiseLayer } from "./stepwise.ts";
 * assert.ok(new StepwiseGRU(3, 4) instanceof StepwiseLayer);
 * ```
 */
export abstract class StepwiseLayer extends Module implements RecurrentLayer {
  /** Features per input step. */
  readonly inputSize: number;
  /** Width of the hidden state and the output. */
  readonly hiddenSize: number;
  /** The candidate's (and an LSTM's cell output's) activation. */
  readonly activation: StepActivation;
  /** The gates' activation. */
  readonly recurrentActivation: StepActivation;
  /** One row of `hidden`. */
  readonly hiddenRows = 1;
  /** Rows of `state`: 1 for an LSTM, 0 for a GRU. */
  abstract readonly stateRows: number;

  /**
   * Keeps the sizes (checked by the subclass) and checks the activations of `options`.
   *
   * @throws {TypeError} If an activation is not a {@linkcode StepActivation}.
   */
  protected constructor(inputSize: number, hiddenSize: number, options: StepActivations) {
    super();
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
    this.activation = checkStepActivation("options.activation", options.activation ?? "tanh");
    this.recurrentActivation = checkStepActivation(
      "options.recurrentActivation",
      options.recurrentActivation ?? "sigmoid",
    );
  }

  /** Features per output step: `hiddenSize`. */
  get outputSize(): number {
    return this.hiddenSize;
  }

  /** No parameters of its own: they are its `Linear`s'. */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /** Runs a batch of sequences `(batch, seqLen, inputSize)` from `init` (zeros when absent). */
  abstract forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult>;
}

/** A tensor of `shape` filled with `value`. */
export function filled(shape: readonly number[], value: number): Tensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value);
  return { shape: [...shape], data };
}

/**
 * `activation(x)`, recorded on the tape. A hard sigmoid is `relu(y) - relu(y - 1)` of
 * `y = slope·x + 0.5`, which is its clip to [0, 1] with the same gradient almost everywhere.
 */
export function activate(activation: StepActivation, x: Tensor): TrackedTensor {
  switch (activation) {
    case "tanh":
      return tanh(x);
    case "relu":
      return relu(x);
    case "sigmoid":
      return sigmoid(x);
    case "linear":
      return reshape(x, x.shape);
    case "hard_sigmoid":
    case "hard_sigmoid_keras3": {
      const y = add(mul(x, filled(x.shape, hardSigmoidSlope(activation))), filled(x.shape, 0.5));
      const over = relu(add(y, filled(x.shape, -1)));
      return add(relu(y), mul(over, filled(x.shape, -1)));
    }
  }
}

/** `a - b`, recorded. */
export function subtract(a: Tensor, b: Tensor): TrackedTensor {
  return add(a, mul(b, filled(b.shape, -1)));
}

/** Checks that `x` is `(batch, seqLen ≥ 1, features)`. */
export function checkSequence(x: Tensor, features: number): void {
  checkTensor("x", x);
  checkShape("x", x.shape, [-1, -1, features], `(batch, seqLen, inputSize = ${features})`);
  if (x.shape[1] === 0) throw new RangeError("x must hold at least one step, got seqLen 0");
}

/** The steps of `x` `(B, T, F)` as `T` tensors `(B, F)`. */
export function stepsOf(x: Tensor): TrackedTensor[] {
  const [B, T, F] = x.shape;
  return split(x, new Array(T).fill(1), 1).map((step) => reshape(step, [B, F]));
}

/** The steps `(B, F)` joined as `(B, T, F)`. */
export function joinSteps(steps: readonly Tensor[]): TrackedTensor {
  return concat(steps.map((step) => reshape(step, [step.shape[0], 1, step.shape[1]])), 1);
}

/** An initial state `(1, B, width)` as `(B, width)`, or zeros when absent. */
export function initialRow(
  name: string,
  value: Tensor | undefined,
  batch: number,
  width: number,
): Tensor {
  if (value === undefined) return zeros([batch, width]);
  checkTensor(name, value);
  checkShape(name, value.shape, [1, batch, width], `(1, batch = ${batch}, ${width})`);
  return reshape(value, [batch, width]);
}

/** A final state `(B, width)` as `(1, B, width)`. */
export function finalRow(value: Tensor): TrackedTensor {
  return reshape(value, [1, ...value.shape]);
}
