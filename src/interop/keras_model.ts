/**
 * `fromKeras`: a Keras Sequential model read by `loadKeras` as a {@linkcode Sequential} whose
 * `forward` reproduces `keras_model.predict`. Every config field that changes the math is
 * honoured or refused by name.
 *
 * @module
 */

import type { BackendName, RecurrentActivation } from "../contract/mod.ts";
import { describe } from "../errors.ts";
import { Bidirectional } from "../models/bidirectional.ts";
import { GRU } from "../models/gru.ts";
import type { RecurrentLayer } from "../models/recurrent.ts";
import { RNN } from "../models/rnn.ts";
import { Sequential } from "../models/sequential.ts";
import { Stacked } from "../models/stacked.ts";
import { ReLU, Sigmoid, Softmax, Tanh } from "../nn/activations.ts";
import { Embedding } from "../nn/embedding.ts";
import type { Linear } from "../nn/linear.ts";
import type { Module } from "../nn/module.ts";
import { type Tensor, zeros } from "../tensor.ts";
import { transpose } from "./gates.ts";
import { importKerasDense, importKerasLSTM } from "./keras_import.ts";
import { kerasStepwiseGRU, kerasStepwiseLSTM } from "./keras_stepwise.ts";
import type { KerasLayerInfo, KerasLayerWeights, KerasRecurrentWeights } from "./keras_layers.ts";
import { type KerasMergeMode, KerasRecurrent } from "./keras_recurrent.ts";
import type { StepActivation } from "./stepwise.ts";

/** Options of {@linkcode fromKeras}. */
export interface FromKerasOptions {
  /**
   * The LSTM layers' recurrent activation, overriding the file's; needed for a
   * `"hard_sigmoid"` in a file that does not say which Keras wrote it (Keras 1/2:
   * `"hard_sigmoid"`, `clip(0.2x + 0.5)`; Keras 3: `"hard_sigmoid_keras3"`, `clip(x/6 + 0.5)`).
   */
  recurrentActivation?: RecurrentActivation;
  /** Where the layers run. */
  backend?: BackendName;
}

/** What {@linkcode fromKeras} builds. */
export interface KerasModel {
  /** The whole model: `forward(x or token ids)` gives `keras_model.predict(x)`. */
  readonly model: Sequential;
  /** The model's Embedding, when it starts with one. */
  readonly embedding?: Embedding;
  /**
   * The recurrent layers as one {@linkcode Stacked}, with torch's layouts (its `hidden` holds
   * the final states), when that is what the model's recurrent part computes: no `go_backwards`,
   * `Bidirectional` layers merged by `concat`, every layer but the last returning sequences.
   * Otherwise reading it throws a `RangeError` that says why (use `model`).
   */
  readonly stack: Stacked;
  /** The Dense layers as {@linkcode Linear}s (their activations are in `model`). */
  readonly head: Linear[];
}

/** The error of a config this package cannot compute as Keras does. */
function refuse(layer: string, field: string, value: unknown, what: string): never {
  throw new RangeError(
    `Keras layer "${layer}" has ${field} ${describe(value)}, which is not supported: ${what}`,
  );
}

/** An activation's name, from a config's string or serialized function. */
function activationName(value: unknown): unknown {
  if (typeof value === "object" && value !== null) {
    const inner = (value as { config?: unknown }).config;
    if (typeof inner === "string") return inner;
  }
  return value;
}

const ACTIVATIONS: Record<string, (() => Module) | null> = {
  linear: null,
  relu: () => new ReLU(),
  tanh: () => new Tanh(),
  sigmoid: () => new Sigmoid(),
  softmax: () => new Softmax(),
};

function activationLayers(name: string, value: unknown): Module[] {
  const activation = activationName(value ?? "linear");
  const make = typeof activation === "string" ? ACTIVATIONS[activation] : undefined;
  if (make === undefined) {
    refuse(name, "activation", activation, `read are ${Object.keys(ACTIVATIONS).join(", ")}`);
  }
  return make === null ? [] : [make()];
}

// Layers without weights that compute nothing at inference.
const INFERENCE_IDENTITY = new Set([
  "InputLayer",
  "Dropout",
  "SpatialDropout1D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "ActivityRegularization",
]);

