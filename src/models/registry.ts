/**
 * The model class of every cell variant, and how to build one from its constructor arguments and
 * read them back: the one registry that model files (`saveModel`/`loadModel`) and the CLI use.
 * `src/variants.ts` names each variant's class and flags; this table holds one entry per class,
 * typed so that a variant naming a class without an entry does not compile. {@linkcode LAYERS}
 * extends it to every layer class a model file holds (`Linear`, `Embedding`, `Dropout`,
 * `LastStep`, the activations): the one class-to-constructor table.
 *
 * @module
 */

import type { BackendName } from "../contract/mod.ts";
import { LogSoftmax, ReLU, Sigmoid, Softmax, Tanh } from "../nn/activations.ts";
import { Dropout } from "../nn/dropout.ts";
import { Embedding } from "../nn/embedding.ts";
import { Linear } from "../nn/linear.ts";
import type { Module } from "../nn/module.ts";
import { type ModelName, type VariantKind, VARIANTS } from "../variants.ts";
import { ArrayLSTM } from "./array_lstm.ts";
import { AttentionArrayLSTM } from "./attention_array_lstm.ts";
import { GRU } from "./gru.ts";
import { LastStep } from "./last_step.ts";
import { LSTM } from "./lstm.ts";
import { RNN } from "./rnn.ts";
import { StochasticArrayLSTM } from "./stochastic_array_lstm.ts";

/** A model of one of the registered classes. */
export type RegisteredModel = LSTM | GRU | RNN;

/** The sizes every registered class takes first: `k` only for the variants with `k` lanes. */
export interface ModelSizes {
  /** `I`: features per input step. */
  readonly inputSize: number;
  /** `H`: hidden units. */
  readonly hiddenSize: number;
  /** Lanes per hidden unit (the `"k"` variants; ignored by the others). */
  readonly k?: number;
}

/** One model class: how to make it and what to save of it. */
export interface ModelEntry<M extends RegisteredModel> {
  /** The class, matched exactly (a subclass may change the equations). */
  readonly model: new (inputSize: number, hiddenSize: number, ...rest: never[]) => M;
  /** The class's own options to save (besides backend and seed), in a fixed key order. */
  options(model: M): Record<string, unknown>;
}

/**
 * Every model class that runs a cell variant, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODELS } from "./registry.ts";
 * import { RNN } from "./rnn.ts";
 * assert.deepEqual(MODELS.RNN.options(new RNN(2, 3, { nonlinearity: "relu" })), {
 *   nonlinearity: "relu",
 * });
 * ```
 */
export const MODELS: { readonly [name in ModelName]: ModelEntry<RegisteredModel> } = {
  LSTM: {
    model: LSTM,
    options: (m) => ({ recurrentActivation: (m as LSTM).recurrentActivation }),
  },
  ArrayLSTM: {
    model: ArrayLSTM,
    options: (m) => ({ recurrentActivation: (m as LSTM).recurrentActivation }),
  },
  AttentionArrayLSTM: {
    model: AttentionArrayLSTM,
    options: (m) => ({
      recurrentActivation: (m as AttentionArrayLSTM).recurrentActivation,
      maxPooling: (m as AttentionArrayLSTM).maxPooling,
    }),
  },
  StochasticArrayLSTM: {
    model: StochasticArrayLSTM,
    options: (m) => ({ recurrentActivation: (m as LSTM).recurrentActivation }),
  },
  GRU: { model: GRU, options: () => ({}) },
  RNN: {
    model: RNN,
    options: (m) => ({ nonlinearity: (m as RNN).nonlinearity }),
  },
};

/**
 * The registered name of `model`'s exact class, or `null` for anything else (a subclass, or a
 * module that runs no cell variant).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelName } from "./registry.ts";
 * import { ArrayLSTM } from "./array_lstm.ts";
 * assert.equal(modelName(new ArrayLSTM(2, 3, 2)), "ArrayLSTM");
 * assert.equal(modelName(new (class extends ArrayLSTM {})(2, 3, 2)), null);
 * ```
 */
export function modelName(model: unknown): ModelName | null {
  if (typeof model !== "object" || model === null) return null;
  const names = Object.keys(MODELS) as ModelName[];
  return names.find((name) => MODELS[name].model === model.constructor) ?? null;
}

/** Whether a registered class takes `k` (its variants have `k` lanes). */
export function takesK(name: ModelName): boolean {
  return (Object.keys(VARIANTS) as VariantKind[]).some((kind) =>
    VARIANTS[kind].model === name && VARIANTS[kind].lanes === "k"
  );
}

