/**
 * Reads `torch.save(model.state_dict())` files (.pt, .pth): the zip archive torch writes since
 * 1.6, holding `<name>/data.pkl` (a pickle of the dict) and `<name>/data/<key>` (the raw
 * little-endian storages). The pickle is read by a restricted interpreter that accepts only what
 * a state_dict holds and runs nothing; tensors come back as contiguous float32.
 *
 * @module
 */

import { unzipSync } from "fflate";
import type { Tensor } from "../tensor.ts";
import { kindOf, type PickleCallable, PickleError, unpickle } from "./pickle.ts";

/** The error every unreadable, refused or unsupported torch file produces. */
export class TorchLoadError extends Error {
  /** Makes the error; `message` says what is wrong with the file and what to do. */
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
const OTHER_DTYPES: Record<string, string> = {
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  ComplexFloatStorage: "complex64",
  ComplexDoubleStorage: "complex128",
  QInt8Storage: "qint8",
  QUInt8Storage: "quint8",
  QInt32Storage: "qint32",
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

class StorageType implements PickleCallable {
  constructor(readonly qualifiedName: string, readonly storageName: string) {}
  call(): never {
    throw new PickleError(`refused call of ${this.qualifiedName}: a state_dict never calls it`);
  }
}

class Storage {
  constructor(
    readonly type: StorageType,
    readonly elements: number,
    readonly view: DataView | undefined, // undefined for a dtype this reader does not convert
  ) {}
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

function globals(): Map<string, PickleCallable> {
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
}

function storageLoader(
  files: Record<string, Uint8Array>,
  prefix: string,
): (pid: unknown) => Storage {
  const loaded = new Map<string, Storage>();
  return (pid) => {
    // ("storage", storage type, key, location, element count), as torch's persistent_id writes.
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
      throw new PickleError(`refused persistent id ${kindOf(pid)}: only storages are allowed`);
    }
    const [, type, key, , elements] = pid;
    if (
      !(type instanceof StorageType) || typeof key !== "string" || !Number.isInteger(elements) ||
      elements < 0
    ) {
      throw new PickleError(`malformed storage id for key ${String(key)}`);
    }
    const known = loaded.get(key);
    if (known !== undefined) return known;
    const path = `${prefix}data/${key}`;
    const bytes = files[path];
    if (bytes === undefined) throw new PickleError(`storage ${path} is missing from the zip`);
    const dtype = DTYPES[type.storageName];
    const needed = elements * (dtype?.itemSize ?? 0);
    if (dtype !== undefined && bytes.length < needed) {
      throw new PickleError(
        `storage ${path} is truncated: ${elements} ${dtype.name} elements need ${needed} bytes, ` +
          `the zip holds ${bytes.length}`,
      );
    }
    const view = dtype && new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const storage = new Storage(type, elements, view);
    loaded.set(key, storage);
    return storage;
  };
}

function materialize(name: string, tensor: TensorView): Tensor {
  const { storage, offset, shape, stride } = tensor;
  const dtype = DTYPES[storage.type.storageName];
  if (dtype === undefined || storage.view === undefined) {
    throw new TorchLoadError(
      `tensor ${JSON.stringify(name)} has dtype ${
        OTHER_DTYPES[storage.type.storageName]
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
  const data = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let source = offset;
  for (let i = 0; i < count; i++) {
    data[i] = dtype.read(storage.view, source * dtype.itemSize);
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
// LONG1 of torch's legacy magic number 0x1950a86a20f9469cfc6c, after the pickle header.
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((byte, i) => bytes[i] === byte);
}

function unzip(bytes: Uint8Array): Record<string, Uint8Array> {
  if (startsWith(bytes, LEGACY_MAGIC)) {
    throw new TorchLoadError(
      "this is torch's legacy (pre-1.6) format, which is not read; re-save it with torch >= 1.6 " +
        "in the default zip format: torch.save(torch.load(old_path), new_path)",
    );
  }
  if (bytes[0] === 0x80) {
    throw new TorchLoadError(
      "this is a bare pickle, not a torch.save zip archive; save the weights with " +
        "torch.save(model.state_dict(), path) (torch >= 1.6)",
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
    return unzipSync(bytes);
  } catch (error) {
    throw new TorchLoadError(`corrupt zip archive: ${messageOf(error)}`, { cause: error });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads a `torch.save(model.state_dict())` file into tensors by name, all float32 and
 * contiguous. float64, float16 and bfloat16 tensors are converted; views (transposes, slices,
 * offsets) are copied out of their storages. The pickle inside is interpreted, never run: any
 * global other than `collections.OrderedDict`, torch's tensor rebuilds and its float storage
 * types is refused before the interpreter reads further.
 *
 * @param bytes The file's contents.
 * @returns The state_dict's tensors by name, in the file's order.
 * @throws {TorchLoadError} If the file is not a torch zip archive, is corrupt or truncated,
 * holds anything but a dict of tensors, asks for a refused global or opcode, or holds a tensor
 * of a dtype other than float32, float64, float16 or bfloat16.
 *
 * @example Load a PyTorch LSTM's weights
 * ```ts ignore
 * import { loadTorch } from "./torch.ts";
 * const record = loadTorch(await Deno.readFile("lstm.pt"));
 * record["weight_ih_l0"].shape; // [4 * hidden_size, input_size]
 * ```
 */
export function loadTorch(bytes: Uint8Array): Record<string, Tensor> {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`bytes must be a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
  }
  const files = unzip(bytes);
  const pickles = Object.keys(files).filter((path) => /^[^/]+\/data\.pkl$/.test(path));
  if (pickles.length !== 1) {
    const names = Object.keys(files).slice(0, 10).join(", ");
    throw new TorchLoadError(
      `expected one <name>/data.pkl in the zip, found ${pickles.length} (entries: ${
        names || "none"
      }); ` +
        "is this a torch.save file?",
    );
  }
  const prefix = pickles[0].slice(0, -"data.pkl".length);
  const byteOrder = files[`${prefix}byteorder`];
  if (byteOrder !== undefined && new TextDecoder().decode(byteOrder).trim() !== "little") {
    throw new TorchLoadError(
      "the storages are big-endian; re-save the file on a little-endian machine",
    );
  }
  let value: unknown;
  try {
    value = unpickle(files[pickles[0]], {
      globals: globals(),
      persistentLoad: storageLoader(files, prefix),
    });
  } catch (error) {
    if (error instanceof PickleError) {
      throw new TorchLoadError(`${pickles[0]}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (!(value instanceof Map)) {
    throw new TorchLoadError(
      `${pickles[0]} holds ${kindOf(value)}, not a state_dict; ` +
        "save the weights with torch.save(model.state_dict(), path)",
    );
  }
  const entries: [string, Tensor][] = [];
  for (const [name, tensor] of value) {
    if (typeof name !== "string") {
      throw new TorchLoadError(`the state_dict has a key that is ${kindOf(name)}, not a str`);
    }
    if (!(tensor instanceof TensorView)) {
      throw new TorchLoadError(
        `state_dict entry ${JSON.stringify(name)} is ${kindOf(tensor)}, not a tensor; ` +
          "save only the weights with torch.save(model.state_dict(), path)",
      );
    }
    entries.push([name, materialize(name, tensor)]);
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return Object.fromEntries(entries);
}
