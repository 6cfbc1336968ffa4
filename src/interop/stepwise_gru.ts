/**
 * `StepwiseGRU`: Keras' GRU where the fused GRU does not compute it (`reset_after=False`, an
 * `activation` other than tanh), run step by step with the tape's functional ops.
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
  subtract,
} from "./stepwise.ts";

/** Options of {@linkcode StepwiseGRU}. */
export interface StepwiseGRUOptions extends StepActivations {
  /**
   * Keras' `reset_after` (default `true`): the reset gate multiplies the recurrent product
   * (`r ⊙ (U_h·h + b_rh)`, torch's GRU) rather than the hidden state before it
   * (`U_h·(r ⊙ h)`).
   */
  readonly resetAfter?: boolean;
  /** Seed of the initial weights (as `Linear`'s). */
  readonly seed?: number;
}

/**
 * Keras' GRU computed step by step on the tape: gate blocks in Keras' order `z, r, h`,
 * `z = σ(x W_z + b_z + h U_z)`, `r = σ(x W_r + b_r + h U_r)`,
 * `h̃ = act(x W_h + b_h + U_h (r ⊙ h))` (`reset_after=False`, one bias) or
 * `act(x W_h + b_h + r ⊙ (U_h h + b_rh))` (`reset_after=True`, input and recurrent biases),
 * `h_t = z ⊙ h_{t-1} + (1 - z) ⊙ h̃`.
 *
 * Parameters (`stateDict()`): `input.weight` `(3H, I)` and `input.bias` `(3H)` (blocks z, r, h),
 * `gates.weight` `(2H, H)` (z, r), `candidate.weight` `(H, H)`, and with `resetAfter` the
 * recurrent biases `gates.bias` `(2H)` and `candidate.bias` `(H)`.
 *
 * It runs anywhere and trains through the tape, but in JavaScript on the CPU whatever backend the
 * rest of the model uses, one step after the other: much slower than the fused `GRU`.
 *
 * @example Keras' `GRU(4, reset_after=False)` on 3 features
 * ```ts
 * import assert from "node:assert/strict";
 * import { randn } from "../../mod.ts";
 * import { StepwiseGRU } from "./stepwise_gru.ts";
 * const gru = new StepwiseGRU(3, 4, { resetAfter: false, seed: 1 });
 * const { output, hidden } = await gru.forward(randn([2, 5, 3], { seed: 2 }));
 * assert.deepEqual([output.shape, hidden.shape], [[2, 5, 4], [1, 2, 4]]);
 * ```
 */
export class StepwiseGRU extends StepwiseLayer {
  /** Keras' `reset_after`. */
  readonly resetAfter: boolean;
  /** No cell state. */
  readonly stateRows = 0;
  /** `x_t` to the three blocks z, r, h, with their bias. */
  readonly input: Linear;
  /** `h_{t-1}` to the blocks z, r. */
  readonly gates: Linear;
  /** `U_h`: `h_{t-1}` (`resetAfter`) or `r ⊙ h_{t-1}` to the candidate's block. */
  readonly candidate: Linear;

  /**
   * Makes the layer with weights drawn like `Linear`'s (load real ones with `loadStateDict`).
   *
   * @param inputSize Features per input step.
   * @param hiddenSize Width of the hidden state.
   * @param options `resetAfter`, activations, `seed`.
   * @throws {RangeError} If a size is not a positive integer.
   * @throws {TypeError} If an activation is not a {@linkcode StepActivation} or `resetAfter`
   *   not a boolean.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { StepwiseGRU } from "./stepwise_gru.ts";
   * const gru = new StepwiseGRU(3, 4, { resetAfter: false });
   * const keys = ["input.weight", "input.bias", "gates.weight", "candidate.weight"];
   * assert.deepEqual(Object.keys(gru.stateDict()), keys);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, options: StepwiseGRUOptions = {}) {
    for (const [name, value] of [["inputSize", inputSize], ["hiddenSize", hiddenSize]] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`${name} must be a positive integer, got ${describe(value)}`);
      }
    }
    const resetAfter = options.resetAfter ?? true;
    if (typeof resetAfter !== "boolean") {
      throw new TypeError(`options.resetAfter must be a boolean, got ${describe(resetAfter)}`);
    }
    super(inputSize, hiddenSize, options);
    this.resetAfter = resetAfter;
    const seed = options.seed ?? 0, bias = this.resetAfter;
    this.input = new Linear(inputSize, 3 * hiddenSize, { seed });
    this.gates = new Linear(hiddenSize, 2 * hiddenSize, { seed: seed + 1, bias });
    this.candidate = new Linear(hiddenSize, hiddenSize, { seed: seed + 2, bias });
  }

  /** `input`, `gates`, `candidate`. */
  protected override children(): readonly (readonly [string, Module])[] {
    return [["input", this.input], ["gates", this.gates], ["candidate", this.candidate]];
  }

  /**
   * Runs a batch of sequences.
   *
   * @param x `(batch, seqLen, inputSize)`.
   * @param init `hidden` `(1, B, hiddenSize)`; zeros when absent.
   * @returns `output` `(B, T, hiddenSize)` and `hidden` `(1, B, hiddenSize)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { randn } from "../../mod.ts";
   * import { StepwiseGRU } from "./stepwise_gru.ts";
   * const gru = new StepwiseGRU(3, 2, { resetAfter: false, seed: 1 });
   * const { output, hidden } = await gru.forward(randn([1, 4, 3], { seed: 2 }));
   * assert.deepEqual([...output.data.slice(6, 8)], [...hidden.data]);
   * ```
   */
  async forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult> {
    checkSequence(x, this.inputSize);
    if (init?.state !== undefined) {
      throw new TypeError("init.state must be absent: a GRU keeps no cell state");
    }
    const B = x.shape[0], H = this.hiddenSize;
    let h = initialRow("init.hidden", init?.hidden, B, H);
    const inputs = stepsOf(await this.input.forward(x));
    const outputs: TrackedTensor[] = [];
    for (const step of inputs) {
      const [xz, xr, xh] = split(step, [H, H, H], 1);
      const [hz, hr] = split(await this.gates.forward(h), [H, H], 1);
      const z = activate(this.recurrentActivation, add(xz, hz));
      const r = activate(this.recurrentActivation, add(xr, hr));
      const recurrent = this.resetAfter
        ? mul(r, await this.candidate.forward(h))
        : await this.candidate.forward(mul(r, h));
      const candidate = activate(this.activation, add(xh, recurrent));
      // z ⊙ h + (1 - z) ⊙ h̃, as h̃ + z ⊙ (h - h̃)
      h = add(candidate, mul(z, subtract(h, candidate)));
      outputs.push(h as TrackedTensor);
    }
    return { output: joinSteps(outputs), hidden: finalRow(h) };
  }
}
