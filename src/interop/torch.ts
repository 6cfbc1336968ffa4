/**
 * Reads `torch.save(model.state_dict())` files (.pt, .pth): the zip archive torch writes since
 * 1.6, holding `<name>/data.pkl` (a pickle of the dict) and `<name>/data/<key>` (the raw
 * little-endian storages), and the legacy format before it (pickles and storages back to back).
 * The pickles are read by a restricted interpreter that accepts only what a state_dict holds and
 * runs nothing; tensors come back as contiguous float32.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { kindOf, type PickleCallable, PickleError, unpickle, type Unpickled } from "./pickle.ts";
import { inflateBound, ZipArchive, ZipError } from "./zip.ts";

/**
 * The error every unreadable, refused or unsupported torch file produces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTorch, TorchLoadError } from "./torch.ts";
 * assert.throws(() => loadTorch(new TextEncoder().encode("not a torch file")), TorchLoadError);
 * ```
 */
export class TorchLoadError extends Error {
  /**
   * Makes the error; `message` says what is wrong with the file and what to do.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TorchLoadError } from "./torch.ts";
   * const error = new TorchLoadError("no tensors in it", { cause: "empty" });
   * assert.equal(error.message, "cannot load torch file: no tensors in it");
   * assert.equal(error.cause, "empty");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(`cannot load torch file: ${message}`, options);
    this.name = "TorchLoadError";
  }
}

interface DType {
  readonly name: string;
  readonly itemSize: number;
  read(view: DataView, byteOffset: number): number;
}

const DTYPES: Record<string, DType> = {
  FloatStorage: { name: "float32", itemSize: 4, read: (v, at) => v.getFloat32(at, true) },
  DoubleStorage: { name: "float64", itemSize: 8, read: (v, at) => v.getFloat64(at, true) },
  HalfStorage: {
    name: "float16",
    itemSize: 2,
    read: (v, at) => halfToFloat(v.getUint16(at, true)),
  },
  BFloat16Storage: {
    name: "bfloat16",
    itemSize: 2,
    // bfloat16 is the top half of a float32.
    read: (v, at) => bitsToFloat(v.getUint16(at, true) << 16),
  },
};

// Storages that are data too, but not floats: recognized so the error can name the dtype.
const OTHER_DTYPES: Record<string, { readonly name: string; readonly itemSize: number }> = {
  LongStorage: { name: "int64", itemSize: 8 },
  IntStorage: { name: "int32", itemSize: 4 },
  ShortStorage: { name: "int16", itemSize: 2 },
  CharStorage: { name: "int8", itemSize: 1 },
  ByteStorage: { name: "uint8", itemSize: 1 },
  BoolStorage: { name: "bool", itemSize: 1 },
  ComplexFloatStorage: { name: "complex64", itemSize: 8 },
  ComplexDoubleStorage: { name: "complex128", itemSize: 16 },
};

const bitsScratch = new DataView(new ArrayBuffer(4));
function bitsToFloat(bits: number): number {
  bitsScratch.setUint32(0, bits);
  return bitsScratch.getFloat32(0);
}

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// A tensor's element count beyond which a (corrupt) shape is refused rather than allocated.
const MAX_ELEMENTS = 2 ** 28;

// Tensors come back as contiguous float32 copies (the package's tensors are plain Float32Arrays,
// never views of a storage). A view that spans more elements than its storage (stride 0 or
// overlapping strides: torch's expand or as_strided) or several tensors sharing one storage
// (tied weights) copy more elements than the file stores; torch returns views, at no cost.
// All copies together may take COPY_FACTOR times the elements the file's storages hold, plus
// COPY_ALLOWANCE (64 MiB of float32): room for tied weights and modest expanded tensors, while
// a 657-byte file cannot make us allocate 512 MiB.
const COPY_FACTOR = 8;
const COPY_ALLOWANCE = 2 ** 24;

class StorageType implements PickleCallable {
  constructor(readonly qualifiedName: string, readonly storageName: string) {}
  get itemSize(): number {
    return (DTYPES[this.storageName] ?? OTHER_DTYPES[this.storageName]).itemSize;
  }
  call(): never {
    throw new PickleError(`refused call of ${this.qualifiedName}: a state_dict never calls it`);
  }
}

// A storage a persistent id names; its bytes are attached once read (in the legacy format,
// after the whole pickle).
class Storage {
  view: DataView | undefined;
  constructor(readonly type: StorageType, readonly key: string, readonly elements: number) {}

  attach(bytes: Uint8Array, where: string): void {
    const needed = this.elements * this.type.itemSize;
    if (bytes.length < needed) {
      throw new TorchLoadError(
        `storage ${where} is truncated: ${this.elements} elements of ${this.type.qualifiedName} ` +
          `need ${needed} bytes, the file holds ${bytes.length}`,
      );
    }
    this.view = new DataView(bytes.buffer, bytes.byteOffset, needed);
  }
}

/** What `_rebuild_tensor_v2` describes: a strided view of a storage. */
class TensorView {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

function callable(
  qualifiedName: string,
  call: (args: readonly unknown[]) => unknown,
): PickleCallable {
  return { qualifiedName, call };
}

function integers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new PickleError(`${what} must be a tuple of non-negative ints, got ${kindOf(value)}`);
  }
  return value;
}