function weightless(info: KerasLayerInfo): Module[] {
  if (INFERENCE_IDENTITY.has(info.className)) return [];
  if (info.className === "Activation") return activationLayers(info.name, info.config.activation);
  throw new RangeError(
    `Keras layer "${info.name}" is a ${info.className}, which is not supported: read are ` +
      `Embedding, LSTM, GRU, SimpleRNN, Bidirectional, Dense, Activation and the dropout layers`,
  );
}

function kerasMajor(version: string | undefined): number | undefined {
  const major = Number(version?.split(".")[0]);
  return Number.isInteger(major) ? major : undefined;
}

// The math-changing fields of a recurrent layer's config that must have these values.
function checkRecurrentConfig(layer: KerasRecurrentWeights, config: Record<string, unknown>) {
  for (const field of ["return_state", "stateful", "time_major"]) {
    if (config[field] === true) {
      refuse(layer.name, field, true, "load the model with it off (the weights are the same)");
    }
  }
}

// The activations of LSTM and GRU layers: tanh in the fused layers, the others step by step.
const STEPWISE_ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"];

/** The layer's `activation`, or a refusal that names it. */
function cellActivation(layer: KerasRecurrentWeights): StepActivation {
  const activation = activationName(layer.config?.activation ?? "tanh");
  const allowed = layer.kind === "simple_rnn" ? ["tanh", "relu"] : STEPWISE_ACTIVATIONS;
  if (!allowed.includes(activation as string)) {
    refuse(
      layer.name,
      "activation",
      activation,
      `a ${layer.kind} here computes ${allowed.join(", ")}`,
    );
  }
  return activation as StepActivation;
}

function recurrentActivation(
  layer: KerasRecurrentWeights,
  options: FromKerasOptions,
): RecurrentActivation {
  const configured = activationName(layer.config?.recurrent_activation ?? "sigmoid");
  if (layer.kind === "simple_rnn") return "sigmoid";
  if (options.recurrentActivation !== undefined) return options.recurrentActivation;
  if (configured === "sigmoid") return "sigmoid";
  if (configured !== "hard_sigmoid") {
    refuse(layer.name, "recurrent_activation", configured, "read are sigmoid and hard_sigmoid");
  }
  const major = kerasMajor(layer.kerasVersion);
  if (major === undefined) {
    throw new RangeError(
      `Keras layer "${layer.name}" has recurrent_activation "hard_sigmoid" and the file does not ` +
        `say which Keras wrote it: pass options.recurrentActivation "hard_sigmoid" (Keras 1/2: ` +
        `clip(0.2x + 0.5, 0, 1)) or "hard_sigmoid_keras3" (clip(x/6 + 0.5, 0, 1)), or "sigmoid"`,
    );
  }
  return major >= 3 ? "hard_sigmoid_keras3" : "hard_sigmoid";
}

// Keras' GRU gate blocks z, r, h -> torch's r, z, n.
function gruBlocks(value: Tensor): Tensor {
  const block = value.data.length / 3;
  const data = new Float32Array(value.data.length);
  [1, 0, 2].forEach((from, to) =>
    data.set(value.data.subarray(from * block, (from + 1) * block), to * block)
  );
  return { shape: [...value.shape], data };
}

