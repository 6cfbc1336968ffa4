/**
 * Reads and writes the safetensors format, the way PyTorch users save weights: an 8-byte
 * little-endian header length, a JSON header, then the raw little-endian tensor bytes.
 *
 * Reading accepts F32 and F64 (converted to float32); writing produces F32. Every malformed file
 * gives a {@linkcode SafetensorsError} that says what is wrong.
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

const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, F64: 8 };
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

  // Built from entries (own data properties), so a tensor named "__proto__" is kept as a tensor.
  const tensors: [string, Tensor][] = [];
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(entry);
      continue;
    }
    const { dtype, shape, begin, end } = parseEntry(name, entry, dataLength);
    spans.push([begin, end, name]);
    tensors.push([name, { shape, data: decode(bytes, dataStart + begin, sizeOf(shape), dtype) }]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) {
      throw new SafetensorsError(
        `tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap in the data section`,
      );
    }
  }
  return { tensors: Object.fromEntries(tensors), metadata };
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
 * Each tensor's `data` is written as F32: a `Float32Array` as is; any other typed array of numbers
 * (`Int32Array`, `Float64Array`, ...) or plain array of numbers is converted to float32 first.
 *
 * @throws {TypeError} If a metadata value is not a string, or a tensor is not `{ shape, data }`
 * with numeric data.
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
  const tensors: Float32Array[] = [];
  for (const name of Object.keys(record)) {
    if (name === "__metadata__") {
      throw new RangeError(
        'record["__metadata__"]: a tensor cannot be named "__metadata__", the format reserves it',
      );
    }
    const { shape, data } = toFloat32Tensor(`record["${name}"]`, record[name]);
    tensors.push(data);
    header.push([name, { dtype: "F32", shape, data_offsets: [offset, offset + data.byteLength] }]);
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
 * A record entry as float32: a `Float32Array` is used as is, any other typed array of numbers or
 * plain array of numbers is converted (as `tensor()` does), and the shape must fit the data.
 */
function toFloat32Tensor(name: string, value: unknown): { shape: number[]; data: Float32Array } {
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
  let floats: Float32Array;
  if (data instanceof Float32Array) {
    floats = data;
  } else if (
    (ArrayBuffer.isView(data) && !(data instanceof DataView) &&
      !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array)) ||
    (Array.isArray(data) && data.every((item) => typeof item === "number"))
  ) {
    floats = Float32Array.from(data as ArrayLike<number>);
  } else {
    throw new TypeError(
      `${name}.data must be a Float32Array, another typed array of numbers or an array of ` +
        `numbers (written as F32), got ${Object.prototype.toString.call(data)}`,
    );
  }
  if (floats.length !== sizeOf(shape)) {
    throw new RangeError(
      `${name} has ${floats.length} elements but its shape ${describe(shape)} needs ${
        sizeOf(shape)
      }`,
    );
  }
  return { shape: [...shape], data: floats };
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
  dtype: string;
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
  if (typeof dtype !== "string" || !Object.hasOwn(BYTES_PER_ELEMENT, dtype)) {
    throw new SafetensorsError(
      `tensor "${name}" has dtype ${JSON.stringify(dtype)}; only F32 and F64 can be read`,
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
  const expected = sizeOf(shape) * BYTES_PER_ELEMENT[dtype];
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `tensor "${name}" of shape [${shape}] ${dtype} needs ${expected} bytes, its offsets span ${
        end - begin
      }`,
    );
  }
  return { dtype, shape, begin, end };
}

function isIndexList(value: unknown): value is number[] {
  return Array.isArray(value) &&
    value.every((item) => Number.isSafeInteger(item) && item >= 0);
}

function decode(bytes: Uint8Array, start: number, count: number, dtype: string): Float32Array {
  const width = BYTES_PER_ELEMENT[dtype];
  // Copy into a fresh, aligned buffer: the file's offsets need not be aligned to the element size.
  const copy = bytes.slice(start, start + count * width).buffer;
  return dtype === "F32" ? new Float32Array(copy) : Float32Array.from(new Float64Array(copy));
}
