/**
 * Reads and writes the safetensors format, the way PyTorch users save weights: an 8-byte
 * little-endian header length, a JSON header, then the raw little-endian tensor bytes.
 *
 * {@linkcode readSafetensors} gives float32 tensors: F32 as is, F64 converted, and the integer
 * dtypes I8, I16, I32, U8, U16 and U32 where float32 holds their values exactly.
 * {@linkcode readSafetensorsArrays} gives each tensor in its own dtype, bit-exact.
 * {@linkcode saveSafetensors} writes each typed array in its own dtype, never rounding. Every
 * malformed file gives a {@linkcode SafetensorsError} that says what is wrong; the tensors must
 * cover the data section exactly, without holes, overlaps or trailing bytes.
 *
 * @module
 */

import { describe } from "./errors.ts";
import type { Tensor } from "./tensor.ts";
import { sizeOf } from "./tensor.ts";

/**
 * The error every malformed safetensors file produces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, SafetensorsError } from "./safetensors.ts";
 * assert.throws(() => readSafetensors(new Uint8Array(3)), SafetensorsError);
 * ```
 */
export class SafetensorsError extends Error {
  /**
   * Makes the error; `message` says what is wrong with the file.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SafetensorsError } from "./safetensors.ts";
   * const error = new SafetensorsError("header is cut short");
   * assert.equal(error.message, "invalid safetensors file: header is cut short");
   * assert.equal(error.name, "SafetensorsError");
   * ```
   */
  constructor(message: string) {
    super(`invalid safetensors file: ${message}`);
    this.name = "SafetensorsError";
  }
}

/** Tensors by name, as in a PyTorch `state_dict`. */
export type TensorRecord = Record<string, Tensor>;

/** A whole safetensors file: its tensors and its string metadata. */
export interface SafetensorsContents {
  /** Tensors by name, all float32. */
  readonly tensors: TensorRecord;
  /** The `__metadata__` map (empty when the file has none). */
  readonly metadata: Record<string, string>;
}

/** A safetensors dtype this module reads and writes. */
export type SafetensorsDtype = "F32" | "F64" | "I8" | "I16" | "I32" | "U8" | "U16" | "U32";

/** The typed array of a {@linkcode SafetensorsDtype}. */
export type SafetensorsData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

// The dtypes read and written, and the typed array of each.
const ARRAYS:
  & Record<SafetensorsDtype, new (buffer: ArrayBuffer) => SafetensorsData>
  & {
    [dtype in SafetensorsDtype]: { readonly BYTES_PER_ELEMENT: number };
  } = {
    F32: Float32Array,
    F64: Float64Array,
    I8: Int8Array,
    I16: Int16Array,
    I32: Int32Array,
    U8: Uint8Array,
    U16: Uint16Array,
    U32: Uint32Array,
  };

/** A tensor in its file's dtype, as {@linkcode readSafetensorsArrays} gives it. */
export interface SafetensorsArray {
  /** The dtype in the file. */
  readonly dtype: SafetensorsDtype;
  /** The sizes of the axes. */
  readonly shape: number[];
  /** The elements, row-major, in the typed array of `dtype`. */
  readonly data: SafetensorsData;
}

