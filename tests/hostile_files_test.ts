// Hostile model files (issue 21): each is built here, in a few lines, from the file formats or
// from a real file in tests/testdata/interop_files; the loaders must bound their memory and time
// by what the file legitimately holds, and refuse with their own error class.

import assert from "node:assert/strict";
import { deflateSync, strToU8, unzipSync, zipSync } from "npm:fflate@0.8.2";
import * as h5wasm from "npm:h5wasm@0.10.3";
import {
  KerasLoadError,
  loadKeras,
  loadTorch,
  readSafetensors,
  readSafetensorsArrays,
  SafetensorsError,
  saveSafetensors,
  type Tensor,
  TorchLoadError,
} from "../mod.ts";

const DIR = new URL("./testdata/interop_files/", import.meta.url);
const read = (name: string): Uint8Array => Deno.readFileSync(new URL(name, DIR));
const encoder = new TextEncoder();

function throwsWith(fn: () => unknown, type: new (...args: never[]) => Error, ...parts: string[]) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    for (const part of parts) {
      assert.ok(error.message.includes(part), `${part} in ${error.message}`);
    }
    return true;
  });
}

async function rejectsWith(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => Error,
  ...parts: string[]
) {
  await assert.rejects(fn, (error) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    for (const part of parts) {
      assert.ok((error as Error).message.includes(part), `${part} in ${(error as Error).message}`);
    }
    return true;
  });
}

// --- A torch.save zip from pickle opcodes (protocol 2). ---

const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const str = (s: string) => [0x58, ...u32(encoder.encode(s).length), ...encoder.encode(s)];
const int = (n: number) => [0x4a, ...u32(n)]; // BININT
const global = (module: string, name: string) => [0x63, ...encoder.encode(`${module}\n${name}\n`)];
const tuple = (...items: number[][]) => [0x28, ...items.flat(), 0x74]; // MARK ... TUPLE

interface View {
  readonly name: string;
  readonly key: number[]; // the pickled storage key
  readonly elements: number;
  readonly offset: number;
  readonly shape: number[];
  readonly stride: number[];
}

function statePickle(views: View[]): Uint8Array {
  const entries = views.flatMap(({ name, key, elements, offset, shape, stride }) => [
    ...str(name),
    ...global("torch._utils", "_rebuild_tensor_v2"),
    ...tuple(
      [
        ...tuple(str("storage"), global("torch", "FloatStorage"), key, str("cpu"), int(elements)),
        0x51, // BINPERSID
      ],
      int(offset),
      tuple(...shape.map(int)),
      tuple(...stride.map(int)),
      [0x89], // requires_grad False
      [...global("collections", "OrderedDict"), 0x29, 0x52], // OrderedDict()
    ),
    0x52, // REDUCE
    0x73, // SETITEM
  ]);
  return new Uint8Array([0x80, 0x02, 0x7d, ...entries, 0x2e]);
}

function torchZip(views: View[], storages: Record<string, number[]>): Uint8Array {
  const files: Record<string, Uint8Array> = { "archive/data.pkl": statePickle(views) };
  for (const [key, values] of Object.entries(storages)) {
    files[`archive/data/${key}`] = new Uint8Array(new Float32Array(values).buffer);
  }
  return zipSync(files, { level: 0 });
}

Deno.test("loadTorch refuses a 2^27-element stride-0 view of a 4-byte storage before allocating", () => {
  const view = { name: "w", key: str("0"), elements: 1, offset: 0, shape: [2 ** 27], stride: [0] };
  const bytes = torchZip([view], { 0: [1.5] });
  assert.ok(bytes.length < 1000);
  const before = Deno.memoryUsage().rss;
  throwsWith(
    () => loadTorch(bytes),
    TorchLoadError,
    'tensor "w" (shape [134217728], stride [0], offset 0)',
    "a storage of 1 (4 bytes): a stride-0 or overlapping view",
    ".contiguous()",
  );
  assert.ok(Deno.memoryUsage().rss - before < 64 * 2 ** 20, "allocated before refusing");
});

