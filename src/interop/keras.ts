/**
 * Reads the weights of a Keras Sequential model of LSTM and Dense layers from the files Keras
 * writes: Keras 3's `.weights.h5` and `.keras` (a zip of `config.json` and `model.weights.h5`),
 * and Keras 2's `.h5` from `model.save` or `model.save_weights`. Weights keep Keras' own layouts;
 * `importKerasLSTM` and `importKerasDense` convert them.
 *
 * @module
 */

import { unzipSync } from "npm:fflate@0.8.2";
import type * as H5 from "npm:h5wasm@0.10.3";
import type { Tensor } from "../tensor.ts";
import { type Hdf5Handle, hdf5Reason, withHdf5 } from "./hdf5.ts";

/**
 * The error every unreadable or unexpected Keras file produces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KerasLoadError, loadKeras } from "./keras.ts";
 * await assert.rejects(loadKeras(new TextEncoder().encode("not a Keras file")), KerasLoadError);
 * ```
 */
export class KerasLoadError extends Error {
  /**
   * Makes the error; `message` says what is wrong with the file and what was found.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KerasLoadError } from "./keras.ts";
   * const error = new KerasLoadError("no LSTM layer in it");
   * assert.equal(error.message, "cannot load Keras file: no LSTM layer in it");
   * assert.equal(error.name, "KerasLoadError");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(`cannot load Keras file: ${message}`, options);
    this.name = "KerasLoadError";
  }
}

/** A Keras `LSTM` layer's weights, in Keras' layout. */
export interface KerasLSTMWeights {
  /** Discriminates the layer kinds. */
  readonly kind: "lstm";
  /** The layer's name: Keras 2's layer name, or Keras 3's weight-file path name (`lstm_1`). */
  readonly name: string;
  /** The hidden size `H`. */
  readonly units: number;
  /** Input weights `(I, 4H)`, gate blocks in Keras' order i, f, c, o. */
  readonly kernel: Tensor;
  /** Recurrent weights `(H, 4H)`, gate blocks i, f, c, o. */
  readonly recurrentKernel: Tensor;
  /** Bias `(4H)`, absent when the layer was built with `use_bias=False`. */
  readonly bias?: Tensor;
  /** The layer's Keras config (`recurrent_activation`, ...), when the file holds the model's. */
  readonly config?: Record<string, unknown>;
}

/** A Keras `Dense` layer's weights, in Keras' layout. */
export interface KerasDenseWeights {
  /** Discriminates the layer kinds. */
  readonly kind: "dense";
  /** The layer's name: Keras 2's layer name, or Keras 3's weight-file path name (`dense_1`). */
  readonly name: string;
  /** The output size. */
  readonly units: number;
  /** Weights `(I, units)` (the transpose of torch's `Linear.weight`). */
  readonly kernel: Tensor;
  /** Bias `(units)`, absent when the layer was built with `use_bias=False`. */
  readonly bias?: Tensor;
  /** The layer's Keras config (`activation`, ...), when the file holds the model's. */
  readonly config?: Record<string, unknown>;
}

/** One layer with weights of a Keras Sequential model. */
export type KerasLayerWeights = KerasLSTMWeights | KerasDenseWeights;

type LayerConfig = { readonly className: string; readonly config: Record<string, unknown> };
type NamedWeights = Map<string, Tensor>; // "kernel", "recurrent_kernel", "bias"

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return prefix.every((byte, i) => bytes[at + i] === byte);
}

