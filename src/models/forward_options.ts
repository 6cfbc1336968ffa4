/**
 * What an LSTM-family `forward` takes and returns: the recurrent state, the forward options with
 * their opt-in outputs, and the result.
 *
 * @module
 */

import type { SequenceExtras } from "../contract/mod.ts";
import { describe } from "../errors.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import type { Tensor } from "../tensor.ts";
import {
  type EXTRA_OUTPUTS,
  offersExtra,
  outputOwner,
  type VariantKind,
  VARIANTS,
} from "../variants.ts";

/** A recurrent state: the hidden state `(1, B, H)` and the cell states `(k, B, H)`. */
export interface RecurrentState {
  /** Hidden state, shape `(1, batch, hiddenSize)`. */
  readonly hidden: Tensor;
  /** Cell states, shape `(k, batch, hiddenSize)` (`k = 1` for `LSTM`). */
  readonly state: Tensor;
}

/**
 * The second argument of `forward`: an initial state (both tensors, or neither for zeros) and
 * the length of each sequence.
 */
export interface ForwardOptions {
  /** Initial hidden state, shape `(1, batch, hiddenSize)`; give it with `state`. */
  readonly hidden?: Tensor;
  /** Initial cell states, shape `(k, batch, hiddenSize)`; give it with `hidden`. */
  readonly state?: Tensor;
  /**
   * Steps of each sequence (integers in `[1, seqLen]`), as PyTorch's packed sequences: a sequence
   * stops at its length, its outputs past it are zero and its final `hidden`/`state` are those
   * at its length. Omitted: every sequence runs all `seqLen` steps.
   */
  readonly lengths?: readonly number[] | Int32Array;
  /**
   * `AttentionArrayLSTM` only: also return `attention`, the lane weights of every step, written
   * by the backend's kernels (nothing is computed or copied when `false`, the default).
   */
  readonly returnAttention?: boolean;
  /**
   * `StochasticArrayLSTM` only: also return `lanes`, the lane read out at every step and unit,
   * written by the backend's kernels (nothing is computed or copied when `false`, the default).
   */
  readonly returnLanes?: boolean;
}

/** Lane indices: integers in `[0, k)`, or -1 for a step past a sequence's length. */
export interface LaneIndices {
  /** `(batch, seqLen, hiddenSize)`. */
  readonly shape: readonly number[];
  /** The indices, row-major. */
  readonly data: Int32Array;
}

/**
 * What `forward` returns. In training mode (or when `x` or the initial state carries history) the
 * three tensors carry history: a loss computed from any of them back-propagates through all steps.
 */
export interface ForwardResult extends RecurrentState {
  /** The hidden state after every step, shape `(batch, seqLen, hiddenSize)`. */
  readonly output: TrackedTensor;
  /** Final hidden state, shape `(1, batch, hiddenSize)`. */
  readonly hidden: TrackedTensor;
  /** Final cell states, shape `(k, batch, hiddenSize)`. */
  readonly state: TrackedTensor;
  /**
   * With `returnAttention`: the attention weights `s` of every step, unit and lane, shape
   * `(batch, seqLen, hiddenSize, k)` (max-pooled when the model pools), summing to 1 over the
   * lanes without pooling; zero past a sequence's `lengths`. A plain tensor: it carries no
   * gradient, in training mode too.
   */
  readonly attention?: Tensor;
  /**
   * With `returnLanes`: the lane (`0..k-1`) whose output was read out at every step and unit,
   * shape `(batch, seqLen, hiddenSize)` (the largest output gate, the first lane winning a tie);
   * -1 past a sequence's `lengths`. Carries no gradient.
   */
  readonly lanes?: LaneIndices;
}

/** The options of {@linkcode ForwardOptions} that ask for an opt-in output, by output. */
const OUTPUT_OPTIONS = {
  attention: "returnAttention",
  lanes: "returnLanes",
} as const satisfies { [output in keyof typeof EXTRA_OUTPUTS]: keyof ForwardOptions };

/**
 * The opt-in outputs `init` asks for (`undefined` for none), checked against the variant a model
 * runs: each flag a boolean, and an output only of a variant with its flag in the variant table
 * (`returnAttention` needs `attention`, `returnLanes` needs `argmax`).
 *
 * @param model The model's class name, as the error names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { requestedOutputs } from "./forward_options.ts";
 * assert.deepEqual(requestedOutputs({ returnLanes: true }, "stochastic", "StochasticArrayLSTM"), {
 *   attention: false,
 *   lanes: true,
 * });
 * assert.equal(requestedOutputs({}, "lstm", "LSTM"), undefined);
 * assert.throws(() => requestedOutputs({ returnLanes: true }, "lstm", "LSTM"), /only for/);
 * ```
 */
export function requestedOutputs(
  init: ForwardOptions | undefined | null,
  kind: VariantKind,
  model: string,
): SequenceExtras | undefined {
  const asked = { attention: false, lanes: false };
  for (const output of Object.keys(OUTPUT_OPTIONS) as (keyof typeof OUTPUT_OPTIONS)[]) {
    const option = OUTPUT_OPTIONS[output];
    const value = init?.[option];
    if (value === undefined) continue;
    if (typeof value !== "boolean") {
      throw new TypeError(`init.${option} must be a boolean, got ${describe(value)}`);
    }
    if (value && !offersExtra(kind, output)) {
      throw new TypeError(
        `init.${option} is only for ${VARIANTS[outputOwner(output)].model} (no other class has ` +
          `${output} to return), got a ${model}: leave the option out`,
      );
    }
    asked[output] = value;
  }
  return asked.attention || asked.lanes ? asked : undefined;
}
