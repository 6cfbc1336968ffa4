// The torch and Keras file readers against files written by torch 1.13 and h5py
// (tests/testdata/interop_files/make.py), and against hostile, truncated and corrupted files.

import assert from "node:assert/strict";
import { strToU8, unzipSync, zipSync } from "npm:fflate@0.8.2";
import {
  type KerasLayerWeights,
  KerasLoadError,
  loadKeras,
  loadTorch,
  readSafetensors,
  type Tensor,
  TorchLoadError,
} from "../mod.ts";
import { Random } from "../src/random.ts";

const DIR = new URL("./testdata/interop_files/", import.meta.url);
const read = (name: string): Uint8Array => Deno.readFileSync(new URL(name, DIR));
const expected = readSafetensors(read("expected.safetensors")).tensors;

function assertThrows(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  message: string,
): void {
  assert.throws(fn, (error) => error instanceof type && error.message.includes(message));
}

async function assertRejects(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => Error,
  message: string,
): Promise<void> {
  await assert.rejects(fn, (error) => error instanceof type && error.message.includes(message));
}

function assertSameTensor(actual: Tensor | undefined, key: string): void {
  const want = expected[key];
  assert.ok(want !== undefined, `expected.safetensors lacks ${key}`);
  if (actual === undefined) throw new Error(`${key} is missing`);
  assert.deepStrictEqual(actual.shape, want.shape, `${key} shape`);
  assert.ok(actual.data instanceof Float32Array, `${key} is not float32`);
  // Bit-exact, NaN included.
  assert.deepStrictEqual(
    new Uint32Array(actual.data.buffer),
    new Uint32Array(want.data.slice().buffer),
    key,
  );
}

const TORCH_FILES: Record<string, string[]> = {
  "lstm_1layer.pt": ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
  "lstm_2layer_bidi.pt": [0, 1].flatMap((layer) =>
    ["", "_reverse"].flatMap((suffix) =>
      ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map((w) => `${w}_l${layer}${suffix}`)
    )
  ),
  "gru_f64.pt": ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
  "linear_f16.pt": ["weight", "bias"],
  "linear_bf16.pt": ["weight", "bias"],
  "views.pt": ["transposed", "sliced", "row", "whole"],
  "legacy.pt": ["weight", "bias", "weight_t"],
  "parameters.pt": ["weight", "bias"],
};

for (const [file, names] of Object.entries(TORCH_FILES)) {
  Deno.test(`loadTorch reads ${file} exactly, in the file's order`, () => {
    const record = loadTorch(read(file));
    assert.deepStrictEqual(Object.keys(record), names);
    for (const name of names) assertSameTensor(record[name], `${file}/${name}`);
  });
}

Deno.test("loadTorch copies views out: a transpose is row-major of its own shape", () => {
  const { transposed, whole } = loadTorch(read("views.pt"));
  assert.deepStrictEqual(transposed.shape, [6, 4]);
  assert.deepStrictEqual(transposed.data[1], whole.data[6]); // transposed[0][1] = whole[1][0]
});

const REFUSED: [string, string][] = [
  ["malicious_global.pt", "refused global os.system"],
  ["malicious_stack_global.pt", "refused global builtins.eval"],
  ["malicious_inst.pt", "refused pickle opcode INST"],
];
for (const [file, message] of REFUSED) {
  Deno.test(`loadTorch refuses ${file} before running anything`, () => {
    assertThrows(() => loadTorch(read(file)), TorchLoadError, message);
  });
}

Deno.test("loadTorch names what it cannot read and says what to do", () => {
  const cases: [string, string][] = [
    ["plain.pkl", "bare pickle, not a torch.save file"],
    ["not_a_dict.pt", "holds a tuple or list, not a state_dict"],
    ["int64.pt", 'tensor "steps" has dtype int64'],
    ["expected.safetensors", "not a zip archive"],
  ];
  for (const [file, message] of cases) {
    assertThrows(() => loadTorch(read(file)), TorchLoadError, message);
  }
  assertThrows(() => loadTorch(new Uint8Array()), TorchLoadError, "not a zip archive");
  assertThrows(() => loadTorch("x" as unknown as Uint8Array), TypeError, "Uint8Array");
});

Deno.test("loadTorch reports a zip without data.pkl and a truncated storage", () => {
  const entries = unzipSync(read("lstm_1layer.pt"));
  assertThrows(
    () => loadTorch(zipSync({ "a/readme.txt": strToU8("hello") })),
    TorchLoadError,
    "expected one <name>/data.pkl in the zip, found 0 (entries: a/readme.txt)",
  );
  const truncated = {
    ...entries,
    "lstm_1layer/data/0": entries["lstm_1layer/data/0"].slice(0, 10),
  };
  assertThrows(() => loadTorch(zipSync(truncated)), TorchLoadError, "is truncated");
  const missing = { ...entries };
  delete missing["lstm_1layer/data/1"];
  assertThrows(() => loadTorch(zipSync(missing)), TorchLoadError, "lstm_1layer/data/1 is missing");
  assertThrows(() => loadTorch(read("legacy.pt").slice(0, -4)), TorchLoadError, "is truncated");
  const cut = read("lstm_1layer.pt").slice(0, 700);
  assertThrows(() => loadTorch(cut), TorchLoadError, "corrupt zip archive");
});