Deno.test("loadTorch still copies legitimate stride-0, overlapping and shared views", () => {
  const views: View[] = [
    { name: "expanded", key: str("0"), elements: 2, offset: 0, shape: [3, 2], stride: [0, 1] },
    { name: "windows", key: str("1"), elements: 3, offset: 0, shape: [2, 2], stride: [1, 1] },
    { name: "tied", key: str("1"), elements: 3, offset: 0, shape: [3], stride: [1] },
  ];
  const state = loadTorch(torchZip(views, { 0: [1, 2], 1: [5, 6, 7] }));
  assert.deepEqual([...state.expanded.data], [1, 2, 1, 2, 1, 2]);
  assert.deepEqual([...state.windows.data], [5, 6, 6, 7]);
  assert.deepEqual([...state.tied.data], [5, 6, 7]);
});

Deno.test("loadTorch refuses a storage key nested 20,000 deep with a TorchLoadError", () => {
  const depth = 20_000;
  const key = [...new Array(depth).fill(0x28), 0x5d, ...new Array(depth).fill(0x6c)]; // [[[...]]]
  const view = { name: "w", key, elements: 1, offset: 0, shape: [1], stride: [1] };
  throwsWith(() => loadTorch(torchZip([view], {})), TorchLoadError, "its key is a tuple or list");
});

// A deflated entry whose bytes are not a deflate stream: inflating it throws.
const CORRUPT_DEFLATE = (() => {
  const bytes = deflateSync(new Uint8Array(1000));
  bytes.fill(0xff, 0, 8);
  return bytes;
})();

// A zip with one more, corrupt, deflated entry that nothing references.
function withCorruptEntry(files: Record<string, Uint8Array>, name: string): Uint8Array {
  const zipped = zipSync({ ...files, [name]: new Uint8Array(1000) }, { level: 1 });
  const good = deflateSync(new Uint8Array(1000), { level: 1 });
  const at = indexOf(zipped, good);
  assert.ok(at > 0);
  zipped.set(CORRUPT_DEFLATE.subarray(0, good.length), at);
  return zipped;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

// Sets the uncompressed size that the central directory declares for `name`.
function declareSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const copy = zip.slice();
  const view = new DataView(copy.buffer);
  const nameBytes = encoder.encode(name);
  for (let at = 0; at + 46 < copy.length; at++) {
    if (view.getUint32(at, true) !== 0x02014b50) continue;
    if (indexOf(copy.subarray(at + 46, at + 46 + nameBytes.length), nameBytes) !== 0) continue;
    view.setUint32(at + 24, size, true);
    return copy;
  }
  throw new Error(`no directory entry ${name}`);
}

Deno.test("loadTorch inflates only the entries the pickle references, each within a bound", () => {
  const files = unzipSync(read("lstm_1layer.pt"));
  const hostile = withCorruptEntry(files, "lstm_1layer/extra/0");
  assert.deepEqual(Object.keys(loadTorch(hostile)), Object.keys(loadTorch(read("lstm_1layer.pt"))));
  // A deflated data.pkl that declares 1 GiB is refused before inflating.
  const deflated = zipSync(files, { level: 6 });
  const bomb = declareSize(deflated, "lstm_1layer/data.pkl", 2 ** 30);
  throwsWith(() => loadTorch(bomb), TorchLoadError, "data.pkl declares 1073741824 bytes");
  // One declaring fewer bytes than its stream holds is caught while inflating.
  const short = declareSize(deflated, "lstm_1layer/data.pkl", 100);
  throwsWith(() => loadTorch(short), TorchLoadError, "inflates to more than the 100 bytes");
});

Deno.test("loadKeras reads only config.json and model.weights.h5 of a .keras zip", async () => {
  const files = unzipSync(read("model.keras"));
  const layers = await loadKeras(withCorruptEntry(files, "assets/unused.bin"));
  assert.deepEqual(layers.map((layer) => layer.name), ["lstm", "lstm_1", "dense"]);
  const bomb = declareSize(zipSync(files, { level: 6 }), "model.weights.h5", 2 ** 31);
  await rejectsWith(() => loadKeras(bomb), KerasLoadError, "model.weights.h5 declares 2147483648");
});

// --- HDF5 files, written with h5wasm. ---

