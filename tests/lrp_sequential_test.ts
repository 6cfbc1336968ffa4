/**
 * `lrp` of a Sequential against `lrp(network, dense, x)` on the same weights: features and token
 * ids, Dropout as the identity, a Bidirectional before the LastStep read as the model computes it.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  Bidirectional,
  Dropout,
  Embedding,
  GRU,
  LastStep,
  Linear,
  lrp,
  LSTM,
  randn,
  ReLU,
  Sequential,
  Softmax,
  Stacked,
} from "../mod.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

const js = { backend: "js" } as const;

Deno.test("lrp of Sequential(LSTM, LastStep, Linear) is lrp(lstm, dense, x)", async () => {
  const lstm = new ArrayLSTM(3, 4, 2, { ...js, seed: 1 });
  const dense = new Linear(4, 3, { seed: 2 });
  const model = new Sequential([lstm, new Dropout(0.3), new LastStep(), new Dropout(0.1), dense]);
  const x = randn([2, 5, 3], { seed: 3 });
  for (const options of [{}, { biasFactor: 1, target: [2, 0] }]) {
    assert.deepEqual(await lrp(model, x, options), await lrp(lstm, dense, x, options));
  }
});

Deno.test("lrp of a Sequential with an Embedding gives each token its vector's relevance", async () => {
  const embedding = new Embedding(9, 3, { seed: 1, paddingIdx: 0 });
  const stack = new Stacked([
    new Bidirectional(new LSTM(3, 4, { ...js, seed: 2 }), new LSTM(3, 4, { ...js, seed: 3 })),
    new LSTM(8, 5, { ...js, seed: 4 }),
  ]);
  const dense = new Linear(5, 2, { seed: 5 });
  const model = new Sequential([
    embedding,
    stack,
    new LastStep(),
    dense,
    new Softmax(),
  ]).train(); // Dropout-free, and training mode changes nothing
  const ids = [[1, 4, 8, 2], [3, 3, 5, 7]];
  const got = await lrp(model, ids, { biasFactor: 1 });
  const want = await lrp(stack, dense, await embedding.forward(ids), { biasFactor: 1 });
  assert.deepEqual([got.scores, got.rest, got.target], [want.scores, want.rest, want.target]);
  assert.deepEqual(got.relevance.shape, [2, 4]);
  const perToken = Array.from(
    { length: 8 },
    (_, i) => want.relevance.data.subarray(i * 3, i * 3 + 3).reduce((a, b) => a + b, 0),
  );
  assertClose(got.relevance.data, perToken, TOLERANCE.float32, "relevance per token");
});

Deno.test("a Bidirectional before the LastStep is explained as the model computes it", async () => {
  const model = new Sequential([
    new Bidirectional(new LSTM(3, 4, { ...js, seed: 1 }), new LSTM(3, 4, { ...js, seed: 2 })),
    new LastStep(),
    new Linear(8, 2, { seed: 3 }),
  ]);
  const x = randn([2, 5, 3], { seed: 4 });
  const { relevance, rest, scores, target } = await lrp(model, x, { biasFactor: 1 });
  assertClose(scores.data, (await model.forward(x)).data, TOLERANCE.float32, "scores");
  for (let b = 0; b < 2; b++) {
    const total = relevance.data.subarray(b * 15, b * 15 + 15).reduce((a, c) => a + c, 0);
    assert.ok(Math.abs(total + rest.data[b] - scores.data[b * 2 + target[b]]) < 1e-5);
  }
});

Deno.test("lrp names the layer of a Sequential it has no rule for", async () => {
  const x = randn([1, 2, 3], { seed: 1 });
  const lstm = () => new LSTM(3, 4, { ...js, seed: 1 });
  await assert.rejects(
    () => lrp(new Sequential([lstm(), new LastStep(), new Linear(4, 2), new ReLU()]), x),
    /model\.layers\[3\] \(ReLU\(\)\) is where the scores' Linear must be/,
  );
  await assert.rejects(
    () => lrp(new Sequential([lstm(), new Linear(4, 4), new LastStep(), new Linear(4, 2)]), x),
    /model\.layers\[1\] \(Linear\(4, 4\)\) has no LRP rule: lrp explains a Sequential/,
  );
  await assert.rejects(
    () => lrp(new Sequential([lstm(), new Linear(4, 2)]), x),
    /is where the LastStep before the Linear must be/,
  );
  await assert.rejects(
    () => lrp(new Sequential([new GRU(3, 4), new LastStep(), new Linear(4, 2)]), x),
    /model\.layers\[0\] has no LRP rule: .* got GRU/,
  );
});