/**
 * Reads the LSTM and Dense layers of a Keras Sequential model, in model order, from a Keras 3
 * `.weights.h5` or `.keras` file or a Keras 2 `.h5` file. Layers without weights (Dropout, ...)
 * are skipped. A bare Keras 3 `.weights.h5` does not record the order of layers of different
 * kinds (Keras names its groups after the class: `lstm`, `lstm_1`, `dense`); from one, LSTM
 * layers come first, then Dense layers, each kind in order. A `.keras` file or a Keras 2 file
 * gives the exact order.
 *
 * h5wasm (the HDF5 library compiled to WebAssembly) is loaded on the first call; reading needs
 * no permissions.
 *
 * @param bytes The file's contents.
 * @returns The layers with weights, first to last.
 * @throws {KerasLoadError} If the file is not HDF5 or a `.keras` zip, holds none of the Keras
 * layouts (the message lists what it holds), or holds a layer with weights that is not an LSTM
 * or Dense layer, or whose weights have inconsistent shapes.
 *
 * @example Read a Keras LSTM stack
 * ```ts ignore
 * import { loadKeras } from "./keras.ts";
 * const layers = await loadKeras(await Deno.readFile("model.keras"));
 * for (const layer of layers) console.log(layer.kind, layer.name, layer.units);
 * ```
 *
 * @example Anything that is neither HDF5 nor a `.keras` zip is refused with a reason
 * ```ts
 * import assert from "node:assert/strict";
 * import { KerasLoadError, loadKeras } from "./keras.ts";
 * await assert.rejects(loadKeras(new Uint8Array(16)), KerasLoadError);
 * ```
 */
