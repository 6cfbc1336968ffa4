/**
 * Model files: every layer class and container round-trips with its numbers and its printout,
 * user metadata and extra tensors, the typed `expect`, the files older code wrote (saveModel's
 * first format and the CLI's own), and hostile files refused before anything is allocated.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  Bidirectional,
  Dropout,
  Embedding,
  GRU,
  LastStep,
  Linear,
  loadModel,
  LogSoftmax,
  LSTM,
  MODEL_METADATA_KEY,
  ModelFileError,
  type Module,
  randn,
  readModelConfig,
  readModelMetadata,
  ReLU,
  saveModel,
  saveSafetensors,
  Sequential,
  Sigmoid,
  Softmax,
  Stacked,
  Tanh,
  type Tensor,
  zeros,
} from "../mod.ts";
import { buildModel, type LayerName, LAYERS, MODELS } from "../src/models/registry.ts";
import type { ModelName } from "../src/variants.ts";

const js = { backend: "js" } as const;

/**
 * The sizes and options of the recurrent classes whose options matter; every other class of
 * `MODELS` is built with `k = 2` and its defaults.
 */
const RECURRENT: Partial<Record<ModelName, { k?: number; options?: Record<string, unknown> }>> = {
  LSTM: { options: { recurrentActivation: "hard_sigmoid" } },
  AttentionArrayLSTM: { k: 3, options: { maxPooling: true } },
  RNN: { options: { nonlinearity: "relu" } },
};

/** One small instance of every class of the registry (the recurrent ones from `MODELS`). */
function everyLayer(): Record<LayerName, Module> {
  const recurrent = {} as Record<ModelName, Module>;
  (Object.keys(MODELS) as ModelName[]).forEach((name, i) => {
    const { k = 2, options = {} } = RECURRENT[name] ?? {};
    const sizes = { inputSize: 3, hiddenSize: 4, k };
    recurrent[name] = buildModel(name, sizes, { ...js, seed: i + 1, ...options });
  });
  return {
    ...recurrent,
    Linear: new Linear(3, 4, { seed: 7, bias: false }),
    Embedding: new Embedding(6, 3, { seed: 8, paddingIdx: 0 }),
    Dropout: new Dropout(0.25),
    LastStep: new LastStep(),
    ReLU: new ReLU(),
    Tanh: new Tanh(),
    Sigmoid: new Sigmoid(),
    Softmax: new Softmax(),
    LogSoftmax: new LogSoftmax(),
  };
}

/** What a layer gives for a fixed input, flattened. */
async function run(layer: Module, name: string): Promise<Float32Array> {
  const forward = (layer as unknown as { forward(x: unknown): Promise<unknown> }).forward.bind(
    layer,
  );
  const x = randn([2, 5, 3], { seed: 9 });
  const result = name === "Embedding" ? await forward([[1, 2], [3, 0]]) : await forward(x);
  const tensor = (result as { output?: Tensor }).output ?? (result as Tensor);
  return tensor.data;
}

Deno.test("every layer class round-trips with its class, options, numbers and printout", async () => {
  for (const [name, layer] of Object.entries(everyLayer())) {
    const copy = loadModel(saveModel(layer), js);
    assert.equal(copy.constructor, layer.constructor, name);
    assert.deepEqual(copy.stateDict(), layer.stateDict(), name);
    assert.deepEqual(await run(copy, name), await run(layer, name), name);
    assert.equal(String(copy), String(layer), name);
  }
});

Deno.test("the registry's parameter shapes are the shapes each class draws", () => {
  for (const [name, layer] of Object.entries(everyLayer()) as [LayerName, Module][]) {
    const entry = LAYERS[name];
    const shapes = entry.shapes(entry.args(layer), entry.options(layer));
    const drawn = Object.fromEntries(
      Object.entries(layer.stateDict()).map(([key, t]) => [key, t.shape]),
    );
    assert.deepEqual(shapes, drawn, name);
  }
});

Deno.test("a Sequential with metadata and extra tensors round-trips and prints the same", async () => {
  const vocabulary = ["", "a", "b", "c", "d"];
  const model = new Sequential([
    new Embedding(5, 4, { seed: 1, paddingIdx: 0 }),
    new Stacked([
      new ArrayLSTM(4, 6, 2, { ...js, seed: 2 }),
      new Bidirectional(new GRU(6, 3, { ...js, seed: 3 }), new GRU(6, 3, { ...js, seed: 4 })),
    ]),
    new Dropout(0.1),
    new LSTM(6, 5, { ...js, seed: 5 }),
    new LastStep(),
    new Linear(5, 3, { seed: 6 }),
    new Softmax(),
  ]);
  const buffer = zeros([2, 2]);
  const metadata = { vocabulary, tokens: "chars", training: { step: 3, history: [[1, 2.5]] } };
  const bytes = saveModel(model, { metadata, tensors: { "optimizer.0.exp_avg": buffer } });
  const again = loadModel(bytes, { ...js, expect: Sequential });
  const ids = [[1, 2, 3], [4, 1, 0]];
  assert.deepEqual((await again.forward(ids)).data, (await model.forward(ids)).data);
  assert.equal(again.summary(), model.summary());
  assert.equal(again.toString(), model.toString());
  assert.deepEqual(readModelMetadata(bytes), metadata);
  assert.equal(readModelConfig(bytes).class, "Sequential");
  // The README's way: a union, narrowed by instanceof.
  const loaded = loadModel(bytes, js);
  assert.ok(loaded instanceof Sequential);
  assert.deepEqual((await loaded.forward(ids)).shape, [2, 3]);
  assert.deepEqual(readModelMetadata(saveModel(new ReLU())), {});
});