function rebuildTensor(args: readonly unknown[]): TensorView {
  const [storage, offset, shape, stride] = args;
  if (args.length < 4 || !(storage instanceof Storage)) {
    throw new PickleError(
      `_rebuild_tensor_v2 needs (storage, offset, size, stride, ...), got ${args.length} arguments`,
    );
  }
  if (!Number.isInteger(offset) || (offset as number) < 0) {
    throw new PickleError(`_rebuild_tensor_v2 storage offset must be a non-negative int`);
  }
  const sizes = integers(shape, "_rebuild_tensor_v2 size");
  const strides = integers(stride, "_rebuild_tensor_v2 stride");
  if (sizes.length !== strides.length) {
    throw new PickleError(
      `_rebuild_tensor_v2 size [${sizes}] and stride [${strides}] have different ranks`,
    );
  }
  return new TensorView(storage, offset as number, sizes, strides);
}

const GLOBALS: ReadonlyMap<string, PickleCallable> = (() => {
  const allowed = new Map<string, PickleCallable>();
  allowed.set(
    "collections OrderedDict",
    callable("collections.OrderedDict", (args) => {
      if (args.length !== 0) throw new PickleError("collections.OrderedDict called with arguments");
      return new Map();
    }),
  );
  allowed.set(
    "torch._utils _rebuild_tensor_v2",
    callable("torch._utils._rebuild_tensor_v2", rebuildTensor),
  );
  allowed.set(
    "torch._utils _rebuild_parameter",
    callable("torch._utils._rebuild_parameter", (args) => {
      if (!(args[0] instanceof TensorView)) {
        throw new PickleError(`_rebuild_parameter of ${kindOf(args[0])}, not a tensor`);
      }
      return args[0];
    }),
  );
  for (const name of [...Object.keys(DTYPES), ...Object.keys(OTHER_DTYPES)]) {
    allowed.set(`torch ${name}`, new StorageType(`torch.${name}`, name));
  }
  return allowed;
})();

// A persistent id: ("storage", storage type, key, location, element count), and in the legacy
// format a sixth item, the view metadata of pre-0.4 storage views (refused unless None).
function storageId(pid: unknown, legacy: boolean): Storage {
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length !== (legacy ? 6 : 5)) {
    throw new PickleError(`refused persistent id ${kindOf(pid)}: only storages are allowed`);
  }
  const [, type, key, , elements, view] = pid;
  if (
    !(type instanceof StorageType) || typeof key !== "string" || !Number.isInteger(elements) ||
    elements < 0
  ) {
    // kindOf, not String: a key nested 20,000 deep must not overflow the stack.
    throw new PickleError(`malformed storage id: its key is ${kindOf(key)}, not a str`);
  }
  if (legacy && view !== null) {
    throw new PickleError(`storage ${key} is a view of another storage (pre-0.4 torch)`);
  }
  return new Storage(type, key, elements);
}

