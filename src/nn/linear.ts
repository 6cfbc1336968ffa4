/**
 * `Linear`: PyTorch's `nn.Linear`, `y = x·Wᵀ + b`, on the last axis of any input.
 *
 * @module
 */

import { linear } from "../reference/cell.ts";
import { checkOptions, checkSize, describe } from "../errors.ts";
import { Random } from "../random.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { linearInit, resolveSeed } from "./init.ts";
import { Module } from "./module.ts";
import { parameterEdge, record, type TrackedTensor } from "./tape.ts";

/** Options of {@linkcode Linear}. */
export interface LinearOptions {
  /** Seed of the initialisation (U(±1/√inFeatures), as `nn.Linear`). */
  seed?: number;
  /** Whether the layer has a bias (default `true`). */
  bias?: boolean;
}

/**
 * A fully connected layer, as `nn.Linear(inFeatures, outFeatures)`: `weight` `(out, in)`,
 * `bias` `(out)`. Takes `(B, in)` or `(B, T, in)` (any leading axes) and maps the last axis, so
 * it applies to every step of a sequence model's output.
 *
 * @example The documentation's head: class scores from the final hidden state
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, LSTM, oneHot, reshape } from "../../mod.ts";
 * const lstm = new LSTM(10, 16, { backend: "js", seed: 1 });
 * const head = new Linear(16, 10, { seed: 2 });
 * const { hidden } = await lstm.forward(oneHot([[1, 2, 3], [4, 5, 6]], 10));
 * const logits = await head.forward(reshape(hidden, [2, 16]));
 * assert.deepEqual(logits.shape, [2, 10]);
 * ```
 */
export class Linear extends Module {
  /** Features in (the last axis of the input). */
  readonly inFeatures: number;
  /** Features out. */
  readonly outFeatures: number;
  /** Whether the layer has a bias. */
  readonly hasBias: boolean;
  /** The seed the weights were drawn from. */
  readonly seed: number;

  /**
   * Makes a linear layer with weights drawn like `nn.Linear` from `options.seed`.
   *
   * @param inFeatures Features in.
   * @param outFeatures Features out.
   * @param options Seed, and `bias: false` for a layer without bias.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear } from "../../mod.ts";
   * const layer = new Linear(3, 2, { seed: 1, bias: false });
   * assert.deepEqual(Object.keys(layer.stateDict()), ["weight"]);
   * assert.deepEqual(layer.stateDict().weight.shape, [2, 3]);
   * ```
   */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    this.inFeatures = checkSize("inFeatures", inFeatures);
    this.outFeatures = checkSize("outFeatures", outFeatures);
    checkOptions(options);
    const bias = options.bias ?? true;
    if (typeof bias !== "boolean") {
      throw new TypeError(`options.bias must be a boolean, got ${describe(bias)}`);
    }
    this.hasBias = bias;
    this.seed = resolveSeed(options.seed);
  }

  /**
   * `weight` `(out, in)` and `bias` `(out)`, drawn like `nn.Linear`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear } from "../../mod.ts";
   * const { weight, bias } = new Linear(4, 2, { seed: 1 }).stateDict();
   * assert.ok([...weight.data, ...bias.data].every((v) => Math.abs(v) <= 1 / Math.sqrt(4)));
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    const random = new Random(this.seed);
    const weight = linearInit(random, [this.outFeatures, this.inFeatures], this.inFeatures);
    if (!this.hasBias) return { weight };
    return { weight, bias: linearInit(random, [this.outFeatures], this.inFeatures) };
  }

  /**
   * `x·Wᵀ + b` over the last axis.
   *
   * @param x Input `(..., inFeatures)`.
   * @returns `(..., outFeatures)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, tensor } from "../../mod.ts";
   * const layer = new Linear(2, 1, { seed: 1 });
   * layer.loadStateDict({ weight: tensor([2, 3], [1, 2]), bias: tensor([1], [1]) });
   * const y = await layer.forward(tensor([1, 1, 0, 1], [2, 2])); // any (..., 2)
   * assert.deepEqual(y.shape, [2, 1]);
   * assert.deepEqual([...y.data], [6, 4]);
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return Promise.resolve().then(() => this.#forward(x));
  }

  #forward(x: Tensor): TrackedTensor {
    checkTensor("x", x);
    const I = this.inFeatures, O = this.outFeatures;
    if (x.shape.length < 1 || x.shape[x.shape.length - 1] !== I) {
      throw new RangeError(
        `x must be (..., inFeatures) = (..., ${I}), got shape ${describe(x.shape)}`,
      );
    }
    const rows = x.data.length / I;
    const weight = this.parameter("weight").data;
    const bias = this.hasBias ? this.parameter("bias").data : null;
    const out = new Float32Array(rows * O);
    linear(x.data, rows, I, weight, O, bias, out);
    const [weightParameter, biasParameter] = this.parameters();
    const parents = this.training
      ? [parameterEdge(weightParameter), biasParameter ? parameterEdge(biasParameter) : null, x]
      : [null, null, x];
    const shape = [...x.shape.slice(0, -1), O];
    return record(
      "Linear",
      [{ shape, data: out }],
      parents,
      ([grad]) => linearBackward(grad!, x.data, weight, rows, I, O),
    )[0];
  }
}

/**
 * The gradients of `y = x·Wᵀ + b` from `g = dL/dy` `(rows, O)`: `[dW (O, I), db (O), dx (rows, I)]`.
 * A function of its own, not the closure each forward makes: there V8 compiled the inner loop on
 * stack replacement and dropped back to the interpreter at every exit from it (`--trace-deopt`:
 * "exit from OSR'd inner loop"), 29–45 ms for the docs network's head against ~3 ms here.
 */
function linearBackward(
  g: Float32Array,
  input: Float32Array,
  weight: Float32Array,
  rows: number,
  I: number,
  O: number,
): [Float32Array, Float32Array, Float32Array] {
  const dWeight = new Float64Array(O * I), dBias = new Float64Array(O);
  const dx = new Float32Array(rows * I), dxRow = new Float64Array(I);
  for (let r = 0; r < rows; r++) {
    const row = r * I;
    dxRow.fill(0);
    for (let o = 0; o < O; o++) {
      const d = g[r * O + o];
      if (d === 0) continue;
      dBias[o] += d;
      const column = o * I;
      for (let i = 0; i < I; i++) {
        dWeight[column + i] += d * input[row + i];
        dxRow[i] += d * weight[column + i];
      }
    }
    dx.set(dxRow, row);
  }
  return [Float32Array.from(dWeight), Float32Array.from(dBias), dx];
}