Deno.test("saveModel refuses what it cannot write back, by name", () => {
  const lstm = new LSTM(2, 2);
  assert.throws(
    () => saveModel(lstm, { note: "x" } as never),
    /options must be \{ metadata, tensors \}, got the option\(s\) note: put your own values under options\.metadata/,
  );
  assert.throws(
    () => saveModel(lstm, { metadata: { when: new Date(0) } as never }),
    /options\.metadata\.when must be JSON .* got a Date/,
  );
  assert.throws(
    () => saveModel(lstm, { metadata: { loss: NaN } }),
    /options\.metadata\.loss must be JSON/,
  );
  assert.throws(
    () => saveModel(lstm, { tensors: { "i2h.bias": zeros([8]) } }),
    /options\.tensors\["i2h\.bias"\] has the name of a parameter/,
  );
  assert.throws(
    () => saveModel(new Sequential([new (class Mine extends ReLU {})()])),
    /model\.layers\[0\] is a Mine: save a subclass's stateDict\(\)/,
  );
});

Deno.test("expect checks the class before building; loadModel<T> types it", () => {
  const bytes = saveModel(new GRU(2, 3));
  const gru: GRU = loadModel(bytes, { expect: GRU });
  assert.equal(gru.hiddenSize, 3);
  const typed = loadModel<GRU>(bytes);
  assert.ok(typed instanceof GRU);
  assert.throws(
    () => loadModel(bytes, { expect: Sequential }),
    (error) =>
      error instanceof ModelFileError &&
      /holds the class GRU, not Sequential: load it with expect: GRU/.test(error.message),
  );
  // A subclass's file is expected as its base class too.
  assert.ok(loadModel(saveModel(new ArrayLSTM(2, 3, 2)), { expect: LSTM }) instanceof ArrayLSTM);
});

Deno.test("files of today's first format load: the description alone, metadata as strings", async () => {
  const stack = new Stacked([
    new LSTM(3, 4, { ...js, seed: 1 }),
    new GRU(4, 2, { ...js, seed: 2 }),
  ]);
  const config = {
    class: "Stacked",
    layers: [
      { class: "LSTM", args: [3, 4], options: { recurrentActivation: "sigmoid" } },
      { class: "GRU", args: [4, 2], options: {} },
    ],
  };
  const bytes = saveSafetensors(stack.stateDict(), {
    [MODEL_METADATA_KEY]: JSON.stringify(config),
    note: "kept",
  });
  const again = loadModel(bytes, { ...js, expect: Stacked });
  const x = randn([1, 3, 3], { seed: 3 });
  assert.deepEqual((await again.forward(x)).output.data, (await stack.forward(x)).output.data);
  assert.deepEqual(readModelMetadata(bytes), { note: "kept" });
});

/** A file as the CLI's `train` wrote it before it wrote saveModel files (metadata key "arraylstm"). */
function cliFile(meta: object, network: Sequential, extra: Record<string, Tensor> = {}) {
  const parts = ["embedding.", "rnn.", "head."];
  const tensors = Object.fromEntries(
    Object.entries(network.stateDict()).map((
      [name, t],
    ) => [parts[Number(name[0])] + name.slice(2), t]),
  );
  return saveSafetensors({ ...tensors, ...extra }, { arraylstm: JSON.stringify(meta) });
}

