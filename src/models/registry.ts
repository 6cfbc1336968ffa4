/**
 * The model class of every cell variant, and how to build one from its constructor arguments and
 * read them back: the one registry that model files (`saveModel`/`loadModel`) and the CLI use.
 * `src/variants.ts` names each variant's class and flags; this table holds one entry per class,
 * typed so that a variant naming a class without an entry does not compile.
 *
 * @module
 */

import { type ModelName, type VariantKind, VARIANTS } from "../variants.ts";
import { ArrayLSTM } from "./array_lstm.ts";
import { AttentionArrayLSTM } from "./attention_array_lstm.ts";
import { GRU } from "./gru.ts";
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
