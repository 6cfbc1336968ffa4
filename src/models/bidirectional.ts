/**
 * `Bidirectional`: one layer reads the sequence forward, another backward, and their outputs are
 * concatenated on the feature axis, as torch's `bidirectional=True`.
 *
 * @module
 */

import { describeKind } from "../errors.ts";
import { Module } from "../nn/module.ts";
import { disposedError } from "./runner_cache.ts";
import { concat, flip } from "../nn/layout.ts";
import { record, type TrackedTensor } from "../nn/tape.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { LSTM } from "./lstm.ts";
import { checkLengths } from "./packed.ts";
import {
  checkRecurrentLayer,
  joinResults,
  type RecurrentInit,
  type RecurrentLayer,
  type RecurrentResult,
  splitInit,
} from "./recurrent.ts";

/** The initial state of a {@linkcode Bidirectional}, and the lengths of a padded batch. */
export interface BidirectionalInit {
  /** Initial hidden states `(hiddenRows, B, H)`, forward's rows first; zeros when absent. */
  readonly hidden?: Tensor;
  /** Initial cell states, for layers that keep them; give it with `hidden`. */
  readonly state?: Tensor;
  /**
   * Steps of each sequence (integers in `[1, seqLen]`), as torch's packed sequences: the forward
   * layer stops at each length, the backward layer reads each sequence reversed within its own
   * length; outputs past a length are zero. Both layers must take lengths (the LSTM family).
   */
  readonly lengths?: readonly number[] | Int32Array;
}

/**
 * Whether `layer` stops at the `lengths` of a padded batch: the LSTM family, and a
 * `Bidirectional` of two such layers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { takesLengths } from "./bidirectional.ts";
 * import { Bidirectional, GRU, LSTM } from "../../mod.ts";
 * assert.equal(takesLengths(new Bidirectional(new LSTM(2, 3), new LSTM(2, 3))), true);
 * assert.equal(takesLengths(new GRU(2, 3)), false);
 * ```
 */
export function takesLengths(layer: unknown): layer is LSTM | Bidirectional {
  return layer instanceof LSTM ||
    (layer instanceof Bidirectional && takesLengths(layer.forwardLayer) &&
      takesLengths(layer.backwardLayer));
}

/**
 * `(B, T, F)` with each sequence's first `lengths[b]` steps in reverse order and the steps past it
 * left where they are; recorded (its own inverse, so the gradient is permuted the same way).
 */
function reverseWithinLengths(x: Tensor, lengths: Int32Array): TrackedTensor {
  const [B, T] = x.shape, F = x.data.length / (B * T);
  const permute = (data: Float32Array): Float32Array => {
    const out = data.slice();
    for (let b = 0; b < B; b++) {
      const length = lengths[b];
      for (let t = 0; t < length; t++) {
        const from = (b * T + length - 1 - t) * F;
        out.set(data.subarray(from, from + F), (b * T + t) * F);
      }
    }
    return out;
  };
  return record("ReverseWithinLengths", [{ shape: [...x.shape], data: permute(x.data) }], [x], (
    [grad],
  ) => [permute(grad!)])[0];
}

/**
 * A forward and a backward layer over the same input. The backward layer reads the steps from the
 * last to the first (a recorded time flip, so gradients flow); its outputs are stored at their
 * original positions after the forward layer's: `output` `(B, T, forward.outputSize +
 * backward.outputSize)`, `hidden` `(2, B, H)` (forward, then backward after reading step 0),
 * `state` likewise, and both results in `layers`. Its `stateDict()` names the parts
 * `forward.*` and `backward.*`.
 *
 * @example A bidirectional LSTM
 * ```ts
 * import assert from "node:assert/strict";
 * import { Bidirectional, LSTM, randn } from "../../mod.ts";
 * const bi = new Bidirectional(
 *   new LSTM(3, 4, { backend: "js", seed: 1 }),
 *   new LSTM(3, 4, { backend: "js", seed: 2 }),
 * );
 * const { output, hidden, state } = await bi.forward(randn([2, 5, 3], { seed: 3 }));
 * assert.deepEqual([output.shape, hidden.shape, state?.shape], [[2, 5, 8], [2, 2, 4], [2, 2, 4]]);
 * ```
 */