function fuzz(name: string, mutate: (random: Random) => Uint8Array): void {
  const random = new Random(9);
  let parsed = 0;
  for (let trial = 0; trial < 200; trial++) {
    try {
      loadTorch(mutate(random));
      parsed++;
    } catch (error) {
      if (!(error instanceof Error)) throw new Error(`${name} ${trial} threw ${String(error)}`);
      assert.ok(
        error instanceof TorchLoadError,
        `${name} ${trial}: ${error.name}: ${error.message}`,
      );
      assert.ok(error.message.length > 30, `${name} ${trial}: unclear message ${error.message}`);
    }
  }
  assert.ok(parsed < 200, `${name}: no mutation was detected`);
}

function mutated(bytes: Uint8Array, random: Random): Uint8Array {
  const pick = (n: number) => Math.floor(random.uniform() * n);
  const copy = bytes.slice();
  for (let k = 1 + pick(4); k > 0; k--) copy[pick(copy.length)] = pick(256);
  return copy;
}

Deno.test("loadTorch: 600 seeded byte mutations parse or throw a clear TorchLoadError", () => {
  const valid = read("lstm_1layer.pt");
  const entries = unzipSync(valid);
  const pickle = entries["lstm_1layer/data.pkl"];
  // The zip as a whole (fflate's checks), the pickle inside it (the interpreter's), and the
  // legacy format (pickles and storages back to back).
  fuzz("zip", (random) => mutated(valid, random));
  fuzz(
    "pickle",
    (random) => zipSync({ ...entries, "lstm_1layer/data.pkl": mutated(pickle, random) }),
  );
  fuzz("legacy", (random) => mutated(read("legacy.pt"), random));
});

const KERAS_FILES = ["keras2_model.h5", "keras2_weights.h5", "keras3.weights.h5", "model.keras"];
const KERAS_LAYERS: [string, "lstm" | "dense", number][] = [
  ["lstm", "lstm", 5],
  ["lstm_1", "lstm", 4],
  ["dense", "dense", 2],
];

function assertKerasLayer(file: string, layer: KerasLayerWeights): void {
  if (!("kernel" in layer)) throw new Error(`${layer.name} is a ${layer.kind}`);
  assertSameTensor(layer.kernel, `${file}/${layer.name}/kernel`);
  assertSameTensor(layer.bias, `${file}/${layer.name}/bias`);
  if (layer.kind === "lstm") {
    assertSameTensor(layer.recurrentKernel, `${file}/${layer.name}/recurrent_kernel`);
  }
}

for (const file of KERAS_FILES) {
  Deno.test(`loadKeras reads ${file}: layers in order, Keras layouts, exact weights`, async () => {
    const layers = await loadKeras(read(file));
    assert.deepStrictEqual(layers.map((l) => [l.name, l.kind, l.units]), KERAS_LAYERS);
    for (const layer of layers) assertKerasLayer(file, layer);
    const hasConfig = file === "keras2_model.h5" || file === "model.keras";
    assert.deepStrictEqual(
      layers[0].config?.recurrent_activation,
      hasConfig ? "hard_sigmoid" : undefined,
    );
  });
}

Deno.test("loadKeras takes the order of a .keras file's layers from its config", async () => {
  const files = unzipSync(read("model.keras"));
  const config = {
    class_name: "Sequential",
    config: {
      layers: [
        { class_name: "InputLayer", config: { name: "input" } },
        { class_name: "Dense", config: { name: "head" } },
        { class_name: "LSTM", config: { name: "a" } },
        { class_name: "Dropout", config: { name: "drop" } },
        { class_name: "LSTM", config: { name: "b" } },
      ],
    },
  };
  const bytes = zipSync({ ...files, "config.json": strToU8(JSON.stringify(config)) });
  const layers = await loadKeras(bytes);
  assert.deepStrictEqual(layers.map((l) => [l.name, l.config?.name]), [
    ["dense", "head"],
    ["lstm", "a"],
    ["lstm_1", "b"],
  ]);
});

Deno.test("loadKeras says what an unexpected file holds", async () => {
  await assertRejects(
    () => loadKeras(read("not_keras.h5")),
    KerasLoadError,
    "the file holds groups [labels], datasets [images], attributes [none]",
  );
  await assertRejects(() => loadKeras(read("lstm_1layer.pt")), KerasLoadError, "model.weights.h5");
  await assertRejects(() => loadKeras(read("plain.pkl")), KerasLoadError, "not an HDF5 file");
  await assertRejects(
    () => loadKeras(read("keras2_model.h5").slice(0, 3000)),
    KerasLoadError,
    "unreadable HDF5 file (truncated file",
  );
  const files = unzipSync(read("model.keras"));
  await assertRejects(
    () => loadKeras(zipSync({ ...files, "config.json": strToU8("{") })),
    KerasLoadError,
    "config.json is not valid JSON",
  );
});