const h5 = await h5wasm.ready.then(() => h5wasm);
let written = 0;

/** Writes an HDF5 file with `build`, or edits a copy of `from` with it, and returns its bytes. */
function hdf5(build: (file: h5wasm.File) => void, from?: Uint8Array): Uint8Array {
  const path = `/hostile-${written++}.h5`;
  if (from !== undefined) h5.FS!.writeFile(path, from);
  const file = new h5wasm.File(path, from === undefined ? "w" : "a");
  try {
    build(file);
  } finally {
    file.close();
  }
  const bytes = h5.FS!.readFile(path);
  h5.FS!.unlink(path);
  return bytes;
}

// Creates the groups of `path` one level at a time; returns the last.
function groups(file: h5wasm.File, path: string): h5wasm.Group {
  let group: h5wasm.Group = file;
  for (const name of path.split("/")) {
    group = (group.get(name) as h5wasm.Group | null) ?? group.create_group(name)!;
  }
  return group;
}

Deno.test("loadKeras refuses a dataset declaring more bytes than the file holds", async () => {
  // A Keras 3 Dense kernel of shape (1, 1e8) whose chunks were never written: HDF5 would return
  // 400 MB of fill values from a file of a few KB.
  const bytes = hdf5((file) => {
    const vars = groups(file, "layers/dense/vars");
    vars.create_dataset({
      name: "0",
      data: new Float32Array(8),
      shape: [1, 8],
      maxshape: [1, null],
      chunks: [1, 8],
    });
    (vars.get("0") as h5wasm.Dataset).resize([1, 1e8]);
  });
  assert.ok(bytes.length < 16_384);
  await rejectsWith(
    () => loadKeras(bytes),
    KerasLoadError,
    `dataset /layers/dense/vars/0 declares shape [1, 100000000] of 4-byte elements, ` +
      `400000000 bytes, more than the ${bytes.length}-byte file can hold`,
  );
});

Deno.test("loadKeras stops a file that makes HDF5 loop, after its deadline", async () => {
  // One byte of keras2_model.h5 changed (found by fuzzing): HDF5 never returns on it.
  const bytes = read("keras2_model.h5");
  bytes[3048] = 222;
  const start = performance.now();
  await rejectsWith(
    () => loadKeras(bytes, { timeoutMs: 3000 }),
    KerasLoadError,
    "parsing took longer than 3000 ms and was stopped",
    "pass a larger timeoutMs",
  );
  assert.ok(performance.now() - start < 10_000);
});