/**
 * A model's positional constructor sizes: `[inputSize, hiddenSize]`, then `k` for the classes
 * that take it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sizesOf } from "./registry.ts";
 * import { ArrayLSTM } from "./array_lstm.ts";
 * import { LSTM } from "./lstm.ts";
 * assert.deepEqual(sizesOf("ArrayLSTM", new ArrayLSTM(2, 3, 4)), [2, 3, 4]);
 * assert.deepEqual(sizesOf("LSTM", new LSTM(2, 3)), [2, 3]);
 * ```
 */
export function sizesOf(name: ModelName, model: RegisteredModel): number[] {
  const sizes = [model.inputSize, model.hiddenSize];
  return takesK(name) ? [...sizes, (model as LSTM).k] : sizes;
}

/**
 * Makes a model of a registered class from its sizes and options (the class's own, with backend
 * and seed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildModel } from "./registry.ts";
 * import { AttentionArrayLSTM } from "./attention_array_lstm.ts";
 * const model = buildModel("AttentionArrayLSTM", { inputSize: 2, hiddenSize: 3, k: 2 }, {
 *   maxPooling: true,
 * });
 * assert.ok(model instanceof AttentionArrayLSTM && model.maxPooling);
 * ```
 */
export function buildModel(
  name: ModelName,
  sizes: ModelSizes,
  options: Record<string, unknown>,
): RegisteredModel {
  const Model = MODELS[name].model as new (...args: unknown[]) => RegisteredModel;
  return takesK(name)
    ? new Model(sizes.inputSize, sizes.hiddenSize, sizes.k, options)
    : new Model(sizes.inputSize, sizes.hiddenSize, options);
}

/**
 * The parameter shapes of a registered class with `sizes`, by `stateDict()` key, computed from
 * the variant table without making the model (a model file's tensors are checked against them
 * before anything is allocated): `i2h`/`h2h` (and `i2a` with attention) for the LSTM family,
 * torch's `weight_ih`/`weight_hh`/`bias_ih`/`bias_hh` for `GRU` and `RNN`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parameterShapes } from "./registry.ts";
 * assert.deepEqual(parameterShapes("ArrayLSTM", { inputSize: 3, hiddenSize: 2, k: 4 }), {
 *   "i2h.weight": [32, 3],
 *   "i2h.bias": [32],
 *   "h2h.weight": [32, 2],
 *   "h2h.bias": [32],
 * });
 * assert.deepEqual(parameterShapes("GRU", { inputSize: 3, hiddenSize: 2 }).weight_ih, [6, 3]);
 * ```
 */
export function parameterShapes(name: ModelName, sizes: ModelSizes): Record<string, number[]> {
  const variant = Object.values(VARIANTS).find((v) => v.model === name)!;
  const I = sizes.inputSize, H = sizes.hiddenSize;
  const lanes = variant.lanes === "k" ? sizes.k ?? 1 : 1, rows = variant.gates * lanes * H;
  if (!variant.cellStates) {
    return { weight_ih: [rows, I], weight_hh: [rows, H], bias_ih: [rows], bias_hh: [rows] };
  }
  return {
    "i2h.weight": [rows, I],
    "i2h.bias": [rows],
    "h2h.weight": [rows, H],
    "h2h.bias": [rows],
    ...(variant.attention ? { "i2a.weight": [lanes * H, I], "i2a.bias": [lanes * H] } : {}),
  };
}

/** One layer class a model file holds: its arguments, and how to rebuild it from them. */
export interface LayerEntry {
  /** The class, matched exactly (a subclass may change the equations). */
  readonly layer: abstract new (...args: never[]) => Module;
  /** The positional constructor arguments' names, in order. */
  readonly argNames: readonly string[];
  /** How many of the first positional arguments are sizes (positive integers). */
  readonly sizes: number;
  /** The positional arguments of `layer`. */
  args(layer: Module): number[];
  /** The options to save (besides backend and seed), in a fixed key order. */
  options(layer: Module): Record<string, unknown>;
  /** Makes the layer (`backend` for the classes that run on one). */
  build(
    args: readonly number[],
    options: Record<string, unknown>,
    backend: BackendName | undefined,
  ): Module;
  /** Its parameters' shapes by `stateDict()` key, from its arguments alone. */
  shapes(args: readonly number[], options: Record<string, unknown>): Record<string, number[]>;
}

/** The name of a class in {@linkcode LAYERS}. */
export type LayerName =
  | ModelName
  | "Linear"
  | "Embedding"
  | "Dropout"
  | "LastStep"
  | "ReLU"
  | "Tanh"
  | "Sigmoid"
  | "Softmax"
  | "LogSoftmax";

