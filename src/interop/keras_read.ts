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
import { KerasLoadError } from "./keras_error.ts";
import {
  classify,
  classOfDefaultName,
  type KerasLayerInfo,
  type KerasLayerSource,
  type KerasLayerWeights,
  type KerasVariable,
  shapes,
  WEIGHTED_CLASSES,
} from "./keras_layers.ts";
import { inflateBound, ZipArchive, ZipError } from "./zip.ts";

export { KerasLoadError } from "./keras_error.ts";
export type * from "./keras_layers.ts";

type LayerConfig = KerasLayerInfo;

/** What the file (or the caller) says of the model beside its weights. */
interface ModelInfo {
  readonly configs?: LayerConfig[];
  readonly kerasVersion?: string;
}

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
export async function readKeras(
  bytes: Uint8Array,
  options: ReadKerasOptions = {},
): Promise<KerasLayerWeights[]> {
  let weights = bytes;
  let info: ModelInfo = {};
  if (startsWith(bytes, ZIP_MAGIC)) {
    ({ weights, info } = readKerasZip(bytes));
  }
  if (!startsWith(weights, HDF5_SIGNATURE)) {
    throw new KerasLoadError(
      "not an HDF5 file (no HDF5 signature) nor a .keras zip; expected a Keras .weights.h5, " +
        ".keras or .h5 file",
    );
  }
  const given = options.config === undefined ? undefined : layerConfigs(
    typeof options.config === "string"
      ? parseJson(options.config, "options.config")
      : options.config,
  );
  try {
    return await withHdf5(weights, (handle) => readLayers(handle, info, given));
  } catch (error) {
    if (error instanceof KerasLoadError) throw error;
    throw new KerasLoadError(`unreadable HDF5 file (${hdf5Reason(error)})`, { cause: error });
  }
}

/** Options of {@linkcode readKeras}. */
export interface ReadKerasOptions {
  /**
   * The model's config (`model.to_json()`, or a `.keras` file's `config.json`), as text or
   * parsed, for a weights-only file (Keras 3 `.weights.h5`, Keras 2 `save_weights`): it gives
   * the layers' order, classes and configs. A file that holds its own config ignores it.
   */
  readonly config?: string | Record<string, unknown>;
}

// Only these entries are read (inflated, if compressed), each within a bound: a .keras zip's
// other entries (assets, variables of other kinds) are never touched.
function readKerasZip(bytes: Uint8Array): { weights: Uint8Array; info: ModelInfo } {
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
    let kerasVersion: string | undefined;
    if (archive.entry("metadata.json") !== undefined) {
      const text = new TextDecoder().decode(archive.read("metadata.json", 1 << 16));
      const version = (parseJson(text, "metadata.json") as { keras_version?: unknown } | null)
        ?.keras_version;
      if (typeof version === "string") kerasVersion = version;
    }
    return {
      weights: archive.read("model.weights.h5", limit),
      info: { configs: layerConfigs(parseJson(config, "config.json")), kerasVersion },
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
    name: String(layer?.config?.name),
    config: (layer?.config ?? {}) as Record<string, unknown>,
  }));
}

