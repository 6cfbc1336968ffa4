/**
 * `KerasRecurrent`: a recurrent layer with what a Keras recurrent layer adds around it in a
 * Sequential model: `go_backwards` (read the steps last to first and return them in that order),
 * `return_sequences` (every step, or the final state), and a `Bidirectional`'s `merge_mode`.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { Module } from "../nn/module.ts";
import { add, mul, reshape } from "../nn/functional.ts";
import { concat, flip, split } from "../nn/layout.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import { Bidirectional } from "../models/bidirectional.ts";
import type { RecurrentLayer } from "../models/recurrent.ts";
import type { Tensor } from "../tensor.ts";

/** Keras' `merge_mode`s of `Bidirectional` read here. */
export type KerasMergeMode = "concat" | "sum" | "ave" | "mul";

/** Options of {@linkcode KerasRecurrent}. */
export interface KerasRecurrentOptions {
  /** Keras' `go_backwards`: read the steps last to first (the outputs stay in that order). */
  readonly goBackwards?: boolean;
  /** Keras' `return_sequences`: every step `(B, T, F)`, else the final state `(B, F)`. */
  readonly returnSequences?: boolean;
  /** A `Bidirectional`'s `merge_mode` (default `"concat"`). */
  readonly mergeMode?: KerasMergeMode;
}

const MERGE_MODES: readonly KerasMergeMode[] = ["concat", "sum", "ave", "mul"];

/**
 * A recurrent layer (`LSTM`, `GRU`, `RNN`, or a `Bidirectional` of them) as Keras runs it in a
 * Sequential model. Its parameters are the layer's (`layer.` in `stateDict()`).
 *
 * @example Keras' `Bidirectional(LSTM(4), merge_mode="sum")` on 3 features
 * ```ts
 * import assert from "node:assert/strict";
 * import { Bidirectional, LSTM, randn } from "../../mod.ts";
 * import { KerasRecurrent } from "./keras_recurrent.ts";
 * const layer = new KerasRecurrent(
 *   new Bidirectional(new LSTM(3, 4, { seed: 1 }), new LSTM(3, 4, { seed: 2 })),
 *   { mergeMode: "sum" },
 * );
 * assert.deepEqual((await layer.forward(randn([2, 5, 3]))).shape, [2, 4]);
 * ```
 */
export class KerasRecurrent extends Module {
  /** The recurrent layer. */
  readonly layer: RecurrentLayer & Module;
  /** Whether the steps are read last to first. */
  readonly goBackwards: boolean;
  /** Whether every step is returned (else the final state). */
  readonly returnSequences: boolean;
  /** How a `Bidirectional`'s two directions are joined. */
  readonly mergeMode: KerasMergeMode;

  /**
   * Wraps `layer`.
   *
   * @param layer The recurrent layer.
   * @param options `goBackwards`, `returnSequences`, `mergeMode`.
   * @throws {TypeError} If `mergeMode` is not one of `concat`, `sum`, `ave`, `mul`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * import { KerasRecurrent } from "./keras_recurrent.ts";
   * assert.equal(new KerasRecurrent(new LSTM(2, 3)).returnSequences, false);
   * ```
   */
  constructor(layer: RecurrentLayer & Module, options: KerasRecurrentOptions = {}) {
    super();
    this.layer = layer;
    this.goBackwards = options.goBackwards ?? false;
    this.returnSequences = options.returnSequences ?? false;
    this.mergeMode = options.mergeMode ?? "concat";
    if (!MERGE_MODES.includes(this.mergeMode)) {
      throw new TypeError(
        `options.mergeMode must be one of ${MERGE_MODES.join(", ")}, got ${
          describe(this.mergeMode)
        }`,
      );
    }
  }

  /** No parameters of its own: they are the layer's. */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /** The wrapped layer, as `layer`. */
  protected override children(): readonly (readonly [string, Module])[] {
    return [["layer", this.layer]];
  }

  /** Features per input step. */
  get inputSize(): number {
    return this.layer.inputSize;
  }

  /** Features per output step (or of the final state). */
  get outputSize(): number {
    const width = this.layer.outputSize;
    return this.layer instanceof Bidirectional && this.mergeMode !== "concat" ? width / 2 : width;
  }

  /**
   * Runs the layer as Keras does.
   *
   * @param x `(batch, seqLen, inputSize)`.
   * @returns `(batch, seqLen, outputSize)` with `returnSequences`, else `(batch, outputSize)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, randn } from "../../mod.ts";
   * import { KerasRecurrent } from "./keras_recurrent.ts";
   * const gru = new KerasRecurrent(new GRU(3, 2), { returnSequences: true, goBackwards: true });
   * assert.deepEqual((await gru.forward(randn([1, 4, 3]))).shape, [1, 4, 2]);
   * ```
   */
  async forward(x: Tensor): Promise<TrackedTensor> {
    const { output, hidden } = await this.layer.forward(this.goBackwards ? flip(x, 1) : x);
    if (!(this.layer instanceof Bidirectional)) {
      if (this.returnSequences) return output as TrackedTensor;
      const [, B, H] = hidden.shape;
      return reshape(hidden, [B, H]);
    }
    if (this.returnSequences) {
      const H = output.shape[2] / 2;
      const [forward, backward] = split(output, [H, H], 2);
      return merge(forward, backward, this.mergeMode, 2);
    }
    // The final states (2, B, H): a Bidirectional's backward one is its output at step 0, which
    // Keras takes too.
    const [, B, H] = hidden.shape;
    const [forward, backward] = split(hidden, [1, 1], 0).map((part) => reshape(part, [B, H]));
    return merge(forward, backward, this.mergeMode, 1);
  }
}

/** The two directions joined by Keras' merge mode, on `axis` for `concat`. */
function merge(a: Tensor, b: Tensor, mode: KerasMergeMode, axis: number): TrackedTensor {
  switch (mode) {
    case "concat":
      return concat([a, b], axis);
    case "sum":
      return add(a, b);
    case "ave":
      return mul(add(a, b), { shape: a.shape, data: new Float32Array(a.data.length).fill(0.5) });
    case "mul":
      return mul(a, b);
  }
}
