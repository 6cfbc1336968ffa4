import assert from "node:assert/strict";
import {
  loadSafetensors,
  Random,
  readSafetensors,
  SafetensorsError,
  saveSafetensors,
  tensor,
} from "../mod.ts";
import { GOLDEN_DIR } from "./_golden.ts";

const encoder = new TextEncoder();

/** A file from raw header bytes and data: the 8-byte length, the header, the data. */
function frame(headerBytes: Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const bytes = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  bytes.set(headerBytes, 8);
  bytes.set(data, 8 + headerBytes.length);
  return bytes;
}

/** A file whose header is `header` as JSON (unpadded), followed by `data`. */
function buildFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return frame(encoder.encode(JSON.stringify(header)), data);
}

/** The little-endian bytes of float32 values. */
function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function headerLengthOf(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
}

function product(shape: readonly number[]): number {
  return shape.reduce((total, size) => total * size, 1);
}

function assertInvalid(bytes: Uint8Array, message: RegExp): void {
  assert.throws(() => readSafetensors(bytes), (error) => {
    assert.ok(error instanceof SafetensorsError, `expected a SafetensorsError, got ${error}`);
    assert.match(error.message, /^invalid safetensors file: /);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("saveSafetensors then readSafetensors gives the tensors back bit for bit", () => {
  const special = new Float32Array([0, -0, 1.5, -2.25e-42, 3.4e38, Infinity, -Infinity, NaN]);
  // A NaN with a payload must survive too: compare bits, not values.
  new Uint32Array(special.buffer)[7] = 0x7fc12345;
  const record = {
    "i2h.weight": tensor(special, [2, 4]),
    "i2h.bias": tensor([0.1, 0.2, 0.3], [3]),
    scalar: tensor([42], []),
    empty: tensor([], [0, 5]),
  };
  const { tensors, metadata } = readSafetensors(saveSafetensors(record, { format: "pt" }));
  assert.deepEqual(Object.keys(tensors), Object.keys(record));
  for (const [name, original] of Object.entries(record)) {
    assert.deepEqual(tensors[name].shape, original.shape, name);
    assert.ok(tensors[name].data instanceof Float32Array, name);
    assert.deepEqual(
      new Uint32Array(tensors[name].data.buffer),
      new Uint32Array(original.data.slice().buffer),
      name,
    );
  }
  assert.deepEqual(metadata, { format: "pt" });
});

Deno.test("saveSafetensors keeps metadata, pads the header to 8 bytes and writes F32", () => {
  const bytes = saveSafetensors(
    { w: tensor([1, 2, 3], [3]), b: tensor([4], [1]) },
    { format: "pt", note: "héllo ✓" },
  );
  const headerLength = Number(headerLengthOf(bytes));
  assert.equal(headerLength % 8, 0);
  const headerBytes = bytes.subarray(8, 8 + headerLength);
  const text = new TextDecoder().decode(headerBytes);
  const jsonLength = encoder.encode(text.trimEnd()).length;
  assert.ok(headerLength - jsonLength < 8, "at most 7 bytes of padding");
  assert.ok(headerBytes.subarray(jsonLength).every((byte) => byte === 0x20), "padded with spaces");
  const header = JSON.parse(text);
  assert.deepEqual(header.__metadata__, { format: "pt", note: "héllo ✓" });
  assert.deepEqual(header.w, { dtype: "F32", shape: [3], data_offsets: [0, 12] });
  assert.deepEqual(header.b, { dtype: "F32", shape: [1], data_offsets: [12, 16] });
  assert.equal(bytes.length, 8 + headerLength + 16);
  assert.deepEqual(readSafetensors(bytes).metadata, { format: "pt", note: "héllo ✓" });
});

Deno.test("saveSafetensors without metadata writes no __metadata__ and reads back {}", () => {
  const bytes = saveSafetensors({ w: tensor([1], [1]) });
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(8, 8 + Number(headerLengthOf(bytes)))),
  );
  assert.deepEqual(Object.keys(header), ["w"]);
  assert.deepEqual(readSafetensors(bytes).metadata, {});
});

Deno.test("saveSafetensors rejects bad records and metadata", () => {
  assert.throws(
    () => saveSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }),
    { name: "RangeError", message: /record\["w"\] has 3 elements but its shape \[2, 2\] needs 4/ },
  );
  assert.throws(
    () => saveSafetensors({ w: tensor([1], [1]) }, { n: 1 as unknown as string }),
    { name: "TypeError", message: /metadata\["n"\] must be a string, got number/ },
  );
  assert.throws(
    () => saveSafetensors({ __metadata__: tensor([1], [1]) }),
    { name: "RangeError", message: /"__metadata__"/ },
  );
});

