/**
 * `Stacked`: recurrent layers run one after another, each reading the previous one's output (a
 * multi-layer `nn.LSTM`, or a Keras `Sequential` of LSTMs).
 *
 * @module
 */

import { describe } from "../errors.ts";
import { disposedError } from "./runner_cache.ts";
import { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import {
  checkRecurrentLayer,
  joinResults,
  type RecurrentInit,
  type RecurrentLayer,
  type RecurrentResult,
  splitInit,
} from "./recurrent.ts";

/**
 * Layers run in order, layer `n + 1` reading layer `n`'s output. `forward` gives the last layer's
 * `output`, every layer's own result in `layers`, and `hidden`/`state` joined in torch's
 * `(L·D, B, H)` layout (which needs one `hiddenSize`; else reading them throws and `layers` has
 * each layer's). Trainable: its `parameters()` are its layers', its `stateDict()` names them
 * `0.i2h.weight`, `1.i2h.weight`, ... as `nn.Sequential` does.
 *
 * @example Two LSTM layers, trained together
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, mseLoss, randn, Stacked, zeros } from "../../mod.ts";
 * const stack = new Stacked([
 *   new LSTM(3, 4, { backend: "js", seed: 1 }),
 *   new LSTM(4, 4, { backend: "js", seed: 2 }),
 * ]).train();
 * const { output, hidden, state, layers } = await stack.forward(randn([2, 5, 3], { seed: 3 }));
 * assert.deepEqual([output.shape, hidden.shape, state?.shape], [[2, 5, 4], [2, 2, 4], [2, 2, 4]]);
 * assert.equal(layers?.length, 2);
 * await mseLoss(output, zeros([2, 5, 4])).backward();
 * assert.ok(stack.parameters().every((p) => p.grad !== null));
 * ```
 */
export class Stacked extends Module implements RecurrentLayer {
  /** The layers, in order. */
  readonly layers: readonly RecurrentLayer[];
  /** Whether `dispose()` was called: final, every later forward throws. */
  #disposed = false;

  /**
   * Composes layers; each layer's `inputSize` must be the previous one's `outputSize`.
   *
   * @param layers One or more recurrent layers (used as they are, not copied).
   * @throws {RangeError} If a layer's `inputSize` does not fit the previous layer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, LSTM, Stacked } from "../../mod.ts";
   * const stack = new Stacked([new LSTM(3, 4, { backend: "js" }), new GRU(4, 2)]);
   * assert.deepEqual([stack.inputSize, stack.outputSize, stack.hiddenRows], [3, 2, 2]);
   * assert.throws(() => new Stacked([new GRU(3, 4), new GRU(5, 2)]), /layers\[1\]\.inputSize/);
   * ```
   */
  constructor(layers: readonly RecurrentLayer[]) {
    super();
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new TypeError(
        `layers must be a non-empty array of recurrent layers, got ${describe(layers)}`,
      );
    }
    this.layers = layers.map((layer, i) => checkRecurrentLayer(`layers[${i}]`, layer));
    for (let i = 1; i < layers.length; i++) {
      if (layers[i].inputSize !== layers[i - 1].outputSize) {
        throw new RangeError(
          `layers[${i}].inputSize must be layers[${i - 1}].outputSize = ${
            layers[i - 1].outputSize
          }, got ${layers[i].inputSize}`,
        );
      }
    }
  }

  /** The first layer's input features. */
  get inputSize(): number {
    return this.layers[0].inputSize;
  }

  /** The last layer's state width. */
  get hiddenSize(): number {
    return this.layers[this.layers.length - 1].hiddenSize;
  }

  /** The last layer's output features. */
  get outputSize(): number {
    return this.layers[this.layers.length - 1].outputSize;
  }

  /** Rows of the joined `hidden`: the sum over the layers. */
  get hiddenRows(): number {
    return this.layers.reduce((sum, layer) => sum + layer.hiddenRows, 0);
  }

  /** Rows of the joined `state`: the sum over the layers. */
  get stateRows(): number {
    return this.layers.reduce((sum, layer) => sum + layer.stateRows, 0);
  }

  /**
   * No parameters of its own: they are its layers'.
   *
   * @example Every key of the state dict belongs to a layer
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, Stacked } from "../../mod.ts";
   * const stack = new Stacked([new GRU(3, 4), new GRU(4, 4)]);
   * assert.ok(Object.keys(stack.stateDict()).every((key) => /^[01]\./.test(key)));
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
   * import { RNN, Stacked } from "../../mod.ts";
   * const stack = new Stacked([new RNN(3, 4), new RNN(4, 4)]);
   * assert.deepEqual(Object.keys(stack.stateDict()).filter((key) => key.endsWith("weight_ih")), [
   *   "0.weight_ih",
   *   "1.weight_ih",
   * ]);
   * ```
   */
  protected override children(): readonly (readonly [string, Module])[] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }

  /**
   * Runs the layers in order.
   *
   * @param x Input `(batch, seqLen, inputSize)`.
   * @param init Initial states in torch's layout: `hidden` `(hiddenRows, B, H)` and, when the
   *   layers keep cell states, `state` `(stateRows, B, H)`; zeros when absent.
   *
   * @example The last layer's output, every layer's final state
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, randn, Stacked } from "../../mod.ts";
   * const stack = new Stacked([new GRU(3, 4, { seed: 1 }), new GRU(4, 2, { seed: 2 })]);
   * const { output, layers } = await stack.forward(randn([2, 5, 3], { seed: 3 }));
   * assert.deepEqual(output.shape, [2, 5, 2]);
   * assert.deepEqual(layers?.map((layer) => layer.hidden.shape), [[1, 2, 4], [1, 2, 2]]);
   * ```
   */
  async forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult> {
    if (this.#disposed) throw disposedError(this.constructor.name);
    const inits = splitInit(this.layers, init);
    const results: RecurrentResult[] = [];
    let input = x;
    for (const [i, layer] of this.layers.entries()) {
      const result = await layer.forward(input, inits[i]);
      results.push(result);
      input = result.output;
    }
    return joinResults(results[results.length - 1].output, this.layers, results);
  }

  /**
   * Frees every layer's backend memory for good: a later `forward` throws. Disposing twice does
   * nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, randn, Stacked } from "../../mod.ts";
   * const stack = new Stacked([new LSTM(3, 4, { backend: "js" })]);
   * stack.dispose();
   * assert.equal(stack.layers.length, 1);
   * await assert.rejects(stack.forward(randn([1, 2, 3])), /this Stacked was disposed/);
   * ```
   */
  dispose(): void {
    this.#disposed = true;
    for (const layer of this.layers) layer.dispose?.();
  }

  /**
   * Same as {@linkcode Stacked.dispose}, for `using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, randn, Stacked } from "../../mod.ts";
   * using stack = new Stacked([new GRU(3, 4)]);
   * assert.deepEqual((await stack.forward(randn([1, 2, 3]))).output.shape, [1, 2, 4]);
   * ```
   */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