export class Bidirectional extends Module implements RecurrentLayer {
  /** The layer that reads the sequence forward. */
  readonly forwardLayer: RecurrentLayer;
  /** The layer that reads the sequence backward. */
  readonly backwardLayer: RecurrentLayer;

  /**
   * Pairs two layers with the same `inputSize`.
   *
   * @param forward Reads steps `0 … T−1`.
   * @param backward Reads steps `T−1 … 0`.
   * @throws {RangeError} If the input sizes differ.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Bidirectional, GRU } from "../../mod.ts";
   * const bi = new Bidirectional(new GRU(3, 4), new GRU(3, 4));
   * assert.deepEqual([bi.inputSize, bi.outputSize, bi.hiddenRows], [3, 8, 2]);
   * assert.throws(() => new Bidirectional(new GRU(3, 4), new GRU(2, 4)), /inputSize/);
   * ```
   */
  constructor(forward: RecurrentLayer, backward: RecurrentLayer) {
    super();
    this.forwardLayer = checkRecurrentLayer("forward", forward);
    this.backwardLayer = checkRecurrentLayer("backward", backward);
    if (forward.inputSize !== backward.inputSize) {
      throw new RangeError(
        `forward and backward must read the same inputSize, got ${forward.inputSize} and ${backward.inputSize}`,
      );
    }
  }

  /** Whether `dispose()` was called: final, every later forward throws. */
  #disposed = false;

