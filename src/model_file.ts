/**
 * `saveModel` / `loadModel`: a layer or a stack of layers as one safetensors file, its weights
 * plus its class and constructor arguments in the metadata (`arraylstm.model`), so it can be
 * rebuilt on any backend.
 *
 * @module
 */

import type { BackendName } from "./contract/mod.ts";
import { describe } from "./errors.ts";
import { Bidirectional } from "./models/bidirectional.ts";
import type { RecurrentLayer } from "./models/recurrent.ts";
import { buildModel, modelName, MODELS, sizesOf } from "./models/registry.ts";
import type { LSTM } from "./models/lstm.ts";
import type { GRU } from "./models/gru.ts";
import type { RNN } from "./models/rnn.ts";
import { Stacked } from "./models/stacked.ts";
import { Linear } from "./nn/linear.ts";
import type { Module } from "./nn/module.ts";
import { readSafetensors, saveSafetensors } from "./safetensors.ts";
import type { ModelName } from "./variants.ts";

/** The metadata key holding the model's description. */
export const MODEL_METADATA_KEY = "arraylstm.model";

/**
 * A saved model's class and constructor arguments (JSON in the metadata): `args` are the sizes
 * (`inputSize`, `hiddenSize`, then `k` for the array variants; `in`, `out` for `Linear`).
 */
export type ModelConfig =
  | { class: ModelName | "Linear"; args: number[]; options: Record<string, unknown> }
  | { class: "Stacked"; layers: ModelConfig[] }
  | { class: "Bidirectional"; forward: ModelConfig; backward: ModelConfig };

/** What {@linkcode loadModel} rebuilds: narrow it with `instanceof`. */
export type SavedModel = Stacked | Bidirectional | LSTM | GRU | RNN | Linear;

/**
 * The classes `saveModel` knows, by exact constructor (a subclass may change the equations): the
 * registry's model classes, `Linear` and the two containers.
 */
function configOf(model: Module): ModelConfig {
  const name = modelName(model);
  if (name !== null) {
    const m = model as LSTM | GRU | RNN;
    return { class: name, args: sizesOf(name, m), options: MODELS[name].options(m) };
  }
  switch (model.constructor) {
    case Linear: {
      const m = model as Linear;
      return { class: "Linear", args: [m.inFeatures, m.outFeatures], options: { bias: m.hasBias } };
    }
    case Stacked:
      return { class: "Stacked", layers: (model as Stacked).layers.map(configOf) };
    case Bidirectional: {
      const m = model as Bidirectional;
      return {
        class: "Bidirectional",
        forward: configOf(m.forwardLayer),
        backward: configOf(m.backwardLayer),
      };
    }
    default:
      throw new TypeError(
        `saveModel saves this package's layers (${Object.keys(MODELS).join(", ")}, Linear, ` +
          `Stacked, Bidirectional), got ${describe(model)}: save a subclass's stateDict() with ` +
          "saveSafetensors and rebuild it yourself",
      );
  }
}

/**
 * A model as safetensors bytes: `stateDict()` plus its class and constructor arguments in the
 * metadata, which {@linkcode loadModel} reads back. The backend is not saved.
 *
 * @param metadata More metadata to keep (strings).
 *
 * @example Save a torch network and rebuild it
 * ```ts
 * import assert from "node:assert/strict";
 * import { GRU, loadModel, randn, saveModel, Stacked } from "../mod.ts";
 * const net = new Stacked([
 *   new GRU(3, 4, { seed: 1, backend: "js" }),
 *   new GRU(4, 4, { seed: 2, backend: "js" }),
 * ]);
 * const copy = loadModel(saveModel(net), { backend: "js" });
 * assert.ok(copy instanceof Stacked);
 * const x = randn([2, 5, 3], { seed: 3 });
 * assert.deepEqual((await copy.forward(x)).output.data, (await net.forward(x)).output.data);
 * ```
 */
export function saveModel(model: Module, metadata: Record<string, string> = {}): Uint8Array {
  const config = configOf(model);
  return saveSafetensors(model.stateDict(), {
    ...metadata,
    [MODEL_METADATA_KEY]: JSON.stringify(config),
  });
}

function build(config: ModelConfig, backend: BackendName | undefined, path: string): Module {
  const fail = (): never => {
    throw new RangeError(
      `${path} is not a model description saveModel writes, got ${describe(config)}`,
    );
  };
  if (typeof config !== "object" || config === null) return fail();
  const options = "options" in config && typeof config.options === "object" ? config.options : {};
  const args: number[] = "args" in config && Array.isArray(config.args) ? config.args : [];
  if (Object.hasOwn(MODELS, config.class)) {
    const [inputSize, hiddenSize, k] = args;
    return buildModel(config.class as ModelName, { inputSize, hiddenSize, k }, {
      ...options,
      backend,
    });
  }
  switch (config.class) {
    case "Linear":
      return new Linear(args[0], args[1], options);
    case "Stacked":
      if (!Array.isArray(config.layers)) return fail();
      return new Stacked(
        config.layers.map((layer, i) =>
          build(layer, backend, `${path}.layers[${i}]`) as RecurrentLayer
        ),
      );
    case "Bidirectional":
      return new Bidirectional(
        build(config.forward, backend, `${path}.forward`) as RecurrentLayer,
        build(config.backward, backend, `${path}.backward`) as RecurrentLayer,
      );
    default:
      return fail();
  }
}

/**
 * Rebuilds a model {@linkcode saveModel} wrote (any layer or stack of this package) with its
 * weights, on `options.backend`.
 *
 * @throws {RangeError} If the file has no model description (a bare `stateDict`: construct the
 *   model and call `loadStateDict`), or its tensors do not fit it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel, LSTM, saveModel } from "../mod.ts";
 * const lstm = loadModel(saveModel(new LSTM(3, 4, { seed: 1 })), { backend: "js" });
 * assert.ok(lstm instanceof LSTM);
 * ```
 */
export function loadModel(
  bytes: Uint8Array,
  options: { backend?: BackendName } = {},
): SavedModel {
  const { tensors, metadata } = readSafetensors(bytes);
  const text = metadata[MODEL_METADATA_KEY];
  if (text === undefined) {
    throw new RangeError(
      `the file has no "${MODEL_METADATA_KEY}" metadata (it holds ${
        Object.keys(tensors).join(", ") || "no tensors"
      }), so it is a bare state dict: construct the model and call loadStateDict, or use ` +
        "fromTorch for a torch.nn state_dict",
    );
  }
  let config: ModelConfig;
  try {
    config = JSON.parse(text);
  } catch (cause) {
    throw new RangeError(`the "${MODEL_METADATA_KEY}" metadata is not JSON: ${describe(text)}`, {
      cause,
    });
  }
  const model = build(config, options?.backend, "model");
  model.loadStateDict(tensors);
  return model as SavedModel;
}