export async function loadKeras(bytes: Uint8Array): Promise<KerasLayerWeights[]> {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`bytes must be a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
  }
  let weights = bytes;
  let configs: LayerConfig[] | undefined;
  if (startsWith(bytes, ZIP_MAGIC)) {
    ({ weights, configs } = readKerasZip(bytes));
  }
  if (!startsWith(weights, HDF5_SIGNATURE)) {
    throw new KerasLoadError(
      "not an HDF5 file (no HDF5 signature) nor a .keras zip; expected a Keras .weights.h5, " +
        ".keras or .h5 file",
    );
  }
  try {
    return await withHdf5(weights, (handle) => readLayers(handle, configs));
  } catch (error) {
    if (error instanceof KerasLoadError) throw error;
    throw new KerasLoadError(`unreadable HDF5 file (${hdf5Reason(error)})`, { cause: error });
  }
}

function readKerasZip(bytes: Uint8Array): { weights: Uint8Array; configs: LayerConfig[] } {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (error) {
    throw new KerasLoadError(`corrupt .keras zip archive: ${String(error)}`, { cause: error });
  }
  const weights = files["model.weights.h5"];
  const config = files["config.json"];
  if (weights === undefined || config === undefined) {
    throw new KerasLoadError(
      `a .keras zip holds model.weights.h5 and config.json, this one holds ${
        Object.keys(files).join(", ") || "nothing"
      }`,
    );
  }
  return {
    weights,
    configs: layerConfigs(parseJson(new TextDecoder().decode(config), "config.json")),
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new KerasLoadError(`${what} is not valid JSON: ${String(error)}`, { cause: error });
  }
}

/** The layers of a Keras model config (Keras 2 `model_config` or Keras 3 `config.json`). */
function layerConfigs(model: unknown): LayerConfig[] {
  const body = (model as { config?: unknown } | null)?.config;
  // Keras 2.0-2.2 Sequential configs are the list of layers itself.
  const layers = Array.isArray(body) ? body : (body as { layers?: unknown } | undefined)?.layers;
  if (!Array.isArray(layers)) {
    throw new KerasLoadError("the model config has no list of layers; is it a Sequential model?");
  }
  return layers.map((layer) => ({
    className: String(layer?.class_name),
    config: (layer?.config ?? {}) as Record<string, unknown>,
  }));
}

function readLayers(handle: Hdf5Handle, configs: LayerConfig[] | undefined): KerasLayerWeights[] {
  const { file } = handle;
  const keys = file.keys();
  if (keys.includes("layers")) return readKeras3(handle, configs);
  const modelConfig = attribute(file, "model_config");
  const keras2Configs = typeof modelConfig === "string"
    ? layerConfigs(parseJson(modelConfig, "the model_config attribute"))
    : undefined;
  if (keys.includes("model_weights")) {
    return readKeras2(handle, group(handle, "model_weights"), keras2Configs);
  }
  if (attribute(file, "layer_names") !== undefined) return readKeras2(handle, file, keras2Configs);
  throw new KerasLoadError(
    `no Keras weights found: the file holds ${describeGroup(handle, file)}; expected a "layers" ` +
      `group (Keras 3 .weights.h5), a "model_weights" group (Keras 2 model.save) or a ` +
      `"layer_names" attribute (Keras 2 save_weights)`,
  );
}

function describeGroup(handle: Hdf5Handle, target: H5.Group): string {
  const groups: string[] = [];
  const datasets: string[] = [];
  for (const key of target.keys()) {
    (target.get(key) instanceof handle.Group ? groups : datasets).push(key);
  }
  const attributes = Object.keys(target.attrs);
  const list = (names: string[]) => names.length ? names.join(", ") : "none";
  return `groups [${list(groups)}], datasets [${list(datasets)}], attributes [${list(attributes)}]`;
}

function attribute(target: H5.Group, name: string): unknown {
  return name in target.attrs ? target.attrs[name].value : undefined;
}

function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.map(String);
  return []; // Keras 2 writes an empty list as an empty float array
}

function group(handle: Hdf5Handle, path: string, parent: H5.Group = handle.file): H5.Group {
  const entry = parent.get(path);
  if (!(entry instanceof handle.Group)) {
    throw new KerasLoadError(`expected a group at ${parent.path}/${path}, found none`);
  }
  return entry;
}

function tensorAt(handle: Hdf5Handle, parent: H5.Group, path: string): Tensor {
  const entry = parent.get(path);
  const where = `${parent.path.replace(/\/$/, "")}/${path}`;
  if (!(entry instanceof handle.Dataset)) {
    throw new KerasLoadError(`expected a dataset at ${where}, found none`);
  }
  const value = entry.value;
  const isFloat = value instanceof Float32Array || value instanceof Float64Array ||
    (typeof Float16Array !== "undefined" && value instanceof Float16Array);
  if (!isFloat) {
    throw new KerasLoadError(`dataset ${where} has dtype ${entry.dtype}; expected floats`);
  }
  const data = value instanceof Float32Array ? value : Float32Array.from(value);
  return { shape: [...(entry.shape ?? [])], data };
}

// The weight's own name in a Keras 2 weight path: "lstm/lstm_cell/recurrent_kernel:0" ->
// "recurrent_kernel".
function weightName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1).replace(/:\d+$/, "");
}

function readKeras2(
  handle: Hdf5Handle,
  root: H5.Group,
  configs: LayerConfig[] | undefined,
): KerasLayerWeights[] {
  const layers: KerasLayerWeights[] = [];
  for (const name of strings(attribute(root, "layer_names"))) {
    const layerGroup = group(handle, name, root);
    const weights: NamedWeights = new Map();
    for (const path of strings(attribute(layerGroup, "weight_names"))) {
      weights.set(weightName(path), tensorAt(handle, layerGroup, path));
    }
    const config = configs?.find((layer) => layer.config.name === name)?.config;
    const layer = classify(name, weights, config);
    if (layer !== undefined) layers.push(layer);
  }
  return layers;
}

// Keras' naming.to_snake_case: the weight file's group name of a layer class.
function snakeCase(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

function readKeras3(handle: Hdf5Handle, configs: LayerConfig[] | undefined): KerasLayerWeights[] {
  const layersGroup = group(handle, "layers");
  const byName = new Map<string, { weights: NamedWeights; config?: Record<string, unknown> }>();
  for (const name of layersGroup.keys()) {
    const layerGroup = group(handle, name, layersGroup);
    // Recurrent layers keep their variables in their cell; others in their own vars.
    const vars = layerGroup.keys().includes("cell")
      ? group(handle, "cell/vars", layerGroup)
      : group(handle, "vars", layerGroup);
    const tensors = vars.keys().sort((a, b) => Number(a) - Number(b)).map((index) =>
      tensorAt(handle, vars, index)
    );
    byName.set(name, { weights: keras3Weights(name, tensors) });
  }
  let order: string[];
  if (configs === undefined) {
    // Without the config, order within a kind is known (lstm, lstm_1, ...), across kinds not.
    const rank = (name: string) => (byName.get(name)!.weights.has("recurrent_kernel") ? 0 : 1);
    const index = (name: string) => Number(/_(\d+)$/.exec(name)?.[1] ?? 0);
    order = [...byName.keys()].sort((a, b) => rank(a) - rank(b) || index(a) - index(b));
  } else {
    const used = new Map<string, number>();
    order = [];
    for (const { className, config } of configs) {
      if (className === "InputLayer") continue; // not in model.layers, so not in the file
      const base = snakeCase(className);
      const count = used.get(base);
      used.set(base, (count ?? -1) + 1);
      const name = count === undefined ? base : `${base}_${count + 1}`;
      const entry = byName.get(name);
      if (entry === undefined) {
        throw new KerasLoadError(
          `config.json lists a ${className} layer stored as layers/${name}, which the weights ` +
            `file lacks (it holds ${[...byName.keys()].join(", ")})`,
        );
      }
      entry.config = config;
      order.push(name);
    }
  }
  return order.flatMap((name) => {
    const { weights, config } = byName.get(name)!;
    return classify(name, weights, config) ?? [];
  });
}

// Keras 3 stores variables by index in build order: kernel, recurrent kernel (recurrent layers
// only), bias. A recurrent layer is the one with a second 2-D variable.
function keras3Weights(name: string, tensors: Tensor[]): NamedWeights {
  const recurrent = tensors.length >= 2 && tensors[1].shape.length === 2;
  const names = recurrent ? ["kernel", "recurrent_kernel", "bias"] : ["kernel", "bias"];
  if (tensors.length > names.length) {
    throw new KerasLoadError(
      `layer ${name} has ${tensors.length} variables of shapes ${shapes(tensors)}; only LSTM ` +
        `and Dense layers are read`,
    );
  }
  return new Map(tensors.map((tensor, i) => [names[i], tensor]));
}

function shapes(tensors: Iterable<Tensor>): string {
  return [...tensors].map((t) => `[${t.shape.join(", ")}]`).join(", ");
}

function classify(
  name: string,
  weights: NamedWeights,
  config: Record<string, unknown> | undefined,
): KerasLayerWeights | undefined {
  if (weights.size === 0) return undefined;
  const kernel = weights.get("kernel");
  const recurrentKernel = weights.get("recurrent_kernel");
  const bias = weights.get("bias");
  const known = weights.size === [kernel, recurrentKernel, bias].filter(Boolean).length;
  const unsupported = () =>
    new KerasLoadError(
      `layer ${name} has weights ${[...weights.keys()].join(", ")} of shapes ${
        shapes(weights.values())
      }; only LSTM (kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H)) and Dense ` +
        `(kernel (I, units), bias (units)) layers are read`,
    );
  if (!known || kernel === undefined || kernel.shape.length !== 2) throw unsupported();
  const [inputs, columns] = kernel.shape;
  if (recurrentKernel === undefined) {
    if (bias !== undefined && (bias.shape.length !== 1 || bias.shape[0] !== columns)) {
      throw unsupported();
    }
    return { kind: "dense", name, units: columns, kernel, ...withOptional(bias, config) };
  }
  const units = recurrentKernel.shape[0];
  const lstmShapes = columns === 4 * units && inputs > 0 &&
    recurrentKernel.shape.length === 2 && recurrentKernel.shape[1] === 4 * units &&
    (bias === undefined || (bias.shape.length === 1 && bias.shape[0] === 4 * units));
  if (!lstmShapes) throw unsupported();
  return { kind: "lstm", name, units, kernel, recurrentKernel, ...withOptional(bias, config) };
}

function withOptional(
  bias: Tensor | undefined,
  config: Record<string, unknown> | undefined,
): { bias?: Tensor; config?: Record<string, unknown> } {
  return {
    ...(bias === undefined ? {} : { bias }),
    ...(config === undefined ? {} : { config }),
  };
}
