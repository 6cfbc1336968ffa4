/**
 * A model's description in a model file: the class tree with each layer's constructor arguments
 * ({@linkcode ModelConfig}), read from a layer ({@linkcode configOf}), checked against a file's
 * tensors before anything is allocated ({@linkcode expectedShapes}), and rebuilt
 * ({@linkcode buildConfig}). The class-to-constructor table is `src/models/registry.ts`.
 *
 * @module
 */

import type { BackendName } from "./contract/mod.ts";
import { describe, describeKind } from "./errors.ts";
import { Bidirectional } from "./models/bidirectional.ts";
import type { RecurrentLayer } from "./models/recurrent.ts";
import { type LayerName, layerName, LAYERS } from "./models/registry.ts";
import { Sequential } from "./models/sequential.ts";
import { Stacked } from "./models/stacked.ts";
import type { Module } from "./nn/module.ts";

/**
 * A saved model's class tree (JSON in the file's metadata). A layer is its class with `args`, its
 * positional constructor arguments (`inputSize`, `hiddenSize`, then `k` for the array variants;
 * `in`, `out` for `Linear`; `p` for `Dropout`; none for `LastStep` and the activations), and its
 * `options`; the containers hold their layers.
 */
export type ModelConfig =
  | { class: LayerName; args: number[]; options: Record<string, unknown> }
  | { class: "Stacked"; layers: ModelConfig[] }
  | { class: "Sequential"; layers: ModelConfig[] }
  | { class: "Bidirectional"; forward: ModelConfig; backward: ModelConfig };

/**
 * The error of a model file whose description or tensors are not what `saveModel` writes (a
 * `RangeError`, as the loader's errors were).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel, ModelFileError, saveSafetensors } from "../mod.ts";
 * assert.throws(() => loadModel(saveSafetensors({})), ModelFileError);
 * ```
 */
export class ModelFileError extends RangeError {
  /**
   * Makes the error; `message` says what is wrong with the file and what to do.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ModelFileError } from "./model_config.ts";
   * const error = new ModelFileError("no model in it");
   * assert.equal(error.message, "cannot load model file: no model in it");
   * assert.ok(error instanceof RangeError);
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(`cannot load model file: ${message}`, options);
    this.name = "ModelFileError";
  }
}

/** The deepest class tree a file may describe (real models are a few levels deep). */
export const MAX_CONFIG_DEPTH = 64;

const CONTAINERS = ["Stacked", "Sequential", "Bidirectional"] as const;

/**
 * The description of `model`, for any layer of {@linkcode LAYERS} and the containers.
 *
 * @throws {TypeError} For a class that is not this package's (a subclass, a user's layer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configOf } from "./model_config.ts";
 * import { Dropout, Linear, Sequential } from "../mod.ts";
 * assert.deepEqual(configOf(new Sequential([new Linear(3, 2), new Dropout(0.1)])), {
 *   class: "Sequential",
 *   layers: [
 *     { class: "Linear", args: [3, 2], options: { bias: true } },
 *     { class: "Dropout", args: [0.1], options: {} },
 *   ],
 * });
 * ```
 */
export function configOf(model: Module, path = "model"): ModelConfig {
  const name = layerName(model);
  if (name !== null) {
    return { class: name, args: LAYERS[name].args(model), options: LAYERS[name].options(model) };
  }
  switch (model?.constructor) {
    case Stacked:
      return {
        class: "Stacked",
        layers: (model as Stacked).layers.map((layer, i) =>
          configOf(layer, `${path}.layers[${i}]`)
        ),
      };
    case Sequential:
      return {
        class: "Sequential",
        layers: (model as Sequential).layers.map((layer, i) =>
          configOf(layer, `${path}.layers[${i}]`)
        ),
      };
    case Bidirectional: {
      const m = model as Bidirectional;
      return {
        class: "Bidirectional",
        forward: configOf(m.forwardLayer, `${path}.forwardLayer`),
        backward: configOf(m.backwardLayer, `${path}.backwardLayer`),
      };
    }
    default:
      throw new TypeError(
        `saveModel saves this package's layers (${Object.keys(LAYERS).join(", ")}) and ` +
          `containers (${CONTAINERS.join(", ")}); ${path} is ${describeKind(model)}: save a ` +
          "subclass's stateDict() with saveSafetensors and rebuild it yourself",
      );
  }
}

/**
 * Checks that a parsed JSON value nests at most `maxDepth` arrays and objects deep, without
 * recursion (a hostile file may nest thousands of levels).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDepth } from "./model_config.ts";
 * checkDepth("config", { a: [1, { b: 2 }] }, 3);
 * assert.throws(() => checkDepth("config", [[[[1]]]], 3), /config nests deeper than 3 levels/);
 * ```
 */
export function checkDepth(name: string, value: unknown, maxDepth: number): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== "object" || item === null) continue;
    if (depth >= maxDepth) {
      throw new ModelFileError(
        `${name} nests deeper than ${maxDepth} levels of arrays and objects; a model file ` +
          "saveModel wrote is a few levels deep, so this file is corrupt or hostile",
      );
    }
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
}