Deno.test("tensor and metadata names like __proto__ survive a round trip as plain keys", () => {
  const record = Object.fromEntries([["__proto__", tensor([1, 2], [2])], ["w", tensor([3], [1])]]);
  const metadata = Object.fromEntries([["__proto__", "kept"]]);
  const contents = readSafetensors(saveSafetensors(record, metadata));
  assert.deepEqual(Object.keys(contents.tensors), ["__proto__", "w"]);
  assert.deepEqual(Array.from(contents.tensors["__proto__"].data), [1, 2]);
  assert.equal(Object.getPrototypeOf(contents.tensors), Object.prototype);
  assert.deepEqual(Object.entries(contents.metadata), [["__proto__", "kept"]]);
});

Deno.test("loadSafetensors returns the tensors of the file", () => {
  const record = loadSafetensors(saveSafetensors({ w: tensor([1, 2], [1, 2]) }, { a: "b" }));
  assert.deepEqual(Object.keys(record), ["w"]);
  assert.deepEqual(record.w.shape, [1, 2]);
  assert.deepEqual(Array.from(record.w.data), [1, 2]);
});

Deno.test("readSafetensors converts F64 tensors to float32, even at unaligned offsets", () => {
  const values = [1 / 3, -0, 1e300, -1e-50, Math.PI, NaN];
  const f64 = new Uint8Array(new Float64Array(values).buffer);
  // Two float32 values first, so the F64 tensor starts at byte 8 + header + 8 of an unpadded file.
  const data = new Uint8Array([...f32Bytes([7, 8]), ...f64]);
  const bytes = buildFile({
    __metadata__: { dtype: "F64" },
    first: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    x: { dtype: "F64", shape: [2, 3], data_offsets: [8, 56] },
  }, data);
  assert.notEqual(headerLengthOf(bytes) % 8n, 0n, "the test wants an unaligned data section");
  const { tensors } = readSafetensors(bytes);
  assert.ok(tensors.x.data instanceof Float32Array);
  assert.deepEqual(tensors.x.shape, [2, 3]);
  assert.deepEqual(Array.from(tensors.x.data), values.map(Math.fround));
  assert.ok(Object.is(tensors.x.data[1], -0));
  assert.deepEqual(Array.from(tensors.first.data), [7, 8]);
});

Deno.test("readSafetensors reads every golden file", () => {
  const files = [...Deno.readDirSync(GOLDEN_DIR)]
    .filter((entry) => entry.name.endsWith(".safetensors"))
    .map((entry) => entry.name)
    .sort();
  assert.ok(files.length > 0, `no .safetensors files in ${GOLDEN_DIR}`);
  for (const file of files) {
    const { tensors, metadata } = readSafetensors(Deno.readFileSync(new URL(file, GOLDEN_DIR)));
    assert.ok("i2h.weight" in tensors && "x" in tensors, file);
    for (const [name, { shape, data }] of Object.entries(tensors)) {
      assert.ok(data instanceof Float32Array, `${file}: ${name}`);
      assert.equal(data.length, product(shape), `${file}: ${name}`);
    }
    assert.match(metadata.class, /^(LSTM|ArrayLSTM|AttentionArrayLSTM|StochasticArrayLSTM)$/, file);
  }
});

Deno.test("readSafetensors rejects a header length past the end of the file", () => {
  const valid = saveSafetensors({ w: tensor([1], [1]) });
  const bytes = valid.slice();
  new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length), true);
  assertInvalid(
    bytes,
    new RegExp(`header length ${bytes.length} exceeds the ${bytes.length - 8} bytes`),
  );
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  assertInvalid(bytes, /header length 18446744073709551615 exceeds/);
});

