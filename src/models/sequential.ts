/**
 * `Sequential`: a whole model as a list of layers (an `Embedding`, recurrent layers, `Dropout`,
 * `Linear` per step, `LastStep`, activations), run in order as `nn.Sequential`.
 *
 * @module
 */

import { disposedError } from "./runner_cache.ts";
import { checkOptions, describe, describeKind } from "../errors.ts";
import { Dropout } from "../nn/dropout.ts";
import { Embedding, type TokenIds } from "../nn/embedding.ts";
import { mul } from "../nn/functional.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import { LogSoftmax, ReLU, Sigmoid, Softmax, Tanh } from "../nn/activations.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { Bidirectional, takesLengths } from "./bidirectional.ts";
import { countParameters, describeLayer, formatCount } from "./describe_layer.ts";
import { LastStep } from "./last_step.ts";
import { checkLengths } from "./packed.ts";
import { isRecurrentLayer, type RecurrentLayer } from "./recurrent.ts";
import { Stacked } from "./stacked.ts";

/** Options of {@linkcode Sequential.forward}. */
export interface SequentialForwardOptions {
  /**
   * Steps of each sequence of a padded batch (integers in `[1, seqLen]`): the recurrent layers
   * stop at them (outputs past a length are zero) and `LastStep` picks each sequence's last step.
   */
  readonly lengths?: readonly number[] | Int32Array;
}

/** What a layer gives: its rank (`null`: unknown) and its last axis (`null`: unknown). */
interface Output {
  readonly rank: 2 | 3 | null;
  readonly features: number | null;
}

/** How `forward` calls a layer. */
type Kind = "embedding" | "recurrent" | "lastStep" | "tensor";

/** Layers that keep the shape of their input. */
const SHAPE_KEEPING = [Dropout, ReLU, Tanh, Sigmoid, Softmax, LogSoftmax];

const LAYER_KINDS = "an Embedding (first), a recurrent layer (LSTM, an ArrayLSTM variant, GRU, " +
  "RNN, Stacked, Bidirectional), Linear, Dropout, LastStep, ReLU, Tanh, Sigmoid, Softmax, " +
  "LogSoftmax, or another Module with a forward method";

/** Whether a recurrent layer reads its steps backward, so that padding would reach the outputs. */
function readsBackward(layer: RecurrentLayer): boolean {
  return layer instanceof Bidirectional ||
    (layer instanceof Stacked && layer.layers.some(readsBackward));
}

/** `(B, T, F)` ones up to each sequence's length, zeros past it. */
function stepMask(shape: readonly number[], lengths: Int32Array): Tensor {
  const [B, T, F] = shape;
  const data = new Float32Array(B * T * F);
  for (let b = 0; b < B; b++) data.fill(1, b * T * F, (b * T + lengths[b]) * F);
  return { shape: [B, T, F], data };
}

function shapeText({ rank, features }: Output): string {
  const last = features === null ? "F" : String(features);
  return rank === 3 ? `(B, T, ${last})` : rank === 2 ? `(B, ${last})` : "?";
}

/**
 * Layers run in order, each reading the previous one's output, as `nn.Sequential`: token ids (or
 * features) in, the last layer's tensor out. Recurrent layers pass on their `output` (every step);
 * `Linear` and the activations apply per step; `LastStep` keeps the last step of each sequence;
 * `Dropout` is active in `train()` only. Its `parameters()` are its layers', its `stateDict()`
 * names them by position (`0.weight`, `1.i2h.weight`, `3.weight`, ...), and `train()`/`eval()`
 * reach every layer. Printing it (`toString()`, `console.log`) lists the layers with their key
 * arguments; `summary()` adds output shapes and parameter counts.
 *
 * @example A character model: (B, T) ids -> (B, T, vocab) logits
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArrayLSTM, crossEntropy, Dropout, Embedding, Linear, Sequential } from "../../mod.ts";
 * const vocab = 12;
 * const model = new Sequential([
 *   new Embedding(vocab, 8, { seed: 1 }),
 *   new ArrayLSTM(8, 16, 4, { backend: "js", seed: 2 }),
 *   new Dropout(0.1, { seed: 3 }),
 *   new Linear(16, vocab, { seed: 4 }),
 * ]).train();
 * const logits = await model.forward([[1, 2, 3], [4, 5, 6]]);
 * assert.deepEqual(logits.shape, [2, 3, vocab]);
 * await crossEntropy(logits, [2, 3, 4, 5, 6, 7]).backward();
 * assert.ok(model.parameters().every((p) => p.grad !== null));
 * assert.deepEqual(Object.keys(model.stateDict()).slice(0, 2), ["0.weight", "1.i2h.weight"]);
 * model.dispose();
 * ```
 *
 * @example A classifier of padded sequences
 * ```ts
 * import assert from "node:assert/strict";
 * import { Embedding, GRU, LastStep, Linear, Sequential } from "../../mod.ts";
 * const model = new Sequential([
 *   new Embedding(10, 4, { seed: 1 }),
 *   new GRU(4, 8, { seed: 2 }),
 *   new LastStep(),
 *   new Linear(8, 3, { seed: 3 }),
 * ]);
 * const scores = await model.forward([[1, 2, 3], [4, 0, 0]], { lengths: [3, 1] });
 * assert.deepEqual(scores.shape, [2, 3]);
 * assert.match(model.summary(), /LastStep\(\)\s+\(B, 8\)/); // print it with console.log
 * ```
 */
