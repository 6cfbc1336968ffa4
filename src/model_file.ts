/**
 * `saveModel` / `loadModel` / `readModelMetadata`: any layer, stack or `Sequential` as one
 * safetensors file: its weights, its class tree with the constructor arguments (metadata key
 * `arraylstm.model`) and the user's JSON metadata (`arraylstm.metadata`), so it can be rebuilt on
 * any backend. The CLI's older files (metadata key `arraylstm`) load as the `Sequential` they are.
 *
 * @module
 */

import type { BackendName } from "./contract/mod.ts";
import { describe, describeKind } from "./errors.ts";
import {
  buildConfig,
  checkDepth,
  classOf,
  configOf,
  expectedShapes,
  MAX_CONFIG_DEPTH,
  type ModelConfig,
  ModelFileError,
} from "./model_config.ts";
import { CLI_METADATA_KEY, readCliModelFile } from "./model_file_cli.ts";
import type { Bidirectional } from "./models/bidirectional.ts";
import type { GRU } from "./models/gru.ts";
import type { LastStep } from "./models/last_step.ts";
import type { LSTM } from "./models/lstm.ts";
import type { RNN } from "./models/rnn.ts";
import type { Sequential } from "./models/sequential.ts";
import type { Stacked } from "./models/stacked.ts";
import type { LogSoftmax, ReLU, Sigmoid, Softmax, Tanh } from "./nn/activations.ts";
import type { Dropout } from "./nn/dropout.ts";
import type { Embedding } from "./nn/embedding.ts";
import type { Linear } from "./nn/linear.ts";
import type { Module } from "./nn/module.ts";
import { readSafetensors, SafetensorsError, saveSafetensors } from "./safetensors.ts";
import type { Tensor } from "./tensor.ts";

export { type ModelConfig, ModelFileError } from "./model_config.ts";

/** The metadata key holding the model's class tree ({@linkcode ModelConfig}, JSON). */
export const MODEL_METADATA_KEY = "arraylstm.model";
/** The metadata key holding the user's metadata (JSON). */
const USER_METADATA_KEY = "arraylstm.metadata";
/** The metadata key listing the tensors saved beside the model's (JSON array of names). */
const EXTRA_TENSORS_KEY = "arraylstm.extra";

/** A JSON value: what `metadata` may hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | {
  [key: string]: JsonValue;
};

/** The user's metadata of a model file: a JSON object. */
export type ModelMetadata = { [key: string]: JsonValue };

/** What {@linkcode loadModel} rebuilds: narrow it with `instanceof`, or pass `expect`. */
export type SavedModel =
  | Sequential
  | Stacked
  | Bidirectional
  | LSTM
  | GRU
  | RNN
  | Linear
  | Embedding
  | Dropout
  | LastStep
  | ReLU
  | Tanh
  | Sigmoid
  | Softmax
  | LogSoftmax;

/** Options of {@linkcode saveModel}. */
export interface SaveModelOptions {
  /** Your own JSON metadata (a vocabulary, a tokenizer, a training state); {@linkcode readModelMetadata} reads it back. */
  readonly metadata?: ModelMetadata;
  /**
   * More tensors to keep in the file beside the model's (an optimizer's buffers, say), by names
   * other than the model's `stateDict()` keys. `loadModel` leaves them; `loadSafetensors(bytes)`
   * reads them.
   */
  readonly tensors?: Record<string, Tensor>;
}

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions<M extends Module = SavedModel> {
  /** The backend the recurrent layers run on (default `"auto"`); the file does not say. */
  readonly backend?: BackendName;
  /**
   * The class the file must hold (`Sequential`, `LSTM`, ...): checked before anything is built,
   * and the result is typed as it.
   */
  readonly expect?: abstract new (...args: never[]) => M;
}