function recurrentLayer(
  layer: KerasRecurrentWeights,
  options: FromKerasOptions,
): RecurrentLayer & Module {
  checkRecurrentConfig(layer, layer.config ?? {});
  const activations = {
    activation: cellActivation(layer),
    recurrentActivation: recurrentActivation(layer, options),
  };
  const [I] = layer.kernel.shape, H = layer.units, { backend } = options;
  if (layer.kind === "lstm") {
    return activations.activation === "tanh"
      ? importKerasLSTM(layer, { recurrentActivation: activations.recurrentActivation, backend })
      : kerasStepwiseLSTM(layer, activations);
  }
  const zero = zeros([layer.kernel.shape[1]]);
  if (layer.kind === "simple_rnn") {
    const rnn = new RNN(I, H, { backend, nonlinearity: activations.activation as "tanh" | "relu" });
    rnn.loadStateDict({
      weight_ih: transpose(layer.kernel),
      weight_hh: transpose(layer.recurrentKernel),
      bias_ih: layer.bias ?? zero,
      bias_hh: zero,
    });
    return rnn;
  }
  const resetAfter = layer.config?.reset_after ?? (layer.bias?.shape.length === 2);
  if (layer.bias !== undefined && (layer.bias.shape.length === 2) !== (resetAfter === true)) {
    refuse(
      layer.name,
      "reset_after",
      resetAfter,
      `its bias [${layer.bias.shape.join(", ")}] is that of reset_after ${!resetAfter}`,
    );
  }
  if (
    resetAfter !== true || activations.activation !== "tanh" ||
    activations.recurrentActivation !== "sigmoid"
  ) {
    return kerasStepwiseGRU(layer, activations, resetAfter === true);
  }
  const [inputBias, recurrentBias] = layer.bias === undefined
    ? [zero, zero]
    : [0, 1].map((row) => ({
      shape: [3 * H],
      data: layer.bias!.data.slice(row * 3 * H, (row + 1) * 3 * H),
    }));
  const gru = new GRU(I, H, { backend });
  gru.loadStateDict({
    weight_ih: gruBlocks(transpose(layer.kernel)),
    weight_hh: gruBlocks(transpose(layer.recurrentKernel)),
    bias_ih: gruBlocks(inputBias),
    bias_hh: gruBlocks(recurrentBias),
  });
  return gru;
}

/** The recurrent layer, Keras' wrapper of it, and whether a `Stacked` computes the same. */
function kerasRecurrent(
  layer: KerasRecurrentWeights | Extract<KerasLayerWeights, { kind: "bidirectional" }>,
  options: FromKerasOptions,
  last: boolean,
): { raw: RecurrentLayer & Module; wrapped: KerasRecurrent; plain: boolean } {
  // Without a config (a weights-only file) or the field in it, every layer but the last returns
  // sequences: the only way a stack of them reads.
  const sequencesOf = (config?: Record<string, unknown>) =>
    config?.return_sequences === undefined ? !last : config.return_sequences === true;
  if (layer.kind !== "bidirectional") {
    const raw = recurrentLayer(layer, options);
    const goBackwards = layer.config?.go_backwards === true;
    const returnSequences = sequencesOf(layer.config);
    return {
      raw,
      wrapped: new KerasRecurrent(raw, { goBackwards, returnSequences }),
      plain: !goBackwards,
    };
  }
  const mergeMode = layer.config?.merge_mode === undefined ? "concat" : layer.config.merge_mode;
  if (!["concat", "sum", "ave", "mul"].includes(mergeMode as string)) {
    refuse(layer.name, "merge_mode", mergeMode, "read are concat, sum, ave and mul");
  }
  if (layer.forward.config?.go_backwards === true) {
    refuse(layer.name, "a forward layer with go_backwards", true, "Keras' default is false");
  }
  const raw = new Bidirectional(
    recurrentLayer(layer.forward, options),
    recurrentLayer(layer.backward, options),
  );
  const returnSequences = sequencesOf(layer.forward.config);
  return {
    raw,
    wrapped: new KerasRecurrent(raw, { returnSequences, mergeMode: mergeMode as KerasMergeMode }),
    plain: mergeMode === "concat",
  };
}

