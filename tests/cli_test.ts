/**
 * The command line, run in-process through `main` on tiny data: training, exact resume after an
 * interruption, sampling across backends, predictions, inspection, conversion of torch and Keras
 * files (checked against an LSTM written out in their own gate order), explanations and errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  fromKeras,
  fromTorch,
  loadKeras,
  loadModel,
  loadTorch,
  readModelMetadata,
  readSafetensors,
  Stacked,
  type Tensor,
  tensor,
} from "../mod.ts";
import { CPU_BACKENDS } from "./_backends.ts";
import { assertRefused, type Ran, run, TEXT, trainArgs } from "./_cli.ts";

const INTEROP = new URL("./testdata/interop_files/", import.meta.url);
const EVENTS = [
  "login read write logout",
  "login read read logout",
  "login write write logout",
  "boot login read logout",
].join("\n").repeat(1) + "\n";

/** Runs `train` on `data`, writing the model to `out`, with the other `flags`. */
function train(data: string, out: string, ...flags: string[]): Promise<Ran> {
  return run(["train", "--data", data, "--out", out, ...flags]);
}

async function fixture(): Promise<{ dir: string; text: string; events: string }> {
  const dir = await Deno.makeTempDir({ prefix: "arraylstm_cli_" });
  await Deno.writeTextFile(`${dir}/text.txt`, TEXT);
  await Deno.writeTextFile(`${dir}/events.txt`, EVENTS.repeat(5));
  return { dir, text: `${dir}/text.txt`, events: `${dir}/events.txt` };
}

const TINY = ["--hidden", "8", "--k", "2", "--embedding", "4", "--seq-len", "8", "--batch", "4"];

Deno.test("--help lists every command, and every command answers --help", async () => {
  const top = await run(["--help"]);
  assert.equal(top.status, 0);
  const commands = ["train", "sample", "predict", "inspect", "convert", "explain", "bench"];
  for (const command of commands) {
    assert.match(top.stdout, new RegExp(`^  ${command} `, "m"));
    const help = await run([command, "--help"]);
    assert.equal(help.status, 0, command);
    assert.match(help.stdout, new RegExp(`^Usage: ${command}`), command);
  }
});

Deno.test("train, inspect, sample and predict a tiny text model", async () => {
  const { dir, text } = await fixture();
  const model = `${dir}/m.safetensors`;
  const trained = await run(trainArgs(text, model, 3, ...TINY, "--plot", `${dir}/loss.svg`));
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stderr, /bits per char/);
  const svg = await Deno.readTextFile(`${dir}/loss.svg`);
  assert.match(svg, /^<svg[^>]*xmlns/);
  assert.match(svg, /<polyline/);
  assert.doesNotMatch(svg, /<script/);

  const inspected = await run(["inspect", model]);
  assert.equal(inspected.status, 0);
  assert.match(inspected.stdout, /class +ArrayLSTM/);
  assert.match(inspected.stdout, /"hiddenSize":8,"k":2/);
  assert.match(inspected.stdout, /1\.i2h\.weight +\[64, 4\]/);
  assert.match(
    inspected.stdout,
    /layers +Sequential\[Embedding\(\d+, 4, paddingIdx: 0\), ArrayLSTM\(4, 8, 2\), Linear\(8, \d+\)\]/,
  );
  assert.match(inspected.stdout, /training +step 3/);
  assert.doesNotMatch(inspected.stdout, /optimizer\./);

  const sampled = await run(["sample", "--model", model, "--prime", "the ", "--length", "20"]);
  assert.equal(sampled.status, 0, sampled.stderr);
  assert.equal(sampled.stdout.length, "the ".length + 20 + 1);

  await Deno.writeTextFile(`${dir}/in.txt`, "the c\n\nthe d\n");
  const predicted = await run([
    "predict",
    "--model",
    model,
    "--input",
    `${dir}/in.txt`,
    "--top",
    "3",
  ]);
  assert.equal(predicted.status, 0, predicted.stderr);
  const lines = predicted.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines.map((l) => l.line), [1, 3]);
  for (const line of lines) {
    assert.equal(line.next.length, 3);
    assert.ok(line.next[0].p >= line.next[1].p && line.next[1].p >= line.next[2].p);
  }
});