Deno.test("the CLI's files load as the Sequential they are, with their vocabulary", async () => {
  const meta = {
    version: 1,
    model: {
      class: "AttentionArrayLSTM",
      args: { inputSize: 4, hiddenSize: 5, k: 2, maxPooling: true },
    },
    task: { format: "text", tokens: "chars", vocabulary: ["", "a", "b", "c"], embeddingSize: 4 },
    training: {
      step: 7,
      flags: { seed: 1 },
      optimizer: { counters: [null], options: { lr: 0.01 } },
      history: { train: [[1, 1.5]], validation: [] },
    },
  };
  const network = new Sequential([
    new Embedding(4, 4, { seed: 3, paddingIdx: 0 }),
    new AttentionArrayLSTM(4, 5, 2, { ...js, seed: 4, maxPooling: true }),
    new Linear(5, 4, { seed: 5 }),
  ]);
  const bytes = cliFile(meta, network, { "optimizer.0.exp_avg": zeros([4, 4]) });
  const model = loadModel(bytes, { ...js, expect: Sequential });
  const ids = [[1, 2, 3, 0]];
  assert.deepEqual((await model.forward(ids)).data, (await network.forward(ids)).data);
  assert.match(
    model.toString(),
    /Embedding\(4, 4, paddingIdx=0\)[^]*AttentionArrayLSTM\(4, 5, k=2/,
  );
  const { vocabulary, tokens, format, training } = readModelMetadata<{
    vocabulary: string[];
    tokens: string;
    format: string;
    training: { step: number };
  }>(bytes);
  assert.deepEqual([vocabulary, tokens, format, training.step], [
    meta.task.vocabulary,
    "chars",
    "text",
    7,
  ]);
  network.dispose();
});

Deno.test("a bare state dict or another format says what it is and what to do", () => {
  assert.throws(
    () => loadModel(saveSafetensors(new LSTM(2, 1).stateDict())),
    /no "arraylstm\.model" metadata, so it is a bare state dict: construct the model and call model\.loadStateDict\(loadSafetensors\(bytes\)\), .*\(it holds i2h\.weight \[4, 2\], /,
  );
  assert.throws(
    () => readModelMetadata(new TextEncoder().encode("PK\x03\x04 a torch zip of some kind")),
    /not a safetensors file .* loadTorch and fromTorch/,
  );
});

/** A file whose description claims `config` but holds `tensors`. */
function hostile(config: unknown, tensors: Record<string, Tensor>): Uint8Array {
  return saveSafetensors(tensors, { [MODEL_METADATA_KEY]: JSON.stringify(config) });
}

Deno.test("a small file claiming a huge model is refused before anything is allocated", () => {
  const tiny = { "i2h.weight": zeros([1, 1]) };
  const claims: [unknown, RegExp][] = [
    [
      { class: "LSTM", args: [1, 30000], options: {} },
      /"i2h\.weight" is \[1, 1\] in the file, the metadata implies \[120000, 1\]/,
    ],
    [
      { class: "ArrayLSTM", args: [1, 1, 1e6], options: {} },
      /the metadata implies \[4000000, 1\]/,
    ],
    [
      { class: "ArrayLSTM", args: [8192, 8192, 8], options: {} },
      /missing "h2h\.weight" \[262144, 8192\]/,
    ],
    [
      { class: "Sequential", layers: [{ class: "Embedding", args: [1e9, 1e3], options: {} }] },
      /missing "0\.weight" \[1000000000, 1000\]; unexpected tensor "i2h\.weight"/,
    ],
    [
      { class: "GRU", args: [1, 1.5], options: {} },
      /args\[1\] \(hiddenSize\) must be a positive integer, got 1\.5/,
    ],
    [
      { class: "ArrayLSTM", args: [1, 1], options: {} },
      /args must be the 3 numbers \(inputSize, hiddenSize, k\)/,
    ],
    [
      { class: "Eval", args: [], options: {} },
      /model must be a layer description .* got class "Eval"/,
    ],
  ];
  const before = Deno.memoryUsage().rss;
  for (const [config, message] of claims) {
    const bytes = hostile(config, tiny);
    assert.ok(bytes.length < 400, `${bytes.length} bytes`);
    assert.throws(
      () => loadModel(bytes, js),
      (error) => error instanceof ModelFileError && message.test(error.message),
      JSON.stringify(config),
    );
  }
  assert.ok(Deno.memoryUsage().rss - before < 256 * 2 ** 20, "no large allocation");
});

Deno.test("a CLI file claiming a huge model is refused by the same check", () => {
  const meta = {
    version: 1,
    model: { class: "ArrayLSTM", args: { inputSize: 8192, hiddenSize: 8192, k: 8 } },
    task: { format: "text", tokens: "chars", vocabulary: ["", "a"], embeddingSize: 8192 },
  };
  const bytes = saveSafetensors({ "rnn.i2h.weight": zeros([1, 1]) }, {
    arraylstm: JSON.stringify(meta),
  });
  assert.throws(
    () => loadModel(bytes, js),
    (error) =>
      error instanceof ModelFileError && /"1\.i2h\.weight" is \[1, 1\]/.test(error.message),
  );
});

Deno.test("a description nested 20,000 deep gives the loader's error, not a stack overflow", () => {
  let config: unknown = { class: "ReLU", args: [], options: {} };
  for (let i = 0; i < 20000; i++) config = { class: "Sequential", layers: [config] };
  const bytes = hostile(config, {});
  for (const read of [() => loadModel(bytes), () => readModelConfig(bytes)]) {
    assert.throws(
      read,
      (error) =>
        error instanceof ModelFileError && /nests deeper than 64 levels/.test(error.message),
    );
  }
  // Deep arrays of nothing are refused the same way.
  const arrays = "[".repeat(20000) + "]".repeat(20000);
  assert.throws(
    () => loadModel(saveSafetensors({}, { [MODEL_METADATA_KEY]: arrays })),
    ModelFileError,
  );
});