/** The config of a layer class, checked; the error names `path`. */
function leaf(
  config: Record<string, unknown>,
  path: string,
): { name: LayerName; args: number[]; options: Record<string, unknown> } {
  const name = config.class as LayerName;
  const entry = LAYERS[name];
  const { args, options = {} } = config;
  if (
    !Array.isArray(args) || args.length !== entry.argNames.length ||
    !args.every((arg) => typeof arg === "number" && Number.isFinite(arg))
  ) {
    throw new ModelFileError(
      `${path}.args must be the ${entry.argNames.length} numbers (${
        entry.argNames.join(", ")
      }) of a ${name}, got ${describe(args)}`,
    );
  }
  args.slice(0, entry.sizes).forEach((size, i) => {
    if (!Number.isInteger(size) || size <= 0) {
      throw new ModelFileError(
        `${path}.args[${i}] (${entry.argNames[i]}) must be a positive integer, got ${size}`,
      );
    }
  });
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ModelFileError(`${path}.options must be an object, got ${describe(options)}`);
  }
  return { name, args, options: options as Record<string, unknown> };
}

/** `config` as an object with a known class, or an error naming `path`. */
function node(config: unknown, path: string): Record<string, unknown> {
  const known = [...Object.keys(LAYERS), ...CONTAINERS];
  const record = config as Record<string, unknown>;
  if (
    typeof config !== "object" || config === null || Array.isArray(config) ||
    typeof record.class !== "string" || !known.includes(record.class)
  ) {
    throw new ModelFileError(
      `${path} must be a layer description { class, args, options } or a container ` +
        `{ class, layers } of one of ${known.join(", ")}, got ${
          typeof config === "object" && config !== null
            ? `class ${describe(record.class)}`
            : describe(config)
        }`,
    );
  }
  return record;
}

/** The parts of a container, as `[stateDict prefix, config, path]`. */
function parts(config: Record<string, unknown>, path: string): [string, unknown, string][] {
  if (config.class === "Bidirectional") {
    return [["forward", config.forward, `${path}.forward`], [
      "backward",
      config.backward,
      `${path}.backward`,
    ]];
  }
  const layers = config.layers;
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new ModelFileError(
      `${path}.layers must be a non-empty array of layer descriptions, got ${describe(layers)}`,
    );
  }
  return layers.map((layer, i) => [String(i), layer, `${path}.layers[${i}]`]);
}

/**
 * The parameter shapes a description implies, by `stateDict()` key, computed from the arguments
 * alone: nothing is allocated, so a file's tensors can be checked against them first.
 *
 * @throws {ModelFileError} If the description is not one `saveModel` writes, naming where.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedShapes } from "./model_config.ts";
 * assert.deepEqual(
 *   expectedShapes({
 *     class: "Sequential",
 *     layers: [
 *       { class: "Embedding", args: [10, 4], options: {} },
 *       { class: "ArrayLSTM", args: [4, 8192, 8], options: {} },
 *     ],
 *   }).get("1.h2h.weight"),
 *   [262144, 8192],
 * );
 * ```
 */
export function expectedShapes(config: unknown, path = "model"): Map<string, number[]> {
  checkDepth(path, config, MAX_CONFIG_DEPTH);
  const shapes = new Map<string, number[]>();
  const visit = (config: unknown, path: string, prefix: string): void => {
    const record = node(config, path);
    if (Object.hasOwn(LAYERS, record.class as string)) {
      const { name, args, options } = leaf(record, path);
      for (const [key, shape] of Object.entries(LAYERS[name].shapes(args, options))) {
        shapes.set(prefix + key, shape);
      }
      return;
    }
    for (const [key, part, partPath] of parts(record, path)) {
      visit(part, partPath, `${prefix}${key}.`);
    }
  };
  visit(config, path, "");
  return shapes;
}

/**
 * Makes the model a description holds, with fresh weights, on `backend`. Check the file's
 * tensors with {@linkcode expectedShapes} first: the sizes here are taken as they are.
 *
 * @throws {ModelFileError} If a layer's constructor refuses its arguments, naming where.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildConfig } from "./model_config.ts";
 * import { GRU, Stacked } from "../mod.ts";
 * const model = buildConfig({ class: "Stacked", layers: [{ class: "GRU", args: [3, 4], options: {} }] });
 * assert.ok(model instanceof Stacked && model.layers[0] instanceof GRU);
 * ```
 */
export function buildConfig(
  config: ModelConfig,
  backend?: BackendName,
  path = "model",
): Module {
  checkDepth(path, config, MAX_CONFIG_DEPTH);
  const build = (config: unknown, path: string): Module => {
    const record = node(config, path);
    try {
      if (Object.hasOwn(LAYERS, record.class as string)) {
        const { name, args, options } = leaf(record, path);
        return LAYERS[name].build(args, options, backend);
      }
      const built = parts(record, path).map(([, part, partPath]) => build(part, partPath));
      switch (record.class) {
        case "Stacked":
          return new Stacked(built as unknown as RecurrentLayer[]);
        case "Bidirectional":
          return new Bidirectional(
            built[0] as unknown as RecurrentLayer,
            built[1] as unknown as RecurrentLayer,
          );
        default:
          return new Sequential(built);
      }
    } catch (error) {
      if (error instanceof ModelFileError) throw error;
      throw new ModelFileError(
        `${path} (${record.class}) cannot be built: ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  return build(config, path);
}

/**
 * The class a description's top holds (`Sequential`, `LSTM`, ...), for `loadModel`'s `expect`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classOf } from "./model_config.ts";
 * import { Sequential } from "./models/sequential.ts";
 * assert.equal(classOf({ class: "Sequential", layers: [] }), Sequential);
 * ```
 */
export function classOf(config: ModelConfig): abstract new (...args: never[]) => Module {
  switch (config.class) {
    case "Stacked":
      return Stacked;
    case "Sequential":
      return Sequential;
    case "Bidirectional":
      return Bidirectional;
    default:
      return LAYERS[config.class].layer;
  }
}
