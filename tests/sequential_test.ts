/**
 * Sequential against its layers applied by hand, its gradients against finite differences,
 * Dropout's masks, LastStep with lengths, printing, state dicts and the errors for bad layers.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  Bidirectional,
  crossEntropy,
  Dropout,
  Embedding,
  GRU,
  LastStep,
  Linear,
  LogSoftmax,
  LSTM,
  mul,
  randn,
  ReLU,
  requiresGrad,
  Sequential,
  Sigmoid,
  Softmax,
  Stacked,
  sum,
  Tanh,
  type Tensor,
  tensor,
} from "../mod.ts";

const IDS = [[1, 4, 2, 0], [3, 3, 5, 1]];

function assertClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  assert.equal(actual.length, expected.length, `${name}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= 1e-6 * Math.max(1, Math.abs(expected[i])),
      `${name}[${i}]: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

Deno.test("Sequential forward equals its layers applied by hand", async () => {
  const embedding = new Embedding(6, 3, { seed: 1 });
  const lstm = new ArrayLSTM(3, 4, 2, { backend: "js", seed: 2 });
  const dropout = new Dropout(0.5, { seed: 3 });
  const head = new Linear(4, 5, { seed: 4 });
  const relu = new ReLU();
  const model = new Sequential([embedding, lstm, dropout, head, relu]);
  const byHand = await relu.forward(
    await head.forward(
      await dropout.forward((await lstm.forward(await embedding.forward(IDS))).output),
    ),
  );
  const output = await model.forward(IDS);
  assert.deepEqual(output.shape, [2, 4, 5]);
  assert.deepEqual(output.data, byHand.data);

  const activations = [new Tanh(), new Sigmoid(), new Softmax(), new LogSoftmax()];
  const x = randn([2, 3, 4], { seed: 5 });
  for (const layer of activations) {
    const chained = await new Sequential([head, layer]).forward(x);
    assert.deepEqual(chained.data, (await layer.forward(await head.forward(x))).data);
  }
  model.dispose();
});

Deno.test("Sequential gradients (Embedding -> LSTM -> Dropout -> Linear) match finite differences", async () => {
  const embedding = new Embedding(6, 3, { seed: 1 });
  const lstm = new LSTM(3, 4, { backend: "js", seed: 2 });
  const head = new Linear(4, 6, { seed: 3 });
  // A fresh Dropout with the same seed draws the same mask, so every evaluation is one function.
  const build = () =>
    new Sequential([embedding, lstm, new Dropout(0.3, { seed: 7 }), head]).train();
  const targets = IDS.flatMap((row) => row.map((id) => (id + 1) % 6));
  const lossOf = async () => crossEntropy(await build().forward(IDS), targets);
  const model = build();
  const loss = crossEntropy(await model.forward(IDS), targets);
  await loss.backward();
  await model.sync();
  for (const parameter of model.parameters()) {
    const analytic = parameter.grad!.data;
    const count = parameter.value.data.length;
    for (let i = 0; i < count; i += Math.max(1, Math.floor(count / 12))) {
      const original = parameter.value.data.slice();
      const at = async (delta: number) => {
        const moved = original.slice();
        moved[i] += delta;
        parameter.value = { shape: parameter.value.shape, data: moved };
        return (await lossOf()).data[0];
      };
      const step = 1e-2;
      const numeric = (await at(step) - await at(-step)) / (2 * step);
      parameter.value = { shape: parameter.value.shape, data: original };
      assert.ok(
        Math.abs(numeric - analytic[i]) <= 2e-3 * Math.max(1, Math.abs(numeric)),
        `${parameter.name}[${i}]: analytic ${analytic[i]}, finite difference ${numeric}`,
      );
    }
  }
  assert.deepEqual(
    model.parameters().map((p) => p.name),
    ["weight", "i2h.weight", "i2h.bias", "h2h.weight", "h2h.bias", "weight", "bias"],
  );
  assert.deepEqual(Object.keys(model.stateDict()), [
    "0.weight",
    "1.i2h.weight",
    "1.i2h.bias",
    "1.h2h.weight",
    "1.h2h.bias",
    "3.weight",
    "3.bias",
  ]);
});

Deno.test("Dropout is the identity in eval and passes gradients through", async () => {
  const dropout = new Dropout(0.4, { seed: 1 });
  const x = requiresGrad(randn([3, 5], { seed: 2 }));
  const y = await dropout.forward(x);
  assert.deepEqual(y.data, x.data);
  await sum(y).backward();
  assert.deepEqual([...x.grad!.data], new Array(15).fill(1));
  assert.deepEqual([...(await new Dropout(0, { seed: 1 }).train().forward(x)).data], [...x.data]);
  assert.ok((await new Dropout(1, { seed: 1 }).train().forward(x)).data.every((v) => v === 0));
});

Deno.test("Dropout in train zeroes p of the elements, scales the rest by 1/(1-p), seeded", async () => {
  const p = 0.3, n = 20_000;
  const ones = tensor(new Float32Array(n).fill(1), [n]);
  const dropout = new Dropout(p, { seed: 11 }).train();
  const first = await dropout.forward(ones);
  const zeros = first.data.filter((v) => v === 0).length;
  assert.ok(Math.abs(zeros / n - p) < 0.015, `zero fraction ${zeros / n}`);
  assert.ok(first.data.every((v) => v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6));
  const mean = first.data.reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(mean - 1) < 0.03, `mean ${mean}`);
  const second = await dropout.forward(ones);
  assert.notDeepEqual(second.data, first.data, "each forward draws a new mask");
  const again = await new Dropout(p, { seed: 11 }).train().forward(ones);
  assert.deepEqual(again.data, first.data, "the same seed, the same masks");
  const x = requiresGrad(ones);
  const y = await new Dropout(p, { seed: 11 }).train().forward(x);
  await sum(mul(y, ones)).backward();
  assert.deepEqual(x.grad!.data, first.data, "the gradient is the scaled mask");
});

Deno.test("LastStep picks each sequence's last step; Sequential with lengths matches unpadded runs", async () => {
  const x = requiresGrad(randn([3, 4, 2], { seed: 1 }));
  const lengths = [4, 1, 3];
  const last = await new LastStep().forward(x, lengths);
  assert.deepEqual(last.shape, [3, 2]);
  lengths.forEach((length, b) => {
    const from = (b * 4 + length - 1) * 2;
    assert.deepEqual([...last.data.subarray(b * 2, b * 2 + 2)], [
      ...x.data.subarray(from, from + 2),
    ]);
  });
  await sum(last).backward();
  const picked = [...x.grad!.data].map((v, i) => v === 1 ? i : -1).filter((i) => i >= 0);
  assert.deepEqual(picked, [6, 7, 8, 9, 20, 21]);

  const rows = [[1, 2, 3, 4], [5, 0, 0, 0], [2, 2, 1, 0]];
  for (
    const recurrent of [new GRU(3, 4, { seed: 2 }), new LSTM(3, 4, { backend: "js", seed: 2 })]
  ) {
    const model = new Sequential([
      new Embedding(6, 3, { seed: 1 }),
      recurrent,
      new LastStep(),
      new Linear(4, 2, { seed: 3 }),
    ]);
    const padded = await model.forward(rows, { lengths });
    for (const [b, length] of lengths.entries()) {
      const alone = await model.forward([rows[b].slice(0, length)]);
      assertClose(
        `${recurrent.constructor.name} row ${b}`,
        padded.data.subarray(b * 2, b * 2 + 2),
        alone.data,
      );
    }
    const steps = await new Sequential(model.layers.slice(0, 2)).forward(rows, { lengths });
    assert.ok(
      steps.data.subarray(4 * 4 + 4).every((v, i) => i >= 12 || v === 0),
      "zero past length",
    );
  }
});

Deno.test("Sequential prints its layers with k, shapes and parameter counts", () => {
  const model = new Sequential([
    new Embedding(10, 4, { seed: 1, paddingIdx: 0 }),
    new ArrayLSTM(4, 8, 3, { backend: "js", seed: 2 }),
    new Dropout(0.2),
    new Stacked([new GRU(8, 8, { seed: 3 })]),
    new LastStep(),
    new Linear(8, 3, { seed: 4 }),
    new LogSoftmax(),
  ]);
  const text = model.toString();
  assert.match(text, /^Sequential\(\n {2}\(0\): Embedding\(10, 4, paddingIdx=0\)\n/);
  assert.match(text, /\(1\): ArrayLSTM\(4, 8, k=3, backend="js"\)/);
  assert.match(text, /\(3\): Stacked\(GRU\(8, 8, backend="auto"\)\)/);
  assert.match(text, /\(6\): LogSoftmax\(\)\n\) with [\d,]+ parameters$/);
  const total = model.parameters().reduce((n, p) => n + p.value.data.length, 0);
  assert.ok(text.endsWith(`with ${total.toLocaleString("en-US")} parameters`));
  const summary = model.summary();
  assert.match(summary, /LastStep\(\)\s+\(B, 8\)\s+0/);
  assert.match(summary, /Linear\(8, 3\)\s+\(B, 3\)\s+27/);
  assert.match(summary, /total\s+\(B, 3\)\s+[\d,]+$/);
  assert.match(Deno.inspect(model), /ArrayLSTM\(4, 8, k=3/);
});

Deno.test("Sequential state dicts round-trip and train()/eval() reach every layer", async () => {
  const make = (seed: number) =>
    new Sequential([
      new Embedding(6, 3, { seed }),
      new GRU(3, 4, { seed: seed + 1 }),
      new Dropout(0.5),
      new Linear(4, 6, { seed: seed + 2 }),
    ]);
  const a = make(1), b = make(10);
  b.loadStateDict(a.stateDict());
  assert.deepEqual((await b.forward(IDS)).data, (await a.forward(IDS)).data);
  assert.ok(a.train().layers.every((layer) => layer.training));
  assert.ok(a.eval().layers.every((layer) => !layer.training));
  assert.throws(() => b.loadStateDict({}), /missing "0.weight"/);
});

Deno.test("bad layers are refused naming the index and what was given", async () => {
  const lstm = new LSTM(3, 4, { backend: "js" });
  const cases: [unknown[], RegExp][] = [
    [[lstm, {}], /layers\[1\] must be a layer \(.*\), got a plain object/],
    [
      [LSTM],
      /layers\[0\] must be a layer .*got the class LSTM \(not an instance: new LSTM\(\.\.\.\)\)/,
    ],
    [[lstm, 3], /layers\[1\] must be a layer .*got number 3/],
    [[lstm, null], /layers\[1\] must be a layer .*got null/],
    [[lstm, new Embedding(4, 3)], /layers\[1\] is an Embedding: .* must be layers\[0\]/],
    [
      [lstm, new Linear(5, 2)],
      /layers\[1\]\.inFeatures must be the 4 features that layers\[0\] \(LSTM\(3, 4, backend="js"\)\) gives, got 5/,
    ],
    [[new Embedding(6, 5), lstm], /layers\[1\]\.inputSize must be the 5 features .*got 3/],
    [
      [lstm, new LastStep(), new GRU(4, 2)],
      /layers\[2\] \(GRU\(4, 2, backend="auto"\)\) reads steps .*put it before the LastStep/,
    ],
  ];
  for (const [layers, message] of cases) {
    assert.throws(() => new Sequential(layers as LSTM[]), message);
  }
  assert.throws(() => new Sequential([]), /layers must be a non-empty array of layers/);
  assert.throws(
    () => new Stacked([lstm, new Linear(4, 2) as unknown as LSTM]),
    /layers\[1\] must be a recurrent layer .*got a Linear; Sequential composes other layers/,
  );
  await assert.rejects(
    () => new Sequential([lstm]).forward(IDS),
    /x must be a tensor of features, got an array of 2: token ids need an Embedding/,
  );
  await assert.rejects(
    () => new Sequential([new Embedding(6, 3), lstm]).forward(IDS, { lengths: [4, 5] }),
    /lengths\[1\] must be an integer in \[1, seqLen = 4\]/,
  );
  const bi = new Sequential([new Bidirectional(new GRU(3, 2), new GRU(3, 2))]);
  const x: Tensor = randn([2, 3, 3], { seed: 1 });
  assert.deepEqual((await bi.forward(x, { lengths: [3, 3] })).shape, [2, 3, 4]);
  await assert.rejects(
    () => bi.forward(x, { lengths: [3, 1] }),
    /layers\[0\] \(Bidirectional.*reads steps backward/,
  );
});