function readZip(bytes: Uint8Array): { value: unknown; where: string } {
  const archive = openZip(bytes);
  const names = archive.names();
  const pickles = names.filter((path) => /^[^/]+\/data\.pkl$/.test(path));
  if (pickles.length !== 1) {
    throw new TorchLoadError(
      `expected one <name>/data.pkl in the zip, found ${pickles.length} (entries: ${
        names.slice(0, 10).join(", ") || "none"
      }); is this a torch.save file?`,
    );
  }
  // Only the entries the pickle references are read (inflated, if compressed): data.pkl,
  // byteorder and each storage the pickle names, each within a bound.
  const read = (path: string, limit: number): Uint8Array => {
    try {
      return archive.read(path, limit);
    } catch (error) {
      if (!(error instanceof ZipError)) throw error;
      throw new TorchLoadError(`corrupt zip archive: ${error.message}`, { cause: error });
    }
  };
  const where = pickles[0];
  const prefix = where.slice(0, -"data.pkl".length);
  if (archive.entry(`${prefix}byteorder`) !== undefined) {
    const byteOrder = new TextDecoder().decode(read(`${prefix}byteorder`, 16));
    if (byteOrder.trim() !== "little") throw new TorchLoadError(BIG_ENDIAN);
  }
  const loaded = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const storage = storageId(pid, false);
    const known = loaded.get(storage.key);
    if (known !== undefined) return known;
    const path = `${prefix}data/${storage.key}`;
    if (archive.entry(path) === undefined) {
      throw new TorchLoadError(`storage ${path} is missing from the zip`);
    }
    storage.attach(read(path, storage.elements * storage.type.itemSize), path);
    loaded.set(storage.key, storage);
    return storage;
  };
  const pickle = read(where, inflateBound(bytes.length));
  return { value: interpret(pickle, 0, persistentLoad, where).value, where };
}

const BIG_ENDIAN = "the storages are big-endian; re-save the file on a little-endian machine";