/** Checks that `value` is JSON (finite numbers, plain objects), without recursion. */
function checkJson(name: string, value: unknown): void {
  const stack: [unknown, string][] = [[value, name]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (item === null || typeof item === "string" || typeof item === "boolean") continue;
    if (typeof item === "number" && Number.isFinite(item)) continue;
    const plain = typeof item === "object" &&
      [Object.prototype, Array.prototype, null].includes(Object.getPrototypeOf(item));
    if (!plain) {
      throw new TypeError(
        `${path} must be JSON (null, a boolean, a finite number, a string, an array or a plain ` +
          `object), got ${describeKind(item)}`,
      );
    }
    for (const [key, child] of Object.entries(item as object)) {
      stack.push([child, Array.isArray(item) ? `${path}[${key}]` : `${path}.${key}`]);
    }
  }
}

/**
 * A model as safetensors bytes: `stateDict()` plus its class tree and constructor arguments, and
 * your JSON `metadata`, which {@linkcode loadModel} and {@linkcode readModelMetadata} read back.
 * Any layer of this package, `Stacked`, `Bidirectional` and `Sequential` (with `Embedding`,
 * `Dropout`, `Linear`, `LastStep` and the activations). The backend is not saved.
 *
 * @param model The layer or container to save.
 * @param options Your `metadata` (JSON) and more `tensors` to keep beside the model's.
 * @throws {TypeError} For a class that is not this package's (a subclass, a layer of your own),
 *   metadata that is not JSON, or an extra tensor named like a parameter.
 *
 * @example A character model with its vocabulary
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   ArrayLSTM,
 *   Dropout,
 *   Embedding,
 *   Linear,
 *   loadModel,
 *   readModelMetadata,
 *   saveModel,
 *   Sequential,
 * } from "../mod.ts";
 * const vocabulary = ["", "a", "b", "c"];
 * const model = new Sequential([
 *   new Embedding(4, 8, { seed: 1 }),
 *   new ArrayLSTM(8, 16, 2, { backend: "js", seed: 2 }),
 *   new Dropout(0.1),
 *   new Linear(16, 4, { seed: 3 }),
 * ]);
 * const bytes = saveModel(model, { metadata: { vocabulary, tokens: "chars" } });
 * const again = loadModel(bytes, { backend: "js", expect: Sequential });
 * assert.deepEqual((await again.forward([[1, 2]])).data, (await model.forward([[1, 2]])).data);
 * assert.deepEqual(readModelMetadata(bytes).vocabulary, vocabulary);
 * ```
 */
export function saveModel(model: Module, options: SaveModelOptions = {}): Uint8Array {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be { metadata, tensors }, got ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((key) => key !== "metadata" && key !== "tensors");
  if (unknown.length > 0) {
    throw new TypeError(
      `options must be { metadata, tensors }, got the option(s) ${unknown.join(", ")}: put your ` +
        "own values under options.metadata",
    );
  }
  const config = configOf(model);
  const { metadata = {}, tensors: extra = {} } = options;
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new TypeError(`options.metadata must be a JSON object, got ${describeKind(metadata)}`);
  }
  checkJson("options.metadata", metadata);
  const parameters = model.stateDict();
  const clash = Object.keys(extra).find((name) => Object.hasOwn(parameters, name));
  if (clash !== undefined) {
    throw new TypeError(
      `options.tensors["${clash}"] has the name of a parameter of the model: name the extra ` +
        "tensors apart (e.g. optimizer.0.exp_avg)",
    );
  }
  const extraNames = Object.keys(extra);
  return saveSafetensors({ ...parameters, ...extra }, {
    [MODEL_METADATA_KEY]: JSON.stringify(config),
    ...(Object.keys(metadata).length > 0 ? { [USER_METADATA_KEY]: JSON.stringify(metadata) } : {}),
    ...(extraNames.length > 0 ? { [EXTRA_TENSORS_KEY]: JSON.stringify(extraNames) } : {}),
  });
}

/** A model file's parts: the class tree, the user's metadata, the model's tensors. */
interface ModelFileParts {
  readonly config: ModelConfig;
  readonly metadata: Record<string, unknown>;
  readonly tensors: Record<string, Tensor>;
}

function parseJson(key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ModelFileError(`the "${key}" metadata is not JSON: ${describe(text.slice(0, 80))}`, {
      cause,
    });
  }
}