export class Sequential extends Module {
  /** The layers, in order (used as they are, not copied). */
  readonly layers: readonly Module[];
  readonly #kinds: readonly Kind[];
  readonly #outputs: readonly Output[];
  #disposed = false;

  /**
   * Composes layers, checking that each one reads what the previous one gives.
   *
   * @param layers One or more layers.
   * @throws {TypeError} If a layer is not a layer, naming its index and what was given.
   * @throws {RangeError} If a layer's input size does not fit the previous layer's output, or a
   *   layer cannot follow the previous one (an `Embedding` not first, steps after `LastStep`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, Linear, LSTM, Sequential } from "../../mod.ts";
   * const model = new Sequential([new LSTM(3, 4, { backend: "js" }), new Linear(4, 2)]);
   * assert.equal(model.layers.length, 2);
   * assert.throws(() => new Sequential([new GRU(3, 4), new Linear(5, 2)]), /layers\[1\]/);
   * const notALayer = {} as GRU;
   * assert.throws(() => new Sequential([new GRU(3, 4), notALayer]), /layers\[1\].*got a plain object/);
   * ```
   */
  constructor(layers: readonly Module[]) {
    super();
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new TypeError(
        `layers must be a non-empty array of layers (${LAYER_KINDS}), got ${describeKind(layers)}`,
      );
    }
    const kinds: Kind[] = [];
    const outputs: Output[] = [];
    let previous: Output = { rank: null, features: null };
    layers.forEach((_, i) => {
      const [kind, output] = Sequential.#check(layers, i, previous);
      kinds.push(kind);
      outputs.push(output);
      previous = output;
    });
    this.layers = [...layers];
    this.#kinds = kinds;
    this.#outputs = outputs;
  }

  /** The kind of `layers[i]` and what it gives, after checking that it reads `input`. */
  static #check(layers: readonly Module[], i: number, input: Output): [Kind, Output] {
    const layer: unknown = layers[i];
    const name = `layers[${i}]`;
    const after = i === 0 ? "the input" : `layers[${i - 1}] (${describeLayer(layers[i - 1])})`;
    const fits = (size: number, what: string): void => {
      if (input.features !== null && input.features !== size) {
        throw new RangeError(
          `${name}.${what} must be the ${input.features} features that ${after} gives, got ${size}`,
        );
      }
    };
    const needsSteps = (): void => {
      if (input.rank === 2) {
        throw new RangeError(
          `${name} (${describeLayer(layer as Module)}) reads steps (batch, seqLen, features), ` +
            `but ${after} gives (batch, features): put it before the LastStep`,
        );
      }
    };
    if (
      !(layer instanceof Module) || typeof (layer as { forward?: unknown }).forward !== "function"
    ) {
      throw new TypeError(`${name} must be a layer (${LAYER_KINDS}), got ${describeKind(layer)}`);
    }
    if (layer instanceof Embedding) {
      if (i !== 0) {
        throw new RangeError(
          `${name} is an Embedding: it reads token ids, so it must be layers[0], got it after ${after}`,
        );
      }
      return ["embedding", { rank: 3, features: layer.embeddingDim }];
    }
    if (isRecurrentLayer(layer)) {
      needsSteps();
      fits(layer.inputSize, "inputSize");
      return ["recurrent", { rank: 3, features: layer.outputSize }];
    }
    if (layer instanceof Linear) {
      fits(layer.inFeatures, "inFeatures");
      return ["tensor", { rank: input.rank, features: layer.outFeatures }];
    }
    if (layer instanceof LastStep) {
      needsSteps();
      return ["lastStep", { rank: 2, features: input.features }];
    }
    if (SHAPE_KEEPING.some((type) => layer instanceof type)) return ["tensor", input];
    return ["tensor", { rank: null, features: null }];
  }

  /**
   * No parameters of its own: they are its layers'.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, ReLU, Sequential } from "../../mod.ts";
   * const model = new Sequential([new Linear(3, 4), new ReLU(), new Linear(4, 2)]);
   * assert.deepEqual(Object.keys(model.stateDict()), ["0.weight", "0.bias", "2.weight", "2.bias"]);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * The layers, named by position as in `stateDict()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Dropout, Linear, Sequential } from "../../mod.ts";
   * const model = new Sequential([new Linear(3, 4), new Dropout(0.5)]).train();
   * assert.equal((model.layers[1] as Dropout).training, true);
   * ```
   */
  protected override children(): readonly (readonly [string, Module])[] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }

  /**
   * Runs the layers in order.
   *
   * @param x Token ids `(batch, seqLen)` when `layers[0]` is an `Embedding` (rows, or a tensor
   *   of ids), else features `(batch, seqLen, features)` (or `(batch, features)` for a model
   *   without recurrent layers).
   * @param options `lengths` of a padded batch.
   * @returns The last layer's output, e.g. logits `(batch, seqLen, vocab)`, or `(batch, classes)`
   *   after a `LastStep`.
   *
   * @example Features in, per-step outputs out
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, randn, Sequential, Tanh } from "../../mod.ts";
   * const model = new Sequential([new LSTM(3, 4, { backend: "js", seed: 1 }), new Tanh()]);
   * const y = await model.forward(randn([2, 5, 3], { seed: 2 }), { lengths: [5, 2] });
   * assert.deepEqual(y.shape, [2, 5, 4]);
   * assert.ok(y.data.subarray(28).every((v) => v === 0)); // past length 2 of row 1
   * ```
   */
  async forward(
    x: TokenIds | Tensor,
    options: SequentialForwardOptions = {},
  ): Promise<TrackedTensor> {
    if (this.#disposed) throw disposedError(this.constructor.name);
    checkOptions(options);
    let value: Tensor;
    let first = 0;
    if (this.#kinds[0] === "embedding") {
      value = await (this.layers[0] as Embedding).forward(x);
      first = 1;
    } else {
      if (Array.isArray(x) || x instanceof Int32Array) {
        throw new TypeError(
          `x must be a tensor of features, got ${describeKind(x)}: token ids need an Embedding ` +
            "as layers[0]",
        );
      }
      checkTensor("x", x);
      value = x;
    }
    let lengths: Int32Array | null = null;
    if (options.lengths !== undefined) {
      if (value.shape.length !== 3) {
        throw new RangeError(
          `options.lengths needs sequences (batch, seqLen, ...), got input of shape ${
            describe(value.shape)
          }`,
        );
      }
      lengths = checkLengths(options.lengths, value.shape[0], value.shape[1]);
    }
    const seqLen = value.shape[1];
    const padded = lengths !== null && lengths.some((length) => length < seqLen);
    for (let i = first; i < this.layers.length; i++) {
      value = await this.#run(i, value, padded ? lengths : null);
    }
    return value as TrackedTensor;
  }

  /** Runs `layers[i]` on `x`; `lengths` only when some sequence is shorter than the batch. */
  async #run(i: number, x: Tensor, lengths: Int32Array | null): Promise<Tensor> {
    const layer = this.layers[i];
    switch (this.#kinds[i]) {
      case "recurrent": {
        if (lengths !== null && takesLengths(layer)) {
          return (await layer.forward(x, { lengths })).output;
        }
        const recurrent = layer as unknown as RecurrentLayer;
        if (lengths !== null && readsBackward(recurrent)) {
          throw new RangeError(
            `layers[${i}] (${describeLayer(layer)}) reads steps backward with layers that do ` +
              "not stop at lengths (only the LSTM family does, alone or in a Bidirectional " +
              "placed directly in the Sequential), so the padding of shorter sequences would " +
              "reach its outputs: pass sequences of one length (all lengths = seqLen) or run " +
              "them one by one",
          );
        }
        const { output } = await recurrent.forward(x);
        // The layer ran past the lengths: zero those steps, as a packed run leaves them.
        return lengths === null ? output : mul(output, stepMask(output.shape, lengths));
      }
      case "lastStep":
        return await (layer as LastStep).forward(x, lengths ?? undefined);
      default:
        return await (layer as unknown as { forward(x: Tensor): Tensor | Promise<Tensor> })
          .forward(x);
    }
  }

  /**
   * A table of the layers: key arguments, output shape (`B` batch, `T` steps) and parameter
   * count, with the total. Print it with `console.log(model.summary())`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM, Embedding, Linear, Sequential } from "../../mod.ts";
   * const model = new Sequential([
   *   new Embedding(65, 32),
   *   new ArrayLSTM(32, 128, 4, { backend: "js" }),
   *   new Linear(128, 65),
   * ]);
   * const text = model.summary();
   * assert.match(text, /ArrayLSTM\(32, 128, k=4, backend="js"\)\s+\(B, T, 128\)\s+331,776/);
   * assert.match(text, /total\s+\(B, T, 65\)\s+342,241/);
   * ```
   */
  summary(): string {
    const rows = this.layers.map((layer, i) => [
      String(i),
      describeLayer(layer),
      shapeText(this.#outputs[i]),
      formatCount(countParameters(layer)),
    ]);
    const header = ["#", "layer", "output shape", "parameters"];
    const input = this.#kinds[0] === "embedding" ? "(B, T) token ids" : "(B, T, F)";
    const footer = ["", "total", shapeText(this.#outputs.at(-1)!), formatCount(this.#count())];
    const table = [header, ...rows, footer];
    const widths = header.map((_, c) => Math.max(...table.map((row) => row[c].length)));
    const line = (row: string[]): string =>
      row.map((cell, c) => c === 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))
        .join("  ").trimEnd();
    const rule = "-".repeat(widths.reduce((a, b) => a + b + 2, -2));
    return [
      `Sequential: ${this.layers.length} layers, input ${input}`,
      line(header),
      rule,
      ...rows.map(line),
      rule,
      line(footer),
    ].join("\n");
  }

  #count(): number {
    return this.layers.reduce((total, layer) => total + countParameters(layer), 0);
  }

  /**
   * The layers with their key arguments, as torch prints a model, and the parameter count.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Dropout, Linear, Sequential } from "../../mod.ts";
   * const model = new Sequential([new Linear(3, 2), new Dropout(0.1)]);
   * assert.equal(
   *   model.toString(),
   *   "Sequential(\n  (0): Linear(3, 2)\n  (1): Dropout(p=0.1)\n) with 8 parameters",
   * );
   * ```
   */
  override toString(): string {
    const lines = this.layers.map((layer, i) => `  (${i}): ${describeLayer(layer)}`);
    return `Sequential(\n${lines.join("\n")}\n) with ${formatCount(this.#count())} parameters`;
  }

  /**
   * What `console.log(model)` prints in Deno: {@linkcode Sequential.toString}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, Sequential } from "../../mod.ts";
   * assert.match(Deno.inspect(new Sequential([new Linear(3, 2)])), /\(0\): Linear\(3, 2\)/);
   * ```
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /**
   * Frees every layer's backend memory for good: `forward` throws afterwards (create a new model
   * to run again). Disposing twice does nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, randn, Sequential } from "../../mod.ts";
   * const model = new Sequential([new GRU(3, 4)]);
   * model.dispose();
   * assert.equal(model.layers.length, 1);
   * await assert.rejects(model.forward(randn([1, 2, 3])), /this Sequential was disposed/);
   * ```
   */
  dispose(): void {
    this.#disposed = true;
    for (const layer of this.layers) (layer as { dispose?: () => void }).dispose?.();
  }

  /**
   * Same as {@linkcode Sequential.dispose}, for `using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, randn, Sequential } from "../../mod.ts";
   * using model = new Sequential([new GRU(3, 4)]);
   * assert.deepEqual((await model.forward(randn([1, 2, 3]))).shape, [1, 2, 4]);
   * ```
   */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
