/**
 * The parser behind `loadKeras`: reads the weights of a Keras Sequential model of LSTM and Dense
 * layers from Keras 3's `.weights.h5` and `.keras` (a zip of `config.json` and
 * `model.weights.h5`) and Keras 2's `.h5`. It runs in `keras_worker.ts` (so a hostile file that
 * makes HDF5 loop can be stopped), or in the caller's thread when Workers are not permitted.
 *
 * @module
 */

import type * as H5 from "npm:h5wasm@0.10.3";
import type { Tensor } from "../tensor.ts";
import { type Hdf5Handle, hdf5Reason, withHdf5 } from "./hdf5.ts";
import { inflateBound, ZipArchive, ZipError } from "./zip.ts";

/**
 * The error every unreadable or unexpected Keras file produces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KerasLoadError, readKeras } from "./keras_read.ts";
 * await assert.rejects(readKeras(new TextEncoder().encode("not a Keras file")), KerasLoadError);
 * ```
 */
export class KerasLoadError extends Error {
  /**
   * Makes the error; `message` says what is wrong with the file and what was found.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KerasLoadError } from "./keras_read.ts";
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
 * Reads the layers of a Keras file, in this thread: `loadKeras` runs it in a Worker with a
 * deadline, or here when Workers are not permitted. See `loadKeras` for what is read.
 *
 * @throws {KerasLoadError} If the file is unreadable or not the Keras layouts read here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KerasLoadError, readKeras } from "./keras_read.ts";
 * await assert.rejects(readKeras(new Uint8Array(16)), KerasLoadError);
 * ```
 */
export async function readKeras(bytes: Uint8Array): Promise<KerasLayerWeights[]> {
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

// Only these entries are read (inflated, if compressed), each within a bound: a .keras zip's
// other entries (metadata.json, assets) are never touched.
function readKerasZip(bytes: Uint8Array): { weights: Uint8Array; configs: LayerConfig[] } {
  try {
    const archive = ZipArchive.open(bytes);
    if (
      archive.entry("model.weights.h5") === undefined || archive.entry("config.json") === undefined
    ) {
      throw new KerasLoadError(
        `a .keras zip holds model.weights.h5 and config.json, this one holds ${
          archive.names().join(", ") || "nothing"
        }`,
      );
    }
    const limit = inflateBound(bytes.length);
    const config = new TextDecoder().decode(archive.read("config.json", limit));
    return {
      weights: archive.read("model.weights.h5", limit),
      configs: layerConfigs(parseJson(config, "config.json")),
    };
  } catch (error) {
    if (!(error instanceof ZipError)) throw error;
    throw new KerasLoadError(`corrupt .keras zip archive: ${error.message}`, { cause: error });
  }
}

// Keras configs nest about 10 deep; a deeper one is hostile, and would overflow the stack of
// whatever walks it recursively (structured clone, a consumer), so it is refused here.
const MAX_JSON_DEPTH = 256;

function parseJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new KerasLoadError(`${what} is not valid JSON: ${String(error)}`, { cause: error });
  }
  // Iterative, so the check itself cannot overflow the stack.
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (typeof item !== "object" || item === null) continue;
    if (depth > MAX_JSON_DEPTH) {
      throw new KerasLoadError(
        `${what} nests objects or arrays more than ${MAX_JSON_DEPTH} deep; a Keras config ` +
          `nests about 10, so the file is corrupt or hostile`,
      );
    }
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return value;
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
  // The shape is metadata: a few bytes can declare gigabytes that HDF5 would allocate (and fill
  // with the fill value) on read. Uncompressed, the elements must fit in the file; compressed,
  // within what the file can inflate to.
  const { size, total_size: count } = entry.metadata;
  const compressed = entry.filters.length > 0;
  const bound = compressed ? inflateBound(handle.size) : handle.size;
  if (size * count > bound) {
    throw new KerasLoadError(
      `dataset ${where} declares shape [${
        (entry.shape ?? []).join(", ")
      }] of ${size}-byte elements, ` +
        `${size * count} bytes, more than the ${handle.size}-byte file can hold` +
        (compressed ? ` compressed (at most ${bound})` : "") + `: the file is corrupt`,
    );
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
  const missing: string[] = [];
  const names = strings(attribute(root, "layer_names"));
  for (const name of names) {
    const layerGroup = group(handle, name, root);
    const weights: NamedWeights = new Map();
    for (const path of strings(attribute(layerGroup, "weight_names"))) {
      weights.set(weightName(path), tensorAt(handle, layerGroup, path));
    }
    const layerConfig = configs?.find((layer) => layer.config.name === name);
    if (weights.size === 0 && hasWeights(name, layerConfig?.className)) {
      missing.push(describeLayer(name, layerConfig?.className));
    }
    const layer = classify(name, weights, layerConfig?.config);
    if (layer !== undefined) layers.push(layer);
  }
  for (const { className, config } of configs ?? []) {
    const name = String(config.name);
    if (WEIGHTED_CLASSES.has(className) && !names.includes(name)) {
      missing.push(describeLayer(name, className));
    }
  }
  refuseMissing(missing, layers.length);
  return layers;
}

// The layer classes read here; each has weights once built.
const WEIGHTED_CLASSES = new Set(["LSTM", "Dense"]);

// Whether a layer must have weights: by its class when the file holds the config, else by
// Keras' default names for those classes (lstm, dense_2, ...).
function hasWeights(name: string, className: string | undefined): boolean {
  return className === undefined
    ? /^(lstm|dense)(_\d+)?$/.test(name)
    : WEIGHTED_CLASSES.has(className);
}

function describeLayer(name: string, className: string | undefined): string {
  return className === undefined ? name : `${name} (${className})`;
}

// Keras 3 refuses such a file too ("1 objects could not be loaded"); returning the other layers
// would silently drop one.
function refuseMissing(missing: readonly string[], found: number): void {
  if (missing.length === 0) return;
  throw new KerasLoadError(
    `the weights of ${missing.length} layer(s) are missing: ${missing.join(", ")} (the file ` +
      `holds weights for ${found} other layer(s)); Keras itself refuses it ("${missing.length} ` +
      `objects could not be loaded"): save the model again after building it`,
  );
}

// Keras' naming.to_snake_case: the weight file's group name of a layer class.
function snakeCase(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

function readKeras3(handle: Hdf5Handle, configs: LayerConfig[] | undefined): KerasLayerWeights[] {
  const layersGroup = group(handle, "layers");
  const byName = new Map<
    string,
    { weights: NamedWeights; config?: Record<string, unknown>; className?: string }
  >();
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
      entry.className = className;
      order.push(name);
    }
  }
  const missing: string[] = [];
  const layers = order.flatMap((name) => {
    const { weights, config, className } = byName.get(name)!;
    if (weights.size === 0 && hasWeights(name, className)) {
      missing.push(describeLayer(name, className));
    }
    return classify(name, weights, config) ?? [];
  });
  refuseMissing(missing, layers.length);
  return layers;
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