Deno.test("an interrupted run resumed from its checkpoint equals the uninterrupted run", async () => {
  const { dir, text } = await fixture();
  const flags = ["--data", text, "--backend", "js", "--max-steps", "4", "--seed", "3", ...TINY];
  const whole = await run(["train", ...flags, "--out", `${dir}/whole.safetensors`]);
  assert.equal(whole.status, 0, whole.stderr);

  const stop = new AbortController();
  stop.abort(); // Ctrl-C before the first step: the run stops, and saves, after step 1
  const part = await run(["train", ...flags, "--out", `${dir}/part.safetensors`], stop.signal);
  assert.equal(part.status, 130);
  assert.match(part.stderr, /interrupted \(SIGINT\) at step 1: checkpoint saved/);
  const resumed = await run(
    trainArgs(text, `${dir}/resumed.safetensors`, 4, "--resume", `${dir}/part.safetensors`),
  );
  assert.equal(resumed.status, 0, resumed.stderr);

  const [bytesA, bytesB] = await Promise.all(
    ["whole", "resumed"].map((name) => Deno.readFile(`${dir}/${name}.safetensors`)),
  );
  const [a, b] = [readSafetensors(bytesA), readSafetensors(bytesB)];
  assert.deepEqual(Object.keys(b.tensors).sort(), Object.keys(a.tensors).sort());
  for (const name of Object.keys(a.tensors)) {
    assert.deepEqual(b.tensors[name].data, a.tensors[name].data, name);
  }
  // The same run, step for step; only the recorded output path differs.
  type Training = { training: { step: number; flags: Record<string, unknown> } };
  const [metaA, metaB] = [readModelMetadata<Training>(bytesA), readModelMetadata<Training>(bytesB)];
  assert.equal(metaB.training.step, 4);
  delete metaA.training.flags.out;
  delete metaB.training.flags.out;
  assert.deepEqual(metaB, metaA);

  const again = await train(
    text,
    `${dir}/x`,
    "--resume",
    `${dir}/whole.safetensors`,
    "--seed",
    "4",
    "--lr",
    "0.5",
    "--batch",
    "4",
  );
  assert.equal(again.status, 1);
  assert.match(again.stderr, /--lr 0\.5, --seed 4 differ from the run in .* \(lr 0\.01, seed 3\)/);
});

Deno.test("sample gives the same text for one seed on js and wasm", async () => {
  const { dir, text } = await fixture();
  const model = `${dir}/m.safetensors`;
  assert.equal(
    (await train(text, model, "--max-steps", "4", ...TINY)).status,
    0,
  );
  const texts = [];
  for (const backend of CPU_BACKENDS) {
    const { status, stdout } = await run([
      "sample",
      "--model",
      model,
      "--backend",
      backend,
      "--seed",
      "7",
      "--length",
      "40",
    ]);
    assert.equal(status, 0);
    texts.push(stdout);
  }
  assert.equal(texts[1], texts[0]);
  const other = await run(["sample", "--model", model, "--seed", "8", "--length", "40"]);
  assert.notEqual(other.stdout, texts[0]);
});

Deno.test("events: top-1/top-5 accuracy, predictions as JSON lines, unseen events read as <unk>", async () => {
  const { dir, events } = await fixture();
  const model = `${dir}/e.safetensors`;
  const trained = await train(
    events,
    model,
    "--format",
    "events",
    "--model",
    "LSTM",
    "--hidden",
    "8",
    "--embedding",
    "4",
    "--seq-len",
    "4",
    "--batch",
    "4",
    "--epochs",
    "2",
    "--backend",
    "wasm",
  );
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stderr, /top-1 [\d.]+ % {2}top-5 [\d.]+ %/);
  await Deno.writeTextFile(`${dir}/q.txt`, "login read\nboot\n");
  const predicted = await run(["predict", "--model", model, "--input", `${dir}/q.txt`]);
  assert.equal(predicted.status, 0, predicted.stderr);
  const lines = predicted.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].next.length, 5);
  assert.ok(lines[0].next.every((n: { token: string }) => n.token !== ""));

  await Deno.writeTextFile(`${dir}/unseen.txt`, "login shutdown\n");
  const unseen = await run(["predict", "--model", model, "--input", `${dir}/unseen.txt`]);
  assert.equal(unseen.status, 0, unseen.stderr);
  const [answer] = unseen.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(answer.unknown, ["shutdown"]);
  assert.ok(answer.next.every((n: { token: string }) => n.token !== "<unk>" && n.token !== ""));
});