// Above 2^24, float32 skips integers.
const FLOAT32_EXACT_INTEGER = 2 ** 24;
// Real headers are kilobytes; the cap stops a corrupt length from making us parse garbage.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Reads a safetensors file: tensors and metadata.
 *
 * @throws {SafetensorsError} On any malformed input.
 *
 * @example Round-trip a tensor with metadata
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, saveSafetensors } from "./safetensors.ts";
 * import { tensor } from "./tensor.ts";
 * const bytes = saveSafetensors({ w: tensor([1, 2], [2]) }, { note: "hi" });
 * const { tensors, metadata } = readSafetensors(bytes);
 * assert.deepEqual(tensors.w, tensor([1, 2], [2]));
 * assert.deepEqual(metadata, { note: "hi" });
 * ```
 */
export function readSafetensors(bytes: Uint8Array): SafetensorsContents {
  const { tensors, metadata } = readSafetensorsArrays(bytes);
  const floats = Object.entries(tensors).map((
    [name, { dtype, shape, data }],
  ): [string, Tensor] => [name, { shape, data: toFloat32(name, dtype, data) }]);
  // fromEntries defines own properties, so a tensor named "__proto__" is kept as a tensor.
  return { tensors: Object.fromEntries(floats), metadata };
}

function toFloat32(name: string, dtype: SafetensorsDtype, data: SafetensorsData): Float32Array {
  if (data instanceof Float32Array) return data;
  if (dtype === "I32" || dtype === "U32") {
    const index = data.findIndex((value) => Math.abs(value) > FLOAT32_EXACT_INTEGER);
    if (index >= 0) {
      throw new SafetensorsError(
        `tensor "${name}" is ${dtype} and its element ${index} is ${data[index]}, which float32 ` +
          `cannot hold exactly; read it with readSafetensorsArrays to keep its dtype`,
      );
    }
  }
  return Float32Array.from(data);
}

/**
 * Reads a safetensors file with each tensor in its own dtype, bit-exact: what
 * {@linkcode saveSafetensors} wrote from an `Int32Array` comes back an `Int32Array`.
 *
 * @throws {SafetensorsError} On any malformed input, a dtype other than F32, F64, I8, I16, I32,
 * U8, U16 and U32, or tensors that leave a hole, overlap or leave trailing bytes in the data
 * section.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensorsArrays, saveSafetensors } from "./safetensors.ts";
 * const ids = { shape: [2], data: new Int32Array([16777217, -1]) };
 * const { tensors } = readSafetensorsArrays(saveSafetensors({ ids } as never));
 * assert.equal(tensors.ids.dtype, "I32");
 * assert.deepEqual(tensors.ids.data, new Int32Array([16777217, -1]));
 * ```
 */
export function readSafetensorsArrays(
  bytes: Uint8Array,
): { tensors: Record<string, SafetensorsArray>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`bytes must be a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
  }
  if (bytes.length < 8) {
    throw new SafetensorsError(`${bytes.length} bytes is too short for the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new SafetensorsError(
      `header length ${headerLength} exceeds the ${bytes.length - 8} bytes after it`,
    );
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `header length ${headerLength} exceeds the limit of ${MAX_HEADER_BYTES} bytes`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  const header = parseHeader(bytes.subarray(8, dataStart));
  const dataLength = bytes.length - dataStart;

  let metadata: Record<string, string> = {};
  const entries: [string, Entry][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") metadata = parseMetadata(entry);
    else entries.push([name, parseEntry(name, entry, dataLength)]);
  }
  checkCoverage(entries, dataLength);
  const tensors = entries.map(
    ([name, { dtype, shape, begin, end }]): [string, SafetensorsArray] => {
      // A fresh, aligned buffer: the file's offsets need not be aligned to the element size.
      const copy = bytes.slice(dataStart + begin, dataStart + end).buffer;
      return [name, { dtype, shape, data: new ARRAYS[dtype](copy) }];
    },
  );
  return { tensors: Object.fromEntries(tensors), metadata };
}

// As safetensors 0.8: sorted by offset, each tensor starts where the one before it ends, the
// first at 0 and the last at the end of the file. A hole or trailing bytes could hide data the
// header does not describe.
function checkCoverage(entries: readonly [string, Entry][], dataLength: number): void {
  const spans = entries.map(([name, { begin, end }]) => ({ name, begin, end }))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: string | undefined;
  for (const { name, begin, end } of spans) {
    if (begin < covered) {
      throw new SafetensorsError(
        `invalid offset: tensors "${previous}" and "${name}" overlap in the data section`,
      );
    }
    if (begin > covered) {
      throw new SafetensorsError(
        `invalid offset: tensor "${name}" begins at byte ${begin} of the data section, but ` +
          (previous === undefined ? "no tensor" : `tensor "${previous}"`) +
          ` ends at ${covered}: a hole of ${begin - covered} bytes`,
      );
    }
    covered = end;
    previous = name;
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(
      `file not fully covered: the tensors end at byte ${covered} of the ${dataLength}-byte ` +
        `data section, leaving ${dataLength - covered} trailing bytes`,
    );
  }
}

/**
 * Reads the tensors of a safetensors file, ready for `loadStateDict`.
 *
 * @throws {SafetensorsError} On any malformed input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSafetensors, saveSafetensors } from "./safetensors.ts";
 * import { tensor } from "./tensor.ts";
 * const record = loadSafetensors(saveSafetensors({ w: tensor([1, 2], [2]) }));
 * assert.deepEqual(record, { w: tensor([1, 2], [2]) });
 * ```
 */
