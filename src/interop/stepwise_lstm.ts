/**
 * `StepwiseLSTM`: an LSTM that the fused kernels do not compute (Keras' `activation` other than
 * tanh, torch's `proj_size`), run step by step with the tape's functional ops.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { add, mul } from "../nn/functional.ts";
import { split } from "../nn/layout.ts";
import { Linear } from "../nn/linear.ts";
import type { Module } from "../nn/module.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import type { RecurrentInit, RecurrentResult } from "../models/recurrent.ts";
import type { Tensor } from "../tensor.ts";
import {
  activate,
  checkSequence,
  finalRow,
  initialRow,
  joinSteps,
  type StepActivations,
  stepsOf,
  StepwiseLayer,
} from "./stepwise.ts";

/** Options of {@linkcode StepwiseLSTM}. */
export interface StepwiseLSTMOptions extends StepActivations {
  /** torch's `proj_size`: `h = W_hr·(o ⊙ act(c))` of this many features (0: none, default). */
  readonly projSize?: number;
  /** Whether the recurrent product has a bias of its own (torch's `bias_hh`; default false). */
  readonly recurrentBias?: boolean;
  /** Seed of the initial weights (as `Linear`'s). */
  readonly seed?: number;
}

function checkSize(name: string, value: unknown, least: number): number {
  if (!Number.isInteger(value) || (value as number) < least) {
    throw new RangeError(`${name} must be an integer ≥ ${least}, got ${describe(value)}`);
  }
  return value as number;
}

/**
 * An LSTM computed step by step on the tape, for what the fused LSTM kernels do not compute:
 * Keras' `activation` relu, sigmoid or linear (the candidate and the cell output), any
 * `recurrent_activation`, and torch's `nn.LSTM(proj_size=P)` (`h_t = W_hr·(o ⊙ tanh c_t)`, a
 * hidden state of `P` features, a cell state of `cellSize`). Gate blocks are in torch's and
 * Keras' order `i, f, g, o`:
 * `gates = input(x_t) + recurrent(h_{t-1})`, `c_t = f ⊙ c_{t-1} + i ⊙ act(g)`,
 * `h_t = o ⊙ act(c_t)` (projected when `projSize > 0`).
 *
 * Parameters (`stateDict()`): `input.weight` `(4H, I)` and `input.bias` `(4H)`,
 * `recurrent.weight` `(4H, R)` (`R` the hidden width), `recurrent.bias` with `recurrentBias`,
 * `projection.weight` `(P, H)` with `projSize`.
 *
 * It runs anywhere and trains through the tape, but in JavaScript on the CPU whatever backend the
 * rest of the model uses, one step after the other: much slower than the fused `LSTM`.
 * Bidirectional layers of it take no `lengths`.
 *
 * @example torch's `nn.LSTM(3, 4, proj_size=2)`
 * ```ts
 * import assert from "node:assert/strict";
 * import { randn } from "../../mod.ts";
 * import { StepwiseLSTM } from "./stepwise_lstm.ts";
 * const lstm = new StepwiseLSTM(3, 4, { projSize: 2, recurrentBias: true, seed: 1 });
 * const { output, hidden, state } = await lstm.forward(randn([2, 5, 3], { seed: 2 }));
 * assert.deepEqual([output.shape, hidden.shape, state?.shape], [[2, 5, 2], [1, 2, 2], [1, 2, 4]]);
 * ```
 */
export class StepwiseLSTM extends StepwiseLayer {
  /** Width of the cell state (torch's `hidden_size`); `hiddenSize` is `projSize` if set. */
  readonly cellSize: number;
  /** torch's `proj_size` (0: none). */
  readonly projSize: number;
  /** One row of `state`. */
  readonly stateRows = 1;
  /** `x_t` to the four gate blocks, with their bias. */
  readonly input: Linear;
  /** `h_{t-1}` to the four gate blocks. */
  readonly recurrent: Linear;
  /** `o ⊙ act(c_t)` to `h_t` (with `projSize`). */
  readonly projection: Linear | null;