Deno.test("explain writes a script-free HTML heatmap", async () => {
  const { dir, text } = await fixture();
  const model = `${dir}/m.safetensors`;
  await run(trainArgs(text, model, 1, ...TINY));
  const out = `${dir}/e.html`;
  const explained = await run(["explain", "--model", model, "--text", "the cat", "--out", out]);
  assert.equal(explained.status, 0, explained.stderr);
  assert.match(explained.stdout, /\(lrp\)/);
  const html = await Deno.readTextFile(out);
  assert.equal(html.match(/<span class="token"/g)?.length, "the cat".length);
  assert.match(html, /ArrayLSTM: why &#34;.*&#34; next \(lrp\)/);
  assert.doesNotMatch(html, /<script/i);

  await Deno.writeTextFile(`${dir}/in.txt`, "the\na cat\n");
  const gradient = await run([
    "explain",
    "--model",
    model,
    "--input",
    `${dir}/in.txt`,
    "--out",
    out,
    "--method",
    "gradient-x-input",
    "--target",
    "t",
  ]);
  assert.equal(gradient.status, 0, gradient.stderr);
  const second = await Deno.readTextFile(`${dir}/e-2.html`);
  assert.equal(second.match(/<span class="token"/g)?.length, "a cat".length);
  assert.match(second, /why &#34;t&#34; next \(gradient-x-input\)/);
});

Deno.test("train, sample and explain a GRU; LRP is refused for it by name", async () => {
  const { dir, text } = await fixture();
  const model = `${dir}/gru.safetensors`;
  const tiny = TINY.filter((_, i) => i !== TINY.indexOf("--k") && i !== TINY.indexOf("--k") + 1);
  const trained = await train(text, model, "--model", "GRU", "--max-steps", "2", ...tiny);
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stderr, /on the TypeScript reference/);
  const sampled = await run(["sample", "--model", model, "--prime", "the ", "--length", "5"]);
  assert.equal(sampled.status, 0, sampled.stderr);
  assert.equal(sampled.stdout.length, "the ".length + 5 + 1);
  const out = `${dir}/g.html`;
  const explained = await run(["explain", "--model", model, "--text", "the", "--out", out]);
  assert.equal(explained.status, 0, explained.stderr);
  assert.match(await Deno.readTextFile(out), /GRU: why .* \(gradient-x-input\)/);
  const lrp = await run([
    "explain",
    "--model",
    model,
    "--text",
    "a",
    "--out",
    out,
    "--method",
    "lrp",
  ]);
  assert.equal(lrp.status, 1);
  assert.match(lrp.stderr, /--method lrp needs a model of the LSTM family, got GRU/);
});

/** An LSTM step by step in torch's gate order (i, f, g, o): `(T, I)` inputs to `(T, H)`. */
function torchOrderLSTM(
  x: number[][],
  w: { ih: Tensor; hh: Tensor; bih: Float32Array; bhh: Float32Array },
): number[][] {
  const H = w.hh.shape[1];
  const I = w.ih.shape[1];
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  let [h, c] = [new Array(H).fill(0), new Array(H).fill(0)];
  return x.map((xt) => {
    const z = Array.from({ length: 4 * H }, (_, r) => {
      let sum = w.bih[r] + w.bhh[r];
      for (let j = 0; j < I; j++) sum += w.ih.data[r * I + j] * xt[j];
      for (let j = 0; j < H; j++) sum += w.hh.data[r * H + j] * h[j];
      return sum;
    });
    c = c.map((cu, u) => sigmoid(z[H + u]) * cu + sigmoid(z[u]) * Math.tanh(z[2 * H + u]));
    h = c.map((cu, u) => sigmoid(z[3 * H + u]) * Math.tanh(cu));
    return h;
  });
}

async function assertConverted(
  file: string,
  expected: { ih: Tensor; hh: Tensor; bih: Float32Array; bhh: Float32Array },
): Promise<void> {
  const stack = loadModel(await Deno.readFile(file), { backend: "js" });
  assert.ok(stack instanceof Stacked);
  const I = stack.inputSize;
  const x = Array.from(
    { length: 3 },
    (_, t) => Array.from({ length: I }, (_, j) => Math.sin(1 + t * 3 + j)),
  );
  const { output } = await stack.forward(tensor(x.flat(), [1, 3, I]));
  const want = torchOrderLSTM(x, expected).flat();
  want.forEach((v, i) => assert.ok(Math.abs(output.data[i] - v) < 1e-5, `output[${i}]`));
}

/** Whether the model file `file` computes what `expected` does. */
async function assertSameNetwork(file: string, expected: Stacked): Promise<void> {
  const saved = loadModel(await Deno.readFile(file), { backend: "js" });
  assert.ok(saved instanceof Stacked);
  const x = tensor(Array.from({ length: 3 * expected.inputSize }, (_, i) => Math.sin(i)), [
    1,
    3,
    expected.inputSize,
  ]);
  assert.deepEqual((await saved.forward(x)).output.data, (await expected.forward(x)).output.data);
}

Deno.test("convert --from torch maps nn.LSTM's gates, and stacks, bidirectional layers and GRUs", async () => {
  const { dir } = await fixture();
  const path = new URL("lstm_1layer.pt", INTEROP).pathname;
  const out = `${dir}/t.safetensors`;
  const converted = await run(["convert", "--from", "torch", path, "--out", out]);
  assert.equal(converted.status, 0, converted.stderr);
  const t = loadTorch(await Deno.readFile(path));
  await assertConverted(out, {
    ih: t.weight_ih_l0,
    hh: t.weight_hh_l0,
    bih: t.bias_ih_l0.data,
    bhh: t.bias_hh_l0.data,
  });
  for (
    const [name, mode, layers] of [
      ["lstm_2layer_bidi.pt", "LSTM", /Stacked\[Bidirectional\(LSTM\(.*\), Bidirectional\(/],
      ["gru_f64.pt", "GRU", /Stacked\[GRU\(\d+, \d+\)\]/],
    ] as const
  ) {
    const file = new URL(name, INTEROP).pathname;
    const done = await run(["convert", "--from", "torch", file, "--out", out]);
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stdout, layers);
    const record = loadTorch(await Deno.readFile(file));
    await assertSameNetwork(out, fromTorch(record, { mode, backend: "js" }));
    const inspected = await run(["inspect", out]);
    assert.match(inspected.stdout, /^saved model /);
    assert.match(inspected.stdout, layers);
  }
  const mismatch = await run(["convert", "--from", "torch", path, "--out", out, "--mode", "gru"]);
  assert.equal(mismatch.status, 1);
  assert.match(mismatch.stderr, /weight_ih_l0/);
  const layers = await run(["convert", "--from", "torch", path, "--out", out, "--layers", "2"]);
  assert.match(layers.stderr, /missing weight_ih_l1/);
});

Deno.test("convert --from keras transposes and reorders LSTM kernels, one layer or a stack", async () => {
  const { dir } = await fixture();
  const path = new URL("keras3.weights.h5", INTEROP).pathname;
  const out = `${dir}/k.safetensors`;
  const converted = await run([
    "convert",
    "--from",
    "keras",
    path,
    "--out",
    out,
    "--layer",
    "lstm_1",
  ]);
  assert.equal(converted.status, 0, converted.stderr);
  const layer = (await loadKeras(await Deno.readFile(path))).find((l) => l.name === "lstm_1");
  assert.ok(layer?.kind === "lstm");
  const transpose = (m: Tensor): Tensor => {
    const [r, c] = m.shape;
    return tensor(
      Array.from({ length: r * c }, (_, i) => m.data[(i % r) * c + Math.floor(i / r)]),
      [c, r],
    );
  };
  await assertConverted(out, {
    ih: transpose(layer.kernel),
    hh: transpose(layer.recurrentKernel),
    bih: layer.bias!.data,
    bhh: new Float32Array(4 * layer.units),
  });
  const several = await run(["convert", "--from", "keras", path, "--out", out]);
  assert.equal(several.status, 0, several.stderr);
  assert.match(several.stdout, /Stacked\[LSTM\(\d+, \d+\), LSTM\(/);
  const layers = await loadKeras(await Deno.readFile(path));
  await assertSameNetwork(out, fromKeras(layers, { backend: "js" }).stack);
  // The file says Keras 2 wrote it: its "hard_sigmoid" is Keras 2's, read without an option.
  const keras2 = new URL("keras2_model.h5", INTEROP).pathname;
  for (const flags of [["--layer", "lstm"], ["--recurrent-activation", "hard_sigmoid"]]) {
    const hard = await run(["convert", "--from", "keras", keras2, "--out", out, ...flags]);
    assert.equal(hard.status, 0, hard.stderr);
    assert.match(hard.stdout, /LSTM\(\d+, \d+, recurrentActivation: "hard_sigmoid"\)/);
  }
});

Deno.test("inspect lists the tensors of torch, Keras and plain safetensors files", async () => {
  const pt = await run(["inspect", new URL("lstm_1layer.pt", INTEROP).pathname]);
  assert.match(pt.stdout, /weight_ih_l0 +\[16, 3\] +48/);
  const keras = await run(["inspect", new URL("keras2_model.h5", INTEROP).pathname]);
  assert.match(keras.stdout, /layer dense \(dense, 2 units\)/);
  const plain = await run(["inspect", new URL("expected.safetensors", INTEROP).pathname]);
  assert.equal(plain.status, 0);
  assert.match(plain.stdout, /^safetensors /);
});

Deno.test("bench prints a table with ratios", async () => {
  const { status, stdout } = await run([
    "bench",
    "--backend",
    "js,wasm",
    "--batch",
    "2",
    "--hidden",
    "8",
    "--seq-len",
    "2",
    "--runs",
    "1",
  ]);
  assert.equal(status, 0);
  assert.match(stdout, /model +js +wasm +wasm\/js/);
  assert.equal(
    stdout.match(/^(LSTM|ArrayLSTM|AttentionArrayLSTM|StochasticArrayLSTM) /gm)?.length,
    4,
  );
});

Deno.test("errors print one line naming the problem and exit 1", async () => {
  const { dir, text } = await fixture();
  const bare = `${dir}/bare.safetensors`;
  await run([
    "convert",
    "--from",
    "torch",
    new URL("lstm_1layer.pt", INTEROP).pathname,
    "--out",
    bare,
  ]);
  const cases: [string[], RegExp][] = [
    [["nonsense"], /unknown command "nonsense"/],
    [["train", "--bogus"], /Unknown option '--bogus'/],
    [["train", "--data", `${dir}/missing.txt`, "--out", "x"], /cannot read data .*missing\.txt/],
    [["train", "--data", text, "--out", "x", "--hidden=0"], /--hidden must be an integer/],
    [["train", "--data", text, "--out", "x", "--model", "RNN"], /--model must be one of LSTM/],
    [["train", "--data", text, "--out", "x", "--model", "GRU", "--k", "2"], /not GRU/],
    [["convert", "--from", "keras", "x", "--out", "y", "--mode", "gru"], /--mode does not apply/],
    [["sample", "--model", bare], /holds a Stacked without a vocabulary \(written by `convert`/],
    [["sample", "--model", text], /text\.txt is a text file, not a model: train one on it/],
    [["inspect"], /inspect takes one file, got 0/],
    [["convert", "--from", "onnx", "x", "--out", "y"], /--from must be one of torch, keras/],
  ];
  for (const [args, pattern] of cases) assertRefused(await run(args), pattern, args.join(" "));
});