Deno.test("readSafetensors rejects files shorter than the 8-byte length", () => {
  for (const length of [0, 1, 7]) {
    assertInvalid(new Uint8Array(length), new RegExp(`${length} bytes is too short`));
  }
});

Deno.test("readSafetensors rejects data cut short", () => {
  const valid = saveSafetensors({ w: tensor([1, 2, 3], [3]) });
  assertInvalid(
    valid.subarray(0, valid.length - 4),
    /"w" has data_offsets \[0, 12\] outside the 8-byte/,
  );
});

Deno.test("readSafetensors rejects a header that is not valid JSON", () => {
  for (const text of ["", "{", '{"w": }', "{'w': 1}", "{} extra"]) {
    assertInvalid(frame(encoder.encode(text)), /the header is not valid JSON/);
  }
});

Deno.test("readSafetensors rejects a header that is not UTF-8", () => {
  assertInvalid(frame(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /the header is not valid UTF-8/);
  // A lone surrogate half encoded as UTF-8 bytes (CESU-8) is not valid UTF-8 either.
  assertInvalid(frame(new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])), /not valid UTF-8/);
});

Deno.test("readSafetensors rejects a header that is not an object", () => {
  for (const header of [[], null, 1, "w", true]) {
    assertInvalid(buildFile(header), /the header must be a JSON object of tensor entries/);
  }
});

Deno.test("readSafetensors rejects unknown or missing dtypes, naming the dtype", () => {
  for (const dtype of ["I64", "BF16", "F16", "f32", "toString", "constructor", "__proto__"]) {
    const bytes = buildFile({ w: { dtype, shape: [1], data_offsets: [0, 4] } }, f32Bytes([1]));
    assertInvalid(
      bytes,
      new RegExp(`tensor "w" has dtype "${dtype}"; only F32 and F64 can be read`),
    );
  }
  assertInvalid(
    buildFile({ w: { shape: [1], data_offsets: [0, 4] } }, f32Bytes([1])),
    /tensor "w" has dtype undefined/,
  );
});

Deno.test("readSafetensors rejects entries that are not objects or lack shape or offsets", () => {
  assertInvalid(
    buildFile({ w: [1, 2] }),
    /entry "w" must be an object with dtype, shape, data_offsets/,
  );
  for (const shape of [undefined, 3, [-1], [1.5], ["2"], [2 ** 53]]) {
    const bytes = buildFile({ w: { dtype: "F32", shape, data_offsets: [0, 4] } }, f32Bytes([1]));
    assertInvalid(bytes, /tensor "w" needs a shape of non-negative integers/);
  }
  for (const offsets of [undefined, [0], [0, 4, 8], [-4, 0], [0, 4.5], "0,4"]) {
    const bytes = buildFile(
      { w: { dtype: "F32", shape: [1], data_offsets: offsets } },
      f32Bytes([1]),
    );
    assertInvalid(bytes, /tensor "w" needs data_offsets \[begin, end\]/);
  }
});