/**
 * A Keras Sequential model (the layers `loadKeras` returns) as a {@linkcode Sequential} whose
 * `forward(x or token ids)` gives `keras_model.predict`: `Embedding`, `LSTM`, `GRU`
 * (`reset_after` true or false), `SimpleRNN` (`tanh`, `relu`), `Bidirectional` in every
 * `merge_mode` (concat, sum, ave, mul), stacked layers with `return_sequences`, `go_backwards`,
 * `Dense` with its activation (linear, relu, tanh, sigmoid, softmax), `Activation` and dropout
 * layers. An LSTM's `"hard_sigmoid"` is Keras 2's or Keras 3's as the file's Keras version says
 * (or `options.recurrentActivation`). An LSTM or GRU `activation` other than tanh (relu,
 * sigmoid, linear) and a GRU with `reset_after=False` or a hard sigmoid become the step-by-step
 * `StepwiseLSTM` / `StepwiseGRU` (CPU, much slower than the fused layers). A weights-only file
 * holds no config: Keras' defaults are assumed (pass the config to `loadKeras` to have it read).
 *
 * @throws {RangeError} If a layer or config field changes the math in a way not computed here
 *   (naming the layer, the field and its value), or the layers are not in a Sequential's order.
 *
 * @example Layers as `loadKeras` returns them
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromKeras, randn, tensor, zeros } from "../../mod.ts";
 * const { model, stack, head } = fromKeras([
 *   {
 *     kind: "lstm", name: "lstm", units: 2, kernel: randn([3, 8]), recurrentKernel: zeros([2, 8]),
 *     weights: {},
 *   },
 *   { kind: "dense", name: "dense", units: 1, kernel: tensor([1, -1], [2, 1]), weights: {} },
 * ]);
 * assert.deepEqual([stack.inputSize, stack.outputSize, head.length], [3, 2, 1]);
 * assert.deepEqual((await model.forward(randn([1, 4, 3]))).shape, [1, 1]);
 * ```
 *
 * @example From a file
 * ```ts ignore
 * import { fromKeras, loadKeras } from "../../mod.ts";
 * const { model } = fromKeras(await loadKeras(await Deno.readFile("model.keras")));
 * ```
 */
export function fromKeras(
  layers: readonly KerasLayerWeights[],
  options: FromKerasOptions = {},
): KerasModel {
  if (!Array.isArray(layers)) {
    throw new TypeError(`layers must be the array loadKeras returns, got ${describe(layers)}`);
  }
  const modules: Module[] = [];
  const raw: (RecurrentLayer & Module)[] = [];
  const head: Linear[] = [];
  let embedding: Embedding | undefined;
  let plain = true, sequences = false;
  const lastRecurrent = layers.findLastIndex((layer) =>
    layer.kind !== "embedding" && layer.kind !== "dense"
  );
  const order = () => layers.map((layer) => `${layer.kind} "${layer.name}"`).join(", ");
  for (const [i, layer] of layers.entries()) {
    for (const info of layer.preceding ?? []) modules.push(...weightless(info));
    if (layer.kind === "embedding") {
      if (i !== 0) throw new RangeError(`an Embedding must come first, got ${order()}`);
      if (layer.config?.mask_zero === true) {
        refuse(layer.name, "mask_zero", true, "the recurrent layers would skip the steps of id 0");
      }
      const [V, D] = layer.embeddings.shape;
      embedding = new Embedding(V, D);
      embedding.loadStateDict({ weight: layer.embeddings });
      modules.push(embedding);
    } else if (layer.kind === "dense") {
      const dense = importKerasDense(layer);
      head.push(dense);
      modules.push(dense, ...activationLayers(layer.name, layer.config?.activation));
    } else {
      if (head.length > 0) {
        throw new RangeError(
          `fromKeras reads [Embedding], recurrent layers, then Dense layers, got ${order()}`,
        );
      }
      if (raw.length > 0 && !sequences) {
        throw new RangeError(
          `Keras layer "${layer.name}" reads steps, but the layer before it returns only its ` +
            `final state (return_sequences false)`,
        );
      }
      const built = kerasRecurrent(layer, options, i === lastRecurrent);
      raw.push(built.raw);
      modules.push(built.wrapped);
      sequences = built.wrapped.returnSequences;
      plain &&= built.plain;
    }
    for (const info of layer.following ?? []) modules.push(...weightless(info));
  }
  if (raw.length === 0) {
    throw new RangeError(`fromKeras needs at least one recurrent layer, got ${order() || "none"}`);
  }
  const stack = plain && !sequences ? new Stacked(raw) : undefined;
  return {
    model: new Sequential(modules),
    ...(embedding === undefined ? {} : { embedding }),
    get stack(): Stacked {
      if (stack === undefined) {
        throw new RangeError(
          "this Keras model's recurrent layers are not one Stacked with torch's layouts (it " +
            "has go_backwards, a Bidirectional merged by sum, ave or mul, or returns every " +
            "step): use fromKeras(...).model",
        );
      }
      return stack;
    },
    head,
  };
}