// torch's legacy (pre-1.6) format: pickles of the magic number, the protocol version (1001) and
// the system info, then the pickled object, then a pickled list of storage keys, then each of
// those storages as an int64 element count and the raw elements.
function readLegacy(bytes: Uint8Array): { value: unknown; where: string } {
  const where = "legacy file";
  const noStorage = (): never => {
    throw new PickleError("a storage outside the pickled object");
  };
  const version = interpret(bytes, LEGACY_MAGIC.length, noStorage, where);
  if (version.value !== 1001) {
    throw new TorchLoadError(`legacy protocol version ${String(version.value)}, expected 1001`);
  }
  const system = interpret(bytes, version.end, noStorage, where);
  if (!(system.value instanceof Map) || system.value.get("little_endian") !== true) {
    throw new TorchLoadError(BIG_ENDIAN);
  }
  const storages = new Map<string, Storage>();
  const main = interpret(bytes, system.end, (pid) => {
    const storage = storageId(pid, true);
    const known = storages.get(storage.key);
    if (known !== undefined) return known;
    storages.set(storage.key, storage);
    return storage;
  }, where);
  const keys = interpret(bytes, main.end, noStorage, where);
  if (!Array.isArray(keys.value) || !keys.value.every((key) => typeof key === "string")) {
    throw new TorchLoadError(`the legacy file's storage keys are ${kindOf(keys.value)}, not strs`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keys.end;
  for (const key of keys.value) {
    const storage = storages.get(key);
    if (storage === undefined) throw new TorchLoadError(`storage ${key} is listed but never used`);
    if (at + 8 > bytes.length) throw new TorchLoadError(`storage ${key} is missing: the file ends`);
    const elements = Number(view.getBigInt64(at, true));
    if (elements !== storage.elements) {
      throw new TorchLoadError(
        `storage ${key} holds ${elements} elements, but its tensors say ${storage.elements}`,
      );
    }
    const end = Math.min(bytes.length, at + 8 + elements * storage.type.itemSize);
    storage.attach(bytes.subarray(at + 8, end), key);
    at = end;
  }
  const unread = [...storages.values()].find((storage) => storage.view === undefined);
  if (unread !== undefined) throw new TorchLoadError(`storage ${unread.key} is missing`);
  return { value: main.value, where };
}

function interpret(
  bytes: Uint8Array,
  start: number,
  persistentLoad: (pid: unknown) => unknown,
  where: string,
): Unpickled {
  try {
    return unpickle(bytes, start, { globals: GLOBALS, persistentLoad });
  } catch (error) {
    if (error instanceof PickleError) {
      throw new TorchLoadError(`${where}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

// The tensors of a state_dict; of a checkpoint dict (a dict holding dicts: `{ "epoch": 3,
// "model_state_dict": ..., "optimizer_state_dict": ... }`), every tensor of its nested dicts
// under a dotted key (`model_state_dict.weight_ih_l0`), its other values (numbers, strings,
// lists) skipped.
function collect(
  dict: Map<unknown, unknown>,
  prefix: string,
  checkpoint: boolean,
  views: [string, TensorView][],
): void {
  for (const [key, entry] of dict) {
    const keyIsName = typeof key === "string" || (checkpoint && typeof key === "number");
    if (!keyIsName) {
      throw new TorchLoadError(`the state_dict has a key that is ${kindOf(key)}, not a str`);
    }
    const name = `${prefix}${key}`;
    if (entry instanceof TensorView) views.push([name, entry]);
    else if (checkpoint && entry instanceof Map) collect(entry, `${name}.`, checkpoint, views);
    else if (!checkpoint) {
      throw new TorchLoadError(
        `state_dict entry ${JSON.stringify(name)} is ${kindOf(entry)}, not a tensor; ` +
          "save only the weights with torch.save(model.state_dict(), path)",
      );
    }
  }
}

/** Refuses, before any copy, a state_dict whose tensors copy far more than its storages hold. */
function checkCopyBudget(views: readonly [string, TensorView][]): void {
  const storages = new Set(views.map(([, view]) => view.storage));
  const stored = [...storages].reduce((sum, storage) => sum + storage.elements, 0);
  const budget = COPY_FACTOR * stored + COPY_ALLOWANCE;
  let copied = 0;
  for (const [name, view] of views) {
    const count = checkView(name, view);
    const { storage, offset, shape, stride } = view;
    copied += count;
    if (copied <= budget) continue;
    const expanded = count > storage.elements;
    throw new TorchLoadError(
      `tensor ${JSON.stringify(name)} (shape [${shape}], stride [${stride}], offset ${offset}) ` +
        `has ${count} elements over a storage of ${storage.elements} ` +
        `(${storage.elements * storage.type.itemSize} bytes)` +
        (expanded ? ": a stride-0 or overlapping view" : "") +
        `; copying the tensors as float32 would take ${copied} elements, more than this file's ` +
        `bound of ${budget} (${COPY_FACTOR} x the ${stored} elements it stores + ` +
        `${COPY_ALLOWANCE}); if the tensor is meant to be that large, save it with ` +
        `.contiguous() (or .clone()) so the file holds its elements`,
    );
  }
}

/** Checks a tensor's dtype and extent against its storage; returns its element count. */
function checkView(name: string, tensor: TensorView): number {
  const { storage, offset, shape, stride } = tensor;
  if (DTYPES[storage.type.storageName] === undefined || storage.view === undefined) {
    throw new TorchLoadError(
      `tensor ${JSON.stringify(name)} has dtype ${
        OTHER_DTYPES[storage.type.storageName].name
      }; only float32, float64, float16 and bfloat16 tensors are read (convert it with .float())`,
    );
  }
  const count = shape.reduce((product, size) => product * size, 1);
  if (count > MAX_ELEMENTS) {
    throw new TorchLoadError(
      `tensor ${JSON.stringify(name)} of shape [${shape}] has ${count} elements, more than ` +
        `the ${MAX_ELEMENTS} this reader allocates`,
    );
  }
  const last = shape.reduce((index, size, axis) => index + (size - 1) * stride[axis], offset);
  if (count > 0 && last >= storage.elements) {
    throw new TorchLoadError(
      `tensor ${JSON.stringify(name)} (shape [${shape}], stride [${stride}], offset ${offset}) ` +
        `reaches element ${last} of a storage of ${storage.elements}: the file is corrupt`,
    );
  }
  return count;
}

/** Copies a checked tensor out of its storage as contiguous float32. */
function materialize(tensor: TensorView): Tensor {
  const { storage, offset, shape, stride } = tensor;
  const dtype = DTYPES[storage.type.storageName];
  const count = shape.reduce((product, size) => product * size, 1);
  const data = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let source = offset;
  for (let i = 0; i < count; i++) {
    data[i] = dtype.read(storage.view!, source * dtype.itemSize);
    // Advance the row-major multi-index, carrying into outer axes.
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      index[axis]++;
      source += stride[axis];
      if (index[axis] < shape[axis]) break;
      source -= stride[axis] * shape[axis];
      index[axis] = 0;
    }
  }
  return { shape: [...shape], data };
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
// The first pickle of a legacy file: torch's magic number 0x1950a86a20f9469cfc6c (as LONG1).
const LEGACY_MAGIC = [
  0x80,
  0x02,
  0x8a,
  0x0a,
  0x6c,
  0xfc,
  0x9c,
  0x46,
  0xf9,
  0x20,
  0x6a,
  0xa8,
  0x50,
  0x19,
  0x2e,
];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((byte, i) => bytes[i] === byte);
}

function openZip(bytes: Uint8Array): ZipArchive {
  if (bytes[0] === 0x80) {
    throw new TorchLoadError(
      "this is a bare pickle, not a torch.save file; save the weights with " +
        "torch.save(model.state_dict(), path)",
    );
  }
  if (!startsWith(bytes, ZIP_MAGIC)) {
    throw new TorchLoadError(
      `not a zip archive (it starts with bytes ${
        [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ")
      }); expected a file written by torch.save(model.state_dict(), path)`,
    );
  }
  try {
    return ZipArchive.open(bytes);
  } catch (error) {
    throw new TorchLoadError(`corrupt zip archive: ${messageOf(error)}`, { cause: error });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads a `torch.save(model.state_dict())` file into tensors by name, all float32 and
 * contiguous. A checkpoint dict (`torch.save({ "epoch": 3, "model_state_dict": ..., ... })`)
 * gives the tensors of its dicts under dotted keys (`model_state_dict.weight_ih_l0`), its other
 * values skipped. float64, float16 and bfloat16 tensors are converted; views (transposes, slices,
 * offsets) are copied out of their storages. The pickle inside is interpreted, never run: any
 * global other than `collections.OrderedDict`, torch's tensor rebuilds and its float storage
 * types is refused before the interpreter reads further.
 *
 * @param bytes The file's contents.
 * @returns The state_dict's tensors by name, in the file's order.
 * @throws {TorchLoadError} If the file is not a torch.save file, is corrupt or truncated,
 * holds anything but a dict of tensors, asks for a refused global or opcode, or holds a tensor
 * of a dtype other than float32, float64, float16 or bfloat16.
 *
 * @example Load a PyTorch LSTM's weights
 * ```ts ignore
 * import { loadTorch } from "./torch.ts";
 * const record = loadTorch(await Deno.readFile("lstm.pt"));
 * record["weight_ih_l0"].shape; // [4 * hidden_size, input_size]
 * ```
 *
 * @example Anything that is not a torch file is refused with a reason
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTorch, TorchLoadError } from "./torch.ts";
 * assert.throws(() => loadTorch(new Uint8Array(16)), TorchLoadError);
 * ```
 */
export function loadTorch(bytes: Uint8Array): Record<string, Tensor> {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`bytes must be a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
  }
  const { value, where } = startsWith(bytes, LEGACY_MAGIC) ? readLegacy(bytes) : readZip(bytes);
  if (!(value instanceof Map)) {
    throw new TorchLoadError(
      `${where} holds ${kindOf(value)}, not a state_dict; ` +
        "save the weights with torch.save(model.state_dict(), path)",
    );
  }
  const views: [string, TensorView][] = [];
  const checkpoint = [...value.values()].some((entry) => entry instanceof Map);
  collect(value, "", checkpoint, views);
  checkCopyBudget(views);
  const entries = views.map(([name, view]): [string, Tensor] => [name, materialize(view)]);
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return Object.fromEntries(entries);
}