  get #parts(): readonly RecurrentLayer[] {
    return [this.forwardLayer, this.backwardLayer];
  }

  /** Features per input step. */
  get inputSize(): number {
    return this.forwardLayer.inputSize;
  }

  /** The forward layer's state width. */
  get hiddenSize(): number {
    return this.forwardLayer.hiddenSize;
  }

  /** Both layers' output features. */
  get outputSize(): number {
    return this.forwardLayer.outputSize + this.backwardLayer.outputSize;
  }

  /** Rows of the joined `hidden`: forward's, then backward's. */
  get hiddenRows(): number {
    return this.forwardLayer.hiddenRows + this.backwardLayer.hiddenRows;
  }

  /** Rows of the joined `state`: forward's, then backward's. */
  get stateRows(): number {
    return this.forwardLayer.stateRows + this.backwardLayer.stateRows;
  }

  /**
   * No parameters of its own: they are its layers'.
   *
   * @example Every key of the state dict belongs to a direction
   * ```ts
   * import assert from "node:assert/strict";
   * import { Bidirectional, RNN } from "../../mod.ts";
   * const bi = new Bidirectional(new RNN(3, 4), new RNN(3, 4));
   * assert.ok(Object.keys(bi.stateDict()).every((key) => /^(forward|backward)\./.test(key)));
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * The layers, named as in `stateDict()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Bidirectional, RNN } from "../../mod.ts";
   * const bi = new Bidirectional(new RNN(3, 4), new RNN(3, 4));
   * assert.deepEqual(Object.keys(bi.stateDict()).filter((key) => key.endsWith("weight_ih")), [
   *   "forward.weight_ih",
   *   "backward.weight_ih",
   * ]);
   * ```
   */
  protected override children(): readonly (readonly [string, Module])[] {
    return [["forward", this.forwardLayer], ["backward", this.backwardLayer]];
  }

  /**
   * Runs both directions.
   *
   * @param x Input `(batch, seqLen, inputSize)`.
   * @param init Initial states `hidden` `(hiddenRows, B, H)` (forward's rows first) and, for
   *   layers with cell states, `state`; zeros when absent. `lengths` of a padded batch: each
   *   direction reads each sequence within its own length, as torch's packed bidirectional
   *   layers (`hidden` of the backward direction is then after reading step 0).
   *
   * @example The backward half of step 0 has read the whole sequence
   * ```ts
   * import assert from "node:assert/strict";
   * import { Bidirectional, GRU, randn } from "../../mod.ts";
   * const bi = new Bidirectional(new GRU(3, 2, { seed: 1 }), new GRU(3, 2, { seed: 2 }));
   * const { output, hidden } = await bi.forward(randn([1, 4, 3], { seed: 3 }));
   * assert.deepEqual(output.shape, [1, 4, 4]);
   * assert.deepEqual([...output.data.slice(2, 4)], [...hidden.data.slice(2, 4)]);
   * ```
   */
  async forward(x: Tensor, init?: BidirectionalInit): Promise<RecurrentResult> {
    if (this.#disposed) throw disposedError(this.constructor.name);
    const lengths = init?.lengths;
    if (lengths !== undefined) return await this.#forwardPacked(x, init!, lengths);
    const [forwardInit, backwardInit] = splitInit(this.#parts, init as RecurrentInit | undefined);
    const ahead = await this.forwardLayer.forward(x, forwardInit);
    const back = await this.backwardLayer.forward(flip(x, 1), backwardInit);
    const output = concat([ahead.output, flip(back.output, 1)], 2);
    return joinResults(output, this.#parts, [ahead, back]);
  }

  /** Both directions, each sequence read within its own length. */
  async #forwardPacked(
    x: Tensor,
    init: BidirectionalInit,
    given: readonly number[] | Int32Array,
  ): Promise<RecurrentResult> {
    for (const [name, part] of [["forward", this.forwardLayer], ["backward", this.backwardLayer]]) {
      if (!takesLengths(part)) {
        throw new RangeError(
          `init.lengths needs both directions to stop at a length (LSTM and the ArrayLSTM ` +
            `variants); the ${name} layer is ${describeKind(part)}: pass sequences of one ` +
            "length (omit lengths) or run them one by one",
        );
      }
    }
    checkTensor("x", x);
    const lengths = checkLengths(given, x.shape[0], x.shape[1]);
    const { lengths: _, ...states } = init;
    const inits = splitInit(
      this.#parts,
      states.hidden === undefined && states.state === undefined
        ? undefined
        : states as RecurrentInit,
    );
    const [ahead, back] = [
      await (this.forwardLayer as LSTM).forward(x, { ...inits[0], lengths }),
      await (this.backwardLayer as LSTM).forward(reverseWithinLengths(x, lengths), {
        ...inits[1],
        lengths,
      }),
    ];
    const output = concat([ahead.output, reverseWithinLengths(back.output, lengths)], 2);
    return joinResults(output, this.#parts, [ahead, back]);
  }

  /**
   * Frees both layers' backend memory for good: a later `forward` throws. Disposing twice does
   * nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Bidirectional, LSTM, randn } from "../../mod.ts";
   * const bi = new Bidirectional(new LSTM(3, 4, { backend: "js" }), new LSTM(3, 4, { backend: "js" }));
   * bi.dispose();
   * assert.equal(bi.outputSize, 8);
   * await assert.rejects(bi.forward(randn([1, 2, 3])), /this Bidirectional was disposed/);
   * ```
   */
  dispose(): void {
    this.#disposed = true;
    for (const layer of this.#parts) layer.dispose?.();
  }

  /**
   * Same as {@linkcode Bidirectional.dispose}, for `using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Bidirectional, GRU, randn } from "../../mod.ts";
   * using bi = new Bidirectional(new GRU(3, 4), new GRU(3, 4));
   * assert.deepEqual((await bi.forward(randn([1, 2, 3]))).output.shape, [1, 2, 8]);
   * ```
   */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