export function loadSafetensors(bytes: Uint8Array): TensorRecord {
  return readSafetensors(bytes).tensors;
}

/**
 * Writes tensors (as F32) and optional string metadata in the safetensors format. The codec knows
 * tensors only: to save a model with its class and constructor arguments, so that `loadModel`
 * rebuilds it, use `saveModel`; `saveSafetensors(model.stateDict())` writes its bare weights.
 *
 * Each tensor's `data` is written in its own dtype, never rounded: `Float32Array` as F32,
 * `Float64Array` as F64, `Int32Array` as I32, and likewise I8, I16, U8, U16, U32
 * ({@linkcode readSafetensorsArrays} reads them back bit-exact). A plain array of numbers is
 * written as F32 when float32 holds every value exactly, and refused otherwise.
 *
 * @throws {TypeError} If a metadata value is not a string, or a tensor is not `{ shape, data }`
 * with data of one of those dtypes (64-bit integers are refused).
 * @throws {RangeError} If a shape is not non-negative integers or does not fit its data, or a tensor is named
 * `__metadata__` (the name the format reserves).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSafetensors, saveSafetensors } from "./safetensors.ts";
 * import { zeros } from "./tensor.ts";
 * const bytes = saveSafetensors({ "h2h.bias": zeros([16]) }, { format: "pt" });
 * assert.equal(bytes.length, 8 + new DataView(bytes.buffer).getUint32(0, true) + 16 * 4);
 * assert.deepEqual(loadSafetensors(bytes)["h2h.bias"].shape, [16]);
 * ```
 */
export function saveSafetensors(
  record: TensorRecord,
  metadata: Record<string, string> = {},
): Uint8Array {
  // Entries, not assignments: a tensor named "__proto__" must become a key of the header.
  const header: [string, unknown][] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") {
      throw new TypeError(`metadata["${key}"] must be a string, got ${typeof value}`);
    }
  }
  if (Object.keys(metadata).length > 0) header.push(["__metadata__", metadata]);
  let offset = 0;
  const tensors: SafetensorsData[] = [];
  for (const name of Object.keys(record)) {
    if (name === "__metadata__") {
      throw new RangeError(
        'record["__metadata__"]: a tensor cannot be named "__metadata__", the format reserves it',
      );
    }
    const { dtype, shape, data } = encodeTensor(`record["${name}"]`, record[name]);
    tensors.push(data);
    header.push([name, { dtype, shape, data_offsets: [offset, offset + data.byteLength] }]);
    offset += data.byteLength;
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify(Object.fromEntries(header)));
  // Padding the header with spaces to a multiple of 8 aligns the data section for zero-copy readers.
  const headerLength = Math.ceil(headerBytes.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.fill(0x20, 8, 8 + headerLength);
  out.set(headerBytes, 8);
  let position = 8 + headerLength;
  for (const data of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    position += data.byteLength;
  }
  return out;
}

/**
 * A record entry with its dtype: a typed array keeps its own (a `Float16Array` widens to F32,
 * exactly; a `Uint8ClampedArray` is U8); a plain array of numbers is F32 when float32 holds every
 * value exactly, else refused, never rounded. The shape must fit the data.
 */
function encodeTensor(name: string, value: unknown): SafetensorsArray {
  const { shape, data } = (typeof value === "object" && value !== null ? value : {}) as Partial<
    Record<"shape" | "data", unknown>
  >;
  if (!Array.isArray(shape)) {
    throw new TypeError(`${name} must be a tensor { shape, data }, got ${describe(value)}`);
  }
  shape.forEach((size, axis) => {
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw new RangeError(
        `${name}.shape[${axis}] must be a non-negative integer, got ${describe(size)} in ${
          describe(shape)
        }`,
      );
    }
  });
  const encoded = encodeData(name, data);
  if (encoded.data.length !== sizeOf(shape)) {
    throw new RangeError(
      `${name} has ${encoded.data.length} elements but its shape ${describe(shape)} needs ${
        sizeOf(shape)
      }`,
    );
  }
  return { ...encoded, shape: [...shape] };
}