  /**
   * Makes the layer with weights drawn like `Linear`'s (load real ones with `loadStateDict`).
   *
   * @param inputSize Features per input step.
   * @param cellSize Width of the cell state.
   * @param options Activations, `projSize`, `recurrentBias`, `seed`.
   * @throws {RangeError} If a size is not a positive integer (`projSize` ≥ 0).
   * @throws {TypeError} If an activation is not a {@linkcode StepActivation}.
   *
   * @example Keras' `LSTM(4, activation="relu")` on 3 features
   * ```ts
   * import assert from "node:assert/strict";
   * import { StepwiseLSTM } from "./stepwise_lstm.ts";
   * const lstm = new StepwiseLSTM(3, 4, { activation: "relu" });
   * const keys = ["input.weight", "input.bias", "recurrent.weight"];
   * assert.deepEqual(Object.keys(lstm.stateDict()), keys);
   * ```
   */
  constructor(inputSize: number, cellSize: number, options: StepwiseLSTMOptions = {}) {
    checkSize("inputSize", inputSize, 1);
    checkSize("cellSize", cellSize, 1);
    const projSize = checkSize("options.projSize", options.projSize ?? 0, 0);
    super(inputSize, projSize || cellSize, options);
    this.cellSize = cellSize;
    this.projSize = projSize;
    const seed = options.seed ?? 0;
    const gates = 4 * this.cellSize;
    this.input = new Linear(inputSize, gates, { seed });
    this.recurrent = new Linear(this.hiddenSize, gates, {
      seed: seed + 1,
      bias: options.recurrentBias ?? false,
    });
    this.projection = this.projSize === 0
      ? null
      : new Linear(this.cellSize, this.projSize, { seed: seed + 2, bias: false });
  }

  /** `input`, `recurrent` and, with `projSize`, `projection`. */
  protected override children(): readonly (readonly [string, Module])[] {
    const parts: [string, Module][] = [["input", this.input], ["recurrent", this.recurrent]];
    return this.projection === null ? parts : [...parts, ["projection", this.projection]];
  }

  /**
   * Runs a batch of sequences.
   *
   * @param x `(batch, seqLen, inputSize)`.
   * @param init `hidden` `(1, B, hiddenSize)` and `state` `(1, B, cellSize)`; zeros when absent.
   * @returns `output` `(B, T, hiddenSize)`, `hidden` `(1, B, hiddenSize)`, `state`
   *   `(1, B, cellSize)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { randn } from "../../mod.ts";
   * import { StepwiseLSTM } from "./stepwise_lstm.ts";
   * const lstm = new StepwiseLSTM(3, 2, { activation: "linear", seed: 1 });
   * const { output, hidden } = await lstm.forward(randn([1, 4, 3], { seed: 2 }));
   * assert.deepEqual([...output.data.slice(6, 8)], [...hidden.data]);
   * ```
   */
  async forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult> {
    checkSequence(x, this.inputSize);
    const B = x.shape[0], H = this.cellSize;
    let h = initialRow("init.hidden", init?.hidden, B, this.hiddenSize);
    let c = initialRow("init.state", init?.state, B, H);
    const inputs = stepsOf(await this.input.forward(x));
    const outputs: TrackedTensor[] = [];
    for (let t = 0; t < inputs.length; t++) {
      const gates = add(inputs[t], await this.recurrent.forward(h));
      const [i, f, g, o] = split(gates, [H, H, H, H], 1);
      const gate = (value: Tensor) => activate(this.recurrentActivation, value);
      c = add(mul(gate(f), c), mul(gate(i), activate(this.activation, g)));
      const out = mul(gate(o), activate(this.activation, c));
      h = this.projection === null ? out : await this.projection.forward(out);
      outputs.push(h as TrackedTensor);
    }
    return { output: joinSteps(outputs), hidden: finalRow(h), state: finalRow(c) };
  }
}