Deno.test("loadKeras leaves nothing that keeps the process alive", async () => {
  const script = `import { loadKeras } from ${
    JSON.stringify(new URL("../mod.ts", import.meta.url))
  };
    const file = new URL(${JSON.stringify(new URL("model.keras", DIR))});
    const layers = await loadKeras(Deno.readFileSync(file));
    console.log(layers.length);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill(), 30_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.equal(new TextDecoder().decode(stdout).trim(), "3");
});

Deno.test("loadKeras refuses a Keras 3 file whose Dense layer has no weights", async () => {
  const bytes = hdf5((file) => {
    const lstm = groups(file, "layers/lstm/cell/vars");
    lstm.create_dataset({ name: "0", data: new Float32Array(3 * 8), shape: [3, 8] });
    lstm.create_dataset({ name: "1", data: new Float32Array(2 * 8), shape: [2, 8] });
    lstm.create_dataset({ name: "2", data: new Float32Array(8), shape: [8] });
    groups(file, "layers/dense/vars");
  });
  await rejectsWith(
    () => loadKeras(bytes),
    KerasLoadError,
    "the weights of 1 layer(s) are missing: dense",
    "1 objects could not be loaded",
  );
});

Deno.test("loadKeras refuses a Keras 2 file whose layer has empty weight_names", async () => {
  for (
    const [file, named] of [["keras2_model.h5", "dense (Dense)"], ["keras2_weights.h5", "dense"]]
  ) {
    const bytes = hdf5((h5file) => {
      const root = h5file.get("model_weights") ?? h5file;
      const dense = (root as h5wasm.Group).get("dense") as h5wasm.Group;
      dense.delete_attribute("weight_names");
      dense.create_attribute("weight_names", new Float32Array(0), [0], "<f");
    }, read(file));
    await rejectsWith(
      () => loadKeras(bytes),
      KerasLoadError,
      `the weights of 1 layer(s) are missing: ${named}`,
    );
  }
});

Deno.test("loadKeras refuses a config.json nested 20,000 deep with a KerasLoadError", async () => {
  const files = unzipSync(read("model.keras"));
  const config = JSON.parse(new TextDecoder().decode(files["config.json"]));
  const deep = "[".repeat(20_000) + "]".repeat(20_000);
  const text = JSON.stringify(config).replace('"layers":', `"deep":${deep},"layers":`);
  await rejectsWith(
    () => loadKeras(zipSync({ ...files, "config.json": strToU8(text) })),
    KerasLoadError,
    "config.json nests objects or arrays more than 256 deep",
  );
});

// --- safetensors ---

function safetensors(header: unknown, data: number): Uint8Array {
  const text = encoder.encode(JSON.stringify(header));
  const bytes = new Uint8Array(8 + text.length + data);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
  bytes.set(text, 8);
  return bytes;
}

Deno.test("readSafetensors refuses a hole between tensors and trailing bytes", () => {
  const hole = safetensors({
    a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
  }, 12);
  throwsWith(
    () => readSafetensors(hole),
    SafetensorsError,
    'invalid offset: tensor "b" begins at byte 8 of the data section, but tensor "a" ends at 4',
  );
  const late = safetensors({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8);
  throwsWith(() => readSafetensors(late), SafetensorsError, "but no tensor ends at 0");
  const trailing = safetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 9);
  throwsWith(
    () => readSafetensors(trailing),
    SafetensorsError,
    "file not fully covered: the tensors end at byte 4 of the 9-byte data section",
  );
});

Deno.test("readSafetensors refuses a header nested 20,000 deep with a SafetensorsError", () => {
  const deep = "[".repeat(20_000) + "]".repeat(20_000);
  const text = encoder.encode(`{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`);
  const bytes = new Uint8Array(8 + text.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
  bytes.set(text, 8);
  throwsWith(() => readSafetensors(bytes), SafetensorsError, 'tensor "w" needs a shape');
});

Deno.test("saveSafetensors writes each typed array in its dtype, and it reads back bit-exact", () => {
  const record = {
    i32: { shape: [3], data: new Int32Array([16777217, -2147483648, 2147483647]) },
    f64: { shape: [3], data: new Float64Array([1e300, 1e-50, -0]) },
    u8: { shape: [2], data: new Uint8Array([0, 255]) },
    i16: { shape: [1], data: new Int16Array([-32768]) },
    f32: { shape: [1], data: new Float32Array([0.1]) },
  } as unknown as Record<string, Tensor>;
  const { tensors } = readSafetensorsArrays(saveSafetensors(record));
  for (const [name, { data }] of Object.entries(record)) {
    assert.equal(tensors[name].data.constructor, data.constructor, name);
    assert.deepEqual(tensors[name].data, data, name);
  }
  assert.deepEqual(Object.values(tensors).map((t) => t.dtype), ["I32", "F64", "U8", "I16", "F32"]);
  // The float32 reader takes the integers float32 holds exactly, and names the one it cannot.
  const small = { ids: { shape: [2], data: new Int32Array([16777216, -3]) } };
  const ids = readSafetensors(saveSafetensors(small as unknown as Record<string, Tensor>));
  assert.deepEqual(ids.tensors.ids.data, new Float32Array([16777216, -3]));
  throwsWith(
    () => readSafetensors(saveSafetensors({ i32: record.i32 })),
    SafetensorsError,
    'tensor "i32" is I32 and its element 0 is 16777217, which float32 cannot hold exactly',
  );
  // A plain array is F32: values float32 would round are refused, not rounded.
  const plain = { w: { shape: [2], data: [0.5, 0.1] } } as unknown as Record<string, Tensor>;
  assert.throws(() => saveSafetensors(plain), /record\["w"\]\.data\[1\] is 0\.1, which float32/);
});