function encodeData(
  name: string,
  data: unknown,
): { dtype: SafetensorsDtype; data: SafetensorsData } {
  for (const dtype of Object.keys(ARRAYS) as SafetensorsDtype[]) {
    if (data instanceof ARRAYS[dtype]) return { dtype, data: data as SafetensorsData };
  }
  if (data instanceof Uint8ClampedArray) return { dtype: "U8", data: new Uint8Array(data) };
  const isFloat16 = typeof Float16Array !== "undefined" && data instanceof Float16Array;
  if (isFloat16) return { dtype: "F32", data: Float32Array.from(data) };
  if (Array.isArray(data) && data.every((item) => typeof item === "number")) {
    const floats = Float32Array.from(data);
    const index = data.findIndex((item, i) => !Object.is(floats[i], item) && !Number.isNaN(item));
    if (index >= 0) {
      throw new RangeError(
        `${name}.data[${index}] is ${data[index]}, which float32 (the dtype of a plain array) ` +
          `rounds to ${floats[index]}; pass a Float64Array to write it as F64`,
      );
    }
    return { dtype: "F32", data: floats };
  }
  throw new TypeError(
    `${name}.data must be a typed array of F32, F64, I8, I16, I32, U8, U16 or U32 ` +
      `(Float32Array, Float64Array, Int32Array, ...) or an array of numbers, got ${
        Object.prototype.toString.call(data)
      }`,
  );
}

/** The keys of the top-level object of a valid JSON text, in order, duplicates included. */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (depth === 1 && /^\s*:/.test(text.slice(end + 1, end + 32))) {
        keys.push(JSON.parse(text.slice(i, end + 1)));
      }
      i = end;
    } else if (char === "{" || char === "[") {
      depth++;
    } else if (char === "}" || char === "]") {
      depth--;
    }
  }
  return keys;
}

function parseHeader(headerBytes: Uint8Array): Record<string, unknown> {
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError("the header is not valid UTF-8");
  }
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`the header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SafetensorsError("the header must be a JSON object of tensor entries");
  }
  // JSON.parse keeps the last of two equal keys; a file naming a tensor twice is ambiguous.
  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) throw new SafetensorsError(`the header names ${JSON.stringify(key)} twice`);
    seen.add(key);
  }
  return header as Record<string, unknown>;
}

function parseMetadata(entry: unknown): Record<string, string> {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new SafetensorsError("__metadata__ must be an object of strings");
  }
  const metadata: [string, string][] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== "string") {
      throw new SafetensorsError(`__metadata__["${key}"] must be a string, got ${typeof value}`);
    }
    metadata.push([key, value]);
  }
  return Object.fromEntries(metadata);
}

interface Entry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, entry: unknown, dataLength: number): Entry {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new SafetensorsError(`entry "${name}" must be an object with dtype, shape, data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  // `Object.hasOwn`, not `in`: "toString" or "constructor" must not pass for a dtype.
  if (typeof dtype !== "string" || !Object.hasOwn(ARRAYS, dtype)) {
    throw new SafetensorsError(
      `tensor "${name}" has dtype ${JSON.stringify(dtype)}; only F32 and F64 can be read as ` +
        `float32, and I8, I16, I32, U8, U16 and U32 where float32 holds their values ` +
        `(readSafetensorsArrays reads those exactly)`,
    );
  }
  if (!isIndexList(shape)) {
    throw new SafetensorsError(`tensor "${name}" needs a shape of non-negative integers`);
  }
  if (!isIndexList(offsets) || offsets.length !== 2) {
    throw new SafetensorsError(`tensor "${name}" needs data_offsets [begin, end]`);
  }
  const [begin, end] = offsets;
  if (begin > end) {
    throw new SafetensorsError(
      `tensor "${name}" has data_offsets [${begin}, ${end}]: begin ${begin} is after end ${end}`,
    );
  }
  if (end > dataLength) {
    throw new SafetensorsError(
      `tensor "${name}" has data_offsets [${begin}, ${end}] outside the ${dataLength}-byte data section`,
    );
  }
  const expected = sizeOf(shape) * ARRAYS[dtype as SafetensorsDtype].BYTES_PER_ELEMENT;
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `tensor "${name}" of shape [${shape}] ${dtype} needs ${expected} bytes, its offsets span ${
        end - begin
      }`,
    );
  }
  return { dtype: dtype as SafetensorsDtype, shape, begin, end };
}

function isIndexList(value: unknown): value is number[] {
  return Array.isArray(value) &&
    value.every((item) => Number.isSafeInteger(item) && item >= 0);
}