/** Reads the parts of a model file (this package's, or the CLI's older ones), or says what it is. */
function readParts(bytes: Uint8Array, tensorsToo: boolean): ModelFileParts {
  let contents;
  try {
    contents = readSafetensors(bytes);
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    throw new ModelFileError(
      `it is not a safetensors file (${error.message}): a torch .pt file loads with loadTorch ` +
        "and fromTorch, a Keras file with loadKeras and fromKeras",
      { cause: error },
    );
  }
  const { tensors, metadata } = contents;
  const text = metadata[MODEL_METADATA_KEY];
  if (text === undefined && metadata[CLI_METADATA_KEY] !== undefined) {
    return readCliModelFile(metadata[CLI_METADATA_KEY], tensorsToo ? tensors : {});
  }
  if (text === undefined) {
    const found = Object.entries(tensors).slice(0, 6).map(([name, t]) =>
      `${name} ${describe(t.shape)}`
    );
    const more = Object.keys(tensors).length > 6 ? ", ..." : "";
    const keys = Object.keys(metadata);
    throw new ModelFileError(
      `it has no "${MODEL_METADATA_KEY}" metadata, so it is a bare state dict: construct the ` +
        "model and call model.loadStateDict(loadSafetensors(bytes)), or use fromTorch for a " +
        `torch.nn state_dict (it holds ${found.join(", ") || "no tensors"}${more}${
          keys.length > 0 ? `; metadata ${keys.map(describe).join(", ")}` : ""
        })`,
    );
  }
  const config = parseJson(MODEL_METADATA_KEY, text);
  checkDepth(`the "${MODEL_METADATA_KEY}" metadata`, config, MAX_CONFIG_DEPTH);
  let user: Record<string, unknown>;
  if (metadata[USER_METADATA_KEY] !== undefined) {
    const parsed = parseJson(USER_METADATA_KEY, metadata[USER_METADATA_KEY]);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ModelFileError(`the "${USER_METADATA_KEY}" metadata must be a JSON object`);
    }
    user = parsed as Record<string, unknown>;
  } else {
    // saveModel once kept the user's strings as metadata keys of their own.
    user = Object.fromEntries(
      Object.entries(metadata).filter(([key]) => !key.startsWith("arraylstm.")),
    );
  }
  const extras = metadata[EXTRA_TENSORS_KEY] === undefined
    ? []
    : parseJson(EXTRA_TENSORS_KEY, metadata[EXTRA_TENSORS_KEY]);
  if (!Array.isArray(extras)) {
    throw new ModelFileError(`the "${EXTRA_TENSORS_KEY}" metadata must be an array of names`);
  }
  const own = Object.fromEntries(
    Object.entries(tensors).filter(([name]) => !extras.includes(name)),
  );
  return { config: config as ModelConfig, metadata: user, tensors: own };
}

/** Refuses tensors that are not exactly the ones `config` implies, before anything is built. */
function checkTensors(config: ModelConfig, tensors: Record<string, Tensor>): void {
  const shapes = expectedShapes(config);
  const problems: string[] = [];
  for (const [name, shape] of shapes) {
    if (!Object.hasOwn(tensors, name)) problems.push(`missing "${name}" ${describe(shape)}`);
    else if (describe(tensors[name].shape) !== describe(shape)) {
      problems.push(
        `"${name}" is ${describe(tensors[name].shape)} in the file, the metadata implies ` +
          describe(shape),
      );
    }
  }
  for (const name of Object.keys(tensors)) {
    if (!shapes.has(name)) problems.push(`unexpected tensor "${name}"`);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 6).join("; ") + (problems.length > 6 ? "; ..." : "");
    throw new ModelFileError(
      `its tensors do not fit the ${config.class} its "${MODEL_METADATA_KEY}" metadata ` +
        `describes (${shown}); refused before building the model: the file is corrupt, or was ` +
        "not written by saveModel",
    );
  }
}