function readLayers(
  handle: Hdf5Handle,
  info: ModelInfo,
  given: LayerConfig[] | undefined,
): KerasLayerWeights[] {
  const { file } = handle;
  const keys = file.keys();
  if (keys.includes("layers")) {
    return readKeras3(handle, { ...info, configs: info.configs ?? given });
  }
  const modelConfig = attribute(file, "model_config");
  const version = attribute(file, "keras_version");
  const legacy: ModelInfo = {
    configs: typeof modelConfig === "string"
      ? layerConfigs(parseJson(modelConfig, "the model_config attribute"))
      : given,
    kerasVersion: typeof version === "string" ? version : undefined,
  };
  if (keys.includes("model_weights")) {
    return readKeras2(handle, group(handle, "model_weights"), legacy);
  }
  if (attribute(file, "layer_names") !== undefined) return readKeras2(handle, file, legacy);
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

// A layer's weights, or the config of one without, in model order.
type Entry = { readonly source: KerasLayerSource } | { readonly info: LayerConfig };

// The layers with weights, each with the weightless layers before it (and the last with those
// after it); refuses a layer of a weighted class without weights.
function assemble(entries: readonly Entry[]): KerasLayerWeights[] {
  const layers: KerasLayerWeights[] = [];
  const missing: string[] = [];
  let pending: LayerConfig[] = [];
  for (const entry of entries) {
    if ("info" in entry) {
      if (entry.info.className !== "InputLayer") pending.push(entry.info);
      continue;
    }
    const { source } = entry;
    const layer = classify(source);
    if (layer === undefined) {
      const className = source.className ?? classOfDefaultName(source.name);
      if (className !== undefined && WEIGHTED_CLASSES.has(className)) {
        missing.push(describeLayer(source.name, source.className));
      } else if (source.className !== undefined) {
        pending.push({ className: source.className, name: source.name, config: source.config! });
      }
      continue;
    }
    layers.push(pending.length > 0 ? { ...layer, preceding: pending } : layer);
    pending = [];
  }
  refuseMissing(missing, layers.length);
  if (pending.length > 0 && layers.length > 0) {
    layers[layers.length - 1] = { ...layers[layers.length - 1], following: pending };
  }
  return layers;
}

// A weight's direction in a Bidirectional: a path segment "forward_..." or "backward_..." below
// the layer's own name.
function directionOf(path: string, layer: string): KerasVariable["direction"] {
  const segment = path.split("/").find((part) =>
    part !== layer && /^(forward|backward)_/.test(part)
  );
  return segment === undefined ? null : segment.startsWith("f") ? "forward" : "backward";
}

function readKeras2(handle: Hdf5Handle, root: H5.Group, info: ModelInfo): KerasLayerWeights[] {
  const names = strings(attribute(root, "layer_names"));
  const source = (name: string, config?: LayerConfig): KerasLayerSource => {
    const layerGroup = group(handle, name, root);
    const variables = strings(attribute(layerGroup, "weight_names")).map((path) => ({
      path,
      direction: directionOf(path, name),
      // "lstm/lstm_cell/recurrent_kernel:0" -> "recurrent_kernel"
      name: path.slice(path.lastIndexOf("/") + 1).replace(/:\d+$/, ""),
      tensor: tensorAt(handle, layerGroup, path),
    }));
    return {
      name,
      variables,
      ...(config === undefined ? {} : { className: config.className, config: config.config }),
      ...(info.kerasVersion === undefined ? {} : { kerasVersion: info.kerasVersion }),
    };
  };
  if (info.configs === undefined) return assemble(names.map((name) => ({ source: source(name) })));
  const entries: Entry[] = info.configs.map((config) =>
    names.includes(config.name)
      ? { source: source(config.name, config) }
      : WEIGHTED_CLASSES.has(config.className)
      ? { source: { name: config.name, className: config.className, variables: [] } }
      : { info: config }
  );
  return assemble(entries);
}

function describeLayer(name: string, className: string | undefined): string {
  return className === undefined ? name : `${name} (${className})`;
}

// Keras' naming.to_snake_case: the weight file's group name of a layer class.
function snakeCase(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

// Keras 3 keeps a layer's variables by index in build order, a recurrent layer's in its cell
// (kernel, recurrent kernel, bias), a Bidirectional's in forward_layer and backward_layer.
function keras3Variables(
  handle: Hdf5Handle,
  name: string,
  className: string | undefined,
): KerasVariable[] {
  const layerGroup = group(handle, `layers/${name}`);
  const keys = layerGroup.keys();
  const parts: [KerasVariable["direction"], string][] = keys.includes("forward_layer")
    ? [["forward", "forward_layer/"], ["backward", "backward_layer/"]]
    : [[null, ""]];
  return parts.flatMap(([direction, prefix]) => {
    const parent = prefix === "" ? layerGroup : group(handle, prefix.slice(0, -1), layerGroup);
    const cell = parent.keys().includes("cell");
    const path = `${prefix}${cell ? "cell/" : ""}vars`;
    const vars = group(handle, path, layerGroup);
    const embedding = (className ?? classOfDefaultName(name)) === "Embedding";
    const names = cell
      ? ["kernel", "recurrent_kernel", "bias"]
      : embedding
      ? ["embeddings"]
      : ["kernel", "bias"];
    const tensors = vars.keys().sort((a, b) => Number(a) - Number(b)).map((index) =>
      [index, tensorAt(handle, vars, index)] as const
    );
    if (tensors.length > names.length) {
      throw new KerasLoadError(
        `layer ${name} has ${tensors.length} variables of shapes ${
          shapes(tensors.map(([, t]) => t))
        } in ${path}; read are LSTM, GRU, SimpleRNN, Bidirectional, Embedding and Dense layers`,
      );
    }
    return tensors.map(([index, tensor], i) => ({
      path: `layers/${name}/${path}/${index}`,
      direction,
      name: names[i],
      tensor,
    }));
  });
}

function readKeras3(handle: Hdf5Handle, info: ModelInfo): KerasLayerWeights[] {
  const present = group(handle, "layers").keys();
  const version = info.kerasVersion === undefined ? {} : { kerasVersion: info.kerasVersion };
  if (info.configs === undefined) {
    const sources = present.map((name) => ({
      name,
      variables: keras3Variables(handle, name, undefined),
      ...version,
    }));
    return assemble(orderWithoutConfig(sources).map((source) => ({ source })));
  }
  const used = new Map<string, number>();
  const entries: Entry[] = [];
  for (const config of info.configs) {
    if (config.className === "InputLayer") continue; // not in model.layers, so not in the file
    const base = snakeCase(config.className);
    const count = used.get(base);
    used.set(base, (count ?? -1) + 1);
    const name = count === undefined ? base : `${base}_${count + 1}`;
    if (!present.includes(name)) {
      if (!WEIGHTED_CLASSES.has(config.className)) {
        entries.push({ info: config });
        continue;
      }
      throw new KerasLoadError(
        `the config lists a ${config.className} layer stored as layers/${name}, which the ` +
          `weights file lacks (it holds ${present.join(", ")})`,
      );
    }
    entries.push({
      source: {
        name,
        className: config.className,
        config: config.config,
        variables: keras3Variables(handle, name, config.className),
        ...version,
      },
    });
  }
  return assemble(entries);
}

// Without the config, a .weights.h5 records each layer's class in its group name (lstm_1, ...)
// but not the order across classes: Embedding first, then the recurrent layers, then Dense
// layers, each class in order; recurrent layers of different classes cannot be ordered.
function orderWithoutConfig(sources: KerasLayerSource[]): KerasLayerSource[] {
  const rankOf = (name: string) => {
    const className = classOfDefaultName(name);
    return className === "Embedding" ? 0 : className === "Dense" ? 2 : 1;
  };
  const index = (name: string) => Number(/_(\d+)$/.exec(name)?.[1] ?? 0);
  const recurrent = new Set(
    sources.filter((s) => s.variables.length > 0 && rankOf(s.name) === 1).map((s) =>
      s.name.replace(/_\d+$/, "")
    ),
  );
  if (recurrent.size > 1) {
    throw new KerasLoadError(
      `a .weights.h5 file does not record the order of layers of different classes, and this ` +
        `one holds ${[...recurrent].join(" and ")} layers: pass the model's config ` +
        `(options.config: model.to_json(), or the .keras file instead)`,
    );
  }
  return [...sources].sort((a, b) =>
    rankOf(a.name) - rankOf(b.name) || index(a.name) - index(b.name)
  );
}