function recurrentEntry(name: ModelName): LayerEntry {
  const sizes = (args: readonly number[]): ModelSizes => ({
    inputSize: args[0],
    hiddenSize: args[1],
    k: args[2],
  });
  const argNames = takesK(name) ? ["inputSize", "hiddenSize", "k"] : ["inputSize", "hiddenSize"];
  return {
    layer: MODELS[name].model,
    argNames,
    sizes: argNames.length,
    args: (layer) => sizesOf(name, layer as RegisteredModel),
    options: (layer) => MODELS[name].options(layer as RegisteredModel),
    build: (args, options, backend) => buildModel(name, sizes(args), { ...options, backend }),
    shapes: (args) => parameterShapes(name, sizes(args)),
  };
}

function parameterless(layer: new () => Module): LayerEntry {
  return {
    layer,
    argNames: [],
    sizes: 0,
    args: () => [],
    options: () => ({}),
    build: () => new layer(),
    shapes: () => ({}),
  };
}

/**
 * Every layer class a model file holds, by name: the recurrent classes of {@linkcode MODELS} and
 * the layers around them. The containers (`Stacked`, `Bidirectional`, `Sequential`) hold these.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LAYERS } from "./registry.ts";
 * import { Embedding } from "../nn/embedding.ts";
 * const embedding = new Embedding(10, 4, { paddingIdx: 0 });
 * assert.deepEqual(LAYERS.Embedding.args(embedding), [10, 4]);
 * assert.deepEqual(LAYERS.Embedding.options(embedding), { paddingIdx: 0 });
 * assert.deepEqual(LAYERS.Embedding.shapes([10, 4], {}), { weight: [10, 4] });
 * ```
 */
export const LAYERS: { readonly [name in LayerName]: LayerEntry } = {
  LSTM: recurrentEntry("LSTM"),
  ArrayLSTM: recurrentEntry("ArrayLSTM"),
  AttentionArrayLSTM: recurrentEntry("AttentionArrayLSTM"),
  StochasticArrayLSTM: recurrentEntry("StochasticArrayLSTM"),
  GRU: recurrentEntry("GRU"),
  RNN: recurrentEntry("RNN"),
  Linear: {
    layer: Linear,
    argNames: ["inFeatures", "outFeatures"],
    sizes: 2,
    args: (layer) => [(layer as Linear).inFeatures, (layer as Linear).outFeatures],
    options: (layer) => ({ bias: (layer as Linear).hasBias }),
    build: ([inFeatures, outFeatures], options) => new Linear(inFeatures, outFeatures, options),
    shapes: ([inFeatures, outFeatures], options) => ({
      weight: [outFeatures, inFeatures],
      ...(options.bias === false ? {} : { bias: [outFeatures] }),
    }),
  },
  Embedding: {
    layer: Embedding,
    argNames: ["numEmbeddings", "embeddingDim"],
    sizes: 2,
    args: (layer) => [(layer as Embedding).numEmbeddings, (layer as Embedding).embeddingDim],
    options: (layer) => {
      const paddingIdx = (layer as Embedding).paddingIdx;
      return paddingIdx === null ? {} : { paddingIdx };
    },
    build: ([numEmbeddings, embeddingDim], options) =>
      new Embedding(numEmbeddings, embeddingDim, options),
    shapes: ([numEmbeddings, embeddingDim]) => ({ weight: [numEmbeddings, embeddingDim] }),
  },
  Dropout: {
    layer: Dropout,
    argNames: ["p"],
    sizes: 0,
    args: (layer) => [(layer as Dropout).p],
    options: () => ({}),
    build: ([p], options) => new Dropout(p, options),
    shapes: () => ({}),
  },
  LastStep: parameterless(LastStep),
  ReLU: parameterless(ReLU),
  Tanh: parameterless(Tanh),
  Sigmoid: parameterless(Sigmoid),
  Softmax: parameterless(Softmax),
  LogSoftmax: parameterless(LogSoftmax),
};

/**
 * The name in {@linkcode LAYERS} of `layer`'s exact class, or `null` (a subclass, a container, or
 * a class of the user's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerName } from "./registry.ts";
 * import { Linear } from "../nn/linear.ts";
 * assert.equal(layerName(new Linear(2, 3)), "Linear");
 * assert.equal(layerName(new (class extends Linear {})(2, 3)), null);
 * ```
 */
export function layerName(layer: unknown): LayerName | null {
  if (typeof layer !== "object" || layer === null) return null;
  const names = Object.keys(LAYERS) as LayerName[];
  return names.find((name) => LAYERS[name].layer === layer.constructor) ?? null;
}