/**
 * Rebuilds a model {@linkcode saveModel} wrote (any layer, stack or `Sequential` of this
 * package), or one the CLI's `train` wrote, with its weights, on `options.backend`. The file's
 * tensors are checked against the shapes its metadata implies before anything is built, so a
 * small file cannot claim a huge model.
 *
 * The result is a union of the classes: narrow it with `instanceof`, or pass `expect: Sequential`
 * (any class) to have the file's class checked and the result typed as it. `loadModel<Sequential>`
 * without `expect` types the result without checking it.
 *
 * @param bytes The file.
 * @param options `backend`, and the class to `expect`.
 * @throws {ModelFileError} (a `RangeError`) If the file has no model description (a bare
 *   `stateDict`: construct the model and call `loadStateDict(loadSafetensors(bytes))`), its
 *   description is not one `saveModel` writes, its tensors do not fit it, or it holds another
 *   class than `expect`.
 *
 * @example Typed by `expect`, or narrowed by `instanceof`
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel, LSTM, saveModel, Sequential } from "../mod.ts";
 * const bytes = saveModel(new LSTM(3, 4, { seed: 1 }));
 * const lstm = loadModel(bytes, { backend: "js", expect: LSTM }); // an LSTM
 * assert.equal(lstm.hiddenSize, 4);
 * const any = loadModel(bytes, { backend: "js" });
 * if (any instanceof LSTM) assert.equal(any.inputSize, 3);
 * assert.throws(
 *   () => loadModel(bytes, { expect: Sequential }),
 *   /holds the class LSTM, not Sequential/,
 * );
 * ```
 */
export function loadModel<M extends Module = SavedModel>(
  bytes: Uint8Array,
  options: LoadModelOptions<M> = {},
): M {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be { backend, expect }, got ${describe(options)}`);
  }
  const { config, tensors } = readParts(bytes, true);
  checkTensors(config, tensors);
  const expect = options.expect;
  if (expect !== undefined) {
    if (typeof expect !== "function") {
      throw new TypeError(
        `options.expect must be a class (Sequential, LSTM, ...), got ${describeKind(expect)}`,
      );
    }
    const held = classOf(config);
    if (held !== expect && !(held.prototype instanceof expect)) {
      throw new ModelFileError(
        `the file holds the class ${held.name}, not ${expect.name}: load it with expect: ` +
          `${held.name}, or without expect and narrow it with instanceof`,
      );
    }
  }
  const model = buildConfig(config, options.backend);
  try {
    model.loadStateDict(tensors);
  } catch (error) {
    (model as { dispose?: () => void }).dispose?.();
    throw new ModelFileError(
      `its tensors do not load into the model: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return model as M;
}

/**
 * The user's metadata of a model file ({@linkcode saveModel}'s `metadata`), without building the
 * model or reading its weights. Type it with what you saved:
 * `readModelMetadata<{ vocabulary: string[] }>(bytes)` (not checked). A file the CLI's `train`
 * wrote gives `{ format, tokens, vocabulary, training }`; a file without metadata gives `{}`.
 *
 * @throws {ModelFileError} If the file is not a model file (a bare state dict, not safetensors).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GRU, readModelConfig, readModelMetadata, saveModel } from "../mod.ts";
 * const bytes = saveModel(new GRU(2, 3), { metadata: { vocabulary: ["", "a"], epochs: 3 } });
 * const { vocabulary } = readModelMetadata<{ vocabulary: string[] }>(bytes);
 * assert.deepEqual(vocabulary, ["", "a"]);
 * assert.equal(readModelConfig(bytes).class, "GRU");
 * ```
 */
export function readModelMetadata<M extends object = ModelMetadata>(bytes: Uint8Array): M {
  return readParts(bytes, false).metadata as M;
}

/**
 * The class tree of a model file (`class`, constructor `args` and `options` of every layer),
 * without building the model: what `loadModel` would build.
 *
 * @throws {ModelFileError} If the file is not a model file, or its description is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, readModelConfig, saveModel, Sequential } from "../mod.ts";
 * const bytes = saveModel(new Sequential([new Linear(3, 2)]));
 * assert.deepEqual(readModelConfig(bytes), {
 *   class: "Sequential",
 *   layers: [{ class: "Linear", args: [3, 2], options: { bias: true } }],
 * });
 * ```
 */
export function readModelConfig(bytes: Uint8Array): ModelConfig {
  const { config } = readParts(bytes, false);
  expectedShapes(config); // checks the whole tree, allocating nothing
  return config;
}