Deno.test("readSafetensors rejects a shape that does not match the byte length", () => {
  const bytes = buildFile(
    { w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
    f32Bytes([1, 2]),
  );
  assertInvalid(bytes, /tensor "w" of shape \[3\] F32 needs 12 bytes, its offsets span 8/);
  const f64 = buildFile(
    { w: { dtype: "F64", shape: [2], data_offsets: [0, 8] } },
    f32Bytes([1, 2]),
  );
  assertInvalid(f64, /tensor "w" of shape \[2\] F64 needs 16 bytes, its offsets span 8/);
});

Deno.test("readSafetensors rejects offsets outside the data section", () => {
  const bytes = buildFile(
    { w: { dtype: "F32", shape: [100], data_offsets: [0, 400] } },
    f32Bytes([1, 2]),
  );
  assertInvalid(bytes, /tensor "w" has data_offsets \[0, 400\] outside the 8-byte data section/);
});

Deno.test("readSafetensors rejects overlapping tensors, naming both", () => {
  const bytes = buildFile({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, f32Bytes([1, 2, 3]));
  assertInvalid(bytes, /tensors "a" and "b" overlap in the data section/);
});

Deno.test("readSafetensors rejects data_offsets whose begin is after their end", () => {
  const bytes = buildFile(
    { w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } },
    f32Bytes([1, 2]),
  );
  assertInvalid(bytes, /tensor "w" has data_offsets \[8, 4\]: begin 8 is after end 4/);
});

Deno.test("readSafetensors rejects metadata that is not an object of strings", () => {
  for (
    const [value, type] of [[1, "number"], [null, "object"], [["a"], "object"], [true, "boolean"]]
  ) {
    const bytes = buildFile({ __metadata__: { format: "pt", n: value } });
    assertInvalid(bytes, new RegExp(`__metadata__\\["n"\\] must be a string, got ${type}`));
  }
  for (const metadata of ["pt", [], null]) {
    assertInvalid(
      buildFile({ __metadata__: metadata }),
      /__metadata__ must be an object of strings/,
    );
  }
});

Deno.test("readSafetensors rejects a non-Uint8Array argument with a TypeError", () => {
  const buffer = saveSafetensors({ w: tensor([1], [1]) }).buffer;
  assert.throws(() => readSafetensors(buffer as unknown as Uint8Array), {
    name: "TypeError",
    message: /bytes must be a Uint8Array, got \[object ArrayBuffer\]/,
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: random mutations of a valid file either read correctly or throw a SafetensorsError.

const JSON_TOKENS = [
  '"',
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  " ",
  "\\",
  "null",
  "true",
  "-1",
  "0",
  "0.5",
  "1e999",
  "9007199254740993",
  '"F32"',
  '"F64"',
  '"I64"',
  '"toString"',
  '"__proto__"',
  '"__metadata__"',
  '"dtype"',
  '"shape"',
  '"data_offsets"',
  "[]",
  "{}",
  '"\\ud800"',
  "\u00e9",
  "\u0000",
];

const JSON_VALUES: unknown[] = [
  -1,
  0,
  1,
  4,
  7,
  8,
  1.5,
  1e300,
  2 ** 53,
  2 ** 32 + 4,
  null,
  true,
  "",
  "F32",
  "F64",
  "I64",
  "toString",
  [],
  [0],
  [1],
  [2, 3],
  [0, 4],
  [4, 0],
  [0, 2 ** 53],
  [-1, 4],
  { a: "b" },
  {},
];

function below(random: Random, bound: number): number {
  return random.nextUint32() % bound;
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[below(random, items.length)];
}

function randomBytes(random: Random, count: number): Uint8Array {
  return Uint8Array.from({ length: count }, () => below(random, 256));
}

function setHeaderLength(bytes: Uint8Array, length: bigint): void {
  if (bytes.length >= 8) {
    new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, BigInt.asUintN(64, length), true);
  }
}

/** Splices `inserted` over `bytes[at, at + removed)`. */
function splice(bytes: Uint8Array, at: number, removed: number, inserted: Uint8Array): Uint8Array {
  return new Uint8Array([...bytes.subarray(0, at), ...inserted, ...bytes.subarray(at + removed)]);
}

/** A random position inside the header (as its length field says), or anywhere if that is bogus. */
function headerPosition(bytes: Uint8Array, random: Random): number {
  const length = bytes.length >= 8 ? headerLengthOf(bytes) : 0n;
  const end = length > 0n && length <= BigInt(bytes.length - 8) ? 8 + Number(length) : bytes.length;
  return Math.min(8, end) + below(random, Math.max(1, end - 8));
}

type Mutation = (bytes: Uint8Array, random: Random) => Uint8Array;

const MUTATIONS: Record<string, Mutation> = {
  flipHeaderBit(bytes, random) {
    const copy = bytes.slice();
    const at = headerPosition(bytes, random);
    if (at < copy.length) copy[at] ^= 1 << below(random, 8);
    return copy;
  },
  setRandomByte(bytes, random) {
    const copy = bytes.slice();
    if (copy.length > 0) copy[below(random, copy.length)] = below(random, 256);
    return copy;
  },
  insertBytes(bytes, random) {
    return splice(
      bytes,
      below(random, bytes.length + 1),
      0,
      randomBytes(random, 1 + below(random, 8)),
    );
  },
  deleteBytes(bytes, random) {
    return splice(bytes, below(random, bytes.length + 1), 1 + below(random, 16), new Uint8Array(0));
  },
  truncate(bytes, random) {
    return bytes.slice(0, below(random, bytes.length + 1));
  },
  rewriteHeaderLength(bytes, random) {
    const copy = bytes.slice();
    const current = copy.length >= 8 ? headerLengthOf(copy) : 0n;
    const choices = [
      current + BigInt(below(random, 33)) - 16n,
      BigInt(random.nextUint32()),
      (BigInt(random.nextUint32()) << 32n) | BigInt(random.nextUint32()),
      0n,
      BigInt(copy.length - 8),
      2n ** 53n + 1n,
    ];
    setHeaderLength(copy, pick(random, choices));
    return copy;
  },
  spliceJsonToken(bytes, random) {
    // Keeps the length field in step, so the damage lands in the JSON rather than the framing.
    const token = encoder.encode(pick(random, JSON_TOKENS));
    const removed = below(random, 3);
    const copy = splice(bytes, headerPosition(bytes, random), removed, token);
    if (bytes.length >= 8) {
      setHeaderLength(copy, headerLengthOf(bytes) + BigInt(token.length - removed));
    }
    return copy;
  },
  replaceHeaderValue(bytes, random) {
    // Valid JSON, wrong meaning: one field of one entry (or the entry itself) gets a random value.
    try {
      const length = Number(headerLengthOf(bytes));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
      const names = Object.keys(header);
      const name = pick(random, names);
      const fields = ["dtype", "shape", "data_offsets", "format", null];
      const field = pick(random, fields);
      const value = pick(random, JSON_VALUES);
      if (field === null || typeof header[name] !== "object" || header[name] === null) {
        header[name] = value;
      } else {
        header[name][field] = value;
      }
      return frame(encoder.encode(JSON.stringify(header)), bytes.subarray(8 + length));
    } catch {
      return bytes;
    }
  },
};

Deno.test("readSafetensors on 3000 mutated files only ever succeeds or throws SafetensorsError", () => {
  const valid = saveSafetensors({
    "i2h.weight": tensor([1, 2, 3, 4, 5, 6], [2, 3]),
    "i2h.bias": tensor([0.5, -0.5], [2]),
    scalar: tensor([9], []),
    empty: tensor([], [0]),
  }, { format: "pt", note: "fuzz" });
  const random = new Random(20240607);
  const kinds = Object.keys(MUTATIONS);
  let read = 0, rejected = 0;
  for (let iteration = 0; iteration < 3000; iteration++) {
    let bytes = valid;
    const applied: string[] = [];
    for (let count = 1 + below(random, 3); count > 0; count--) {
      const kind = pick(random, kinds);
      applied.push(kind);
      bytes = MUTATIONS[kind](bytes, random);
    }
    try {
      const { tensors, metadata } = readSafetensors(bytes);
      for (const [name, { shape, data }] of Object.entries(tensors)) {
        assert.ok(data instanceof Float32Array, `iteration ${iteration} (${applied}): ${name}`);
        assert.equal(data.length, product(shape), `iteration ${iteration} (${applied}): ${name}`);
      }
      for (const value of Object.values(metadata)) assert.equal(typeof value, "string");
      read++;
    } catch (error) {
      if (!(error instanceof SafetensorsError)) {
        assert.fail(`iteration ${iteration} (${applied.join(", ")}) threw ${error}`);
      }
      rejected++;
    }
  }
  // Both outcomes must be common, or the mutations are not exercising the reader.
  assert.ok(read > 50, `only ${read} mutated files were readable`);
  assert.ok(rejected > 1000, `only ${rejected} mutated files were rejected`);
});
