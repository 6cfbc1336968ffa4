/**
 * Linear, Embedding, the functional ops and the losses: gradients against central finite
 * differences, PyTorch's values, and the errors of the backward tape.
 */

import assert from "node:assert/strict";
import {
  add,
  crossEntropy,
  Embedding,
  Linear,
  logSoftmax,
  mseLoss,
  mul,
  nllLoss,
  randn,
  requiresGrad,
  reshape,
  softmax,
  sum,
  tanh,
  type Tensor,
  tensor,
  type TrackedTensor,
} from "../mod.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

/** A random weighting, so that every output entry matters to the scalar. */
function weighted(value: Tensor, seed: number): TrackedTensor {
  return sum(mul(value, randn([...value.shape], { seed })));
}

/**
 * Compares `analytic` with central differences of `loss()` in each entry of `data` (changed in
 * place and restored; float32 arithmetic, hence the step and tolerance).
 */
async function assertFiniteDifferences(
  name: string,
  data: Float32Array,
  analytic: ArrayLike<number>,
  loss: () => Promise<number>,
): Promise<void> {
  const numeric = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const original = data[i];
    const step = 1e-2;
    data[i] = original + step;
    const up = await loss();
    data[i] = original - step;
    const down = await loss();
    data[i] = original;
    numeric[i] = (up - down) / (2 * step);
  }
  assertClose(
    analytic,
    numeric,
    TOLERANCE.float32FiniteDifference,
    `${name} against finite differences`,
  );
}

for (const shape of [[3, 4], [2, 3, 4]]) {
  Deno.test(`Linear gradients match finite differences for input ${JSON.stringify(shape)}`, async () => {
    const linear = new Linear(4, 5, { seed: 1 }).train();
    const x = requiresGrad(randn(shape, { seed: 2 }));
    const run = async () => weighted(await linear.forward(x), 3);
    const loss = await run();
    assert.deepEqual((await linear.forward(x)).shape, [...shape.slice(0, -1), 5]);
    await loss.backward();
    const value = async () => (await run()).data[0];
    const [weight, bias] = linear.parameters();
    await assertFiniteDifferences("weight", weight.value.data, weight.grad!.data, value);
    await assertFiniteDifferences("bias", bias.value.data, bias.grad!.data, value);
    await assertFiniteDifferences("x", x.data, x.grad!.data, value);
  });
}

Deno.test("Embedding gradients match finite differences; the padding row gets none", async () => {
  const embedding = new Embedding(6, 3, { seed: 1, paddingIdx: 5 }).train();
  const ids = [[0, 2, 2, 5], [5, 1, 0, 3]];
  const [weight] = embedding.parameters();
  assert.deepEqual([...weight.value.data.subarray(15, 18)], [0, 0, 0]);
  const run = async () => weighted(await embedding.forward(ids), 4);
  await (await run()).backward();
  const grad = weight.grad!.data;
  assert.deepEqual([...grad.subarray(15, 18)], [0, 0, 0]);
  assert.deepEqual([...grad.subarray(12, 15)], [0, 0, 0]); // id 4 is not used
  // Rows 0-4 only: the padding row's finite difference is not zero (it is frozen, not constant).
  await assertFiniteDifferences(
    "weight",
    weight.value.data.subarray(0, 15),
    grad.subarray(0, 15),
    async () => (await run()).data[0],
  );
});

Deno.test("Embedding takes rows, flat lists, Int32Array and tensors of ids", async () => {
  const embedding = new Embedding(4, 2, { seed: 1 });
  const rows = await embedding.forward([[1, 2], [3, 0]]);
  assert.deepEqual(rows.shape, [2, 2, 2]);
  assert.deepEqual((await embedding.forward([1, 2, 3, 0])).data, rows.data);
  assert.deepEqual((await embedding.forward(new Int32Array([1, 2, 3, 0]))).data, rows.data);
  assert.deepEqual((await embedding.forward(tensor([1, 2, 3, 0], [2, 2]))).data, rows.data);
  await assert.rejects(
    () => embedding.forward([[1, 4]]),
    /ids\[1\] \(flat index\) must be an integer in \[0, 4\), got 4/,
  );
  await assert.rejects(() => embedding.forward([[1, 2], [3]]), /ids must be rows of equal length/);
});

const functional: [string, (x: Tensor) => TrackedTensor][] = [
  ["softmax", softmax],
  ["logSoftmax", logSoftmax],
  ["reshape", (x) => reshape(x, [-1, 2])],
  ["tanh", tanh],
];
for (const [name, op] of functional) {
  Deno.test(`${name} gradients match finite differences`, async () => {
    const x = requiresGrad(randn([3, 4], { seed: 5 }));
    await weighted(op(x), 6).backward();
    await assertFiniteDifferences(
      "x",
      x.data,
      x.grad!.data,
      () => Promise.resolve(weighted(op(x), 6).data[0]),
    );
  });
}

Deno.test("softmax and logSoftmax match PyTorch's values and stay finite on large logits", () => {
  const x = tensor([1, 2, 3, 1000, 0, -1000], [2, 3]);
  const expected = [0.09003057, 0.24472847, 0.66524096, 1, 0, 0];
  softmax(x).data.forEach((value, i) => assert.ok(Math.abs(value - expected[i]) < 1e-7));
  const logp = logSoftmax(x).data;
  assert.ok(Math.abs(logp[0] - -2.40760596) < 1e-6);
  assert.equal(logp[5], -2000);
});

const losses: [string, (x: Tensor) => TrackedTensor][] = [
  ["nllLoss mean", (x) => nllLoss(x, [1, 0, 3])],
  ["nllLoss sum", (x) => nllLoss(x, new Int32Array([1, 0, 3]), { reduction: "sum" })],
  ["nllLoss none", (x) => weighted(nllLoss(x, [1, 0, 3], { reduction: "none" }), 9)],
  ["nllLoss ignoreIndex", (x) => nllLoss(x, [1, -100, 3])],
  ["crossEntropy", (x) => crossEntropy(x, tensor([2, 0, 1], [3]))],
  ["mseLoss mean", (x) => mseLoss(x, randn([3, 4], { seed: 8 }))],
  ["mseLoss sum", (x) => mseLoss(x, randn([3, 4], { seed: 8 }), { reduction: "sum" })],
  [
    "mseLoss none",
    (x) => weighted(mseLoss(x, randn([3, 4], { seed: 8 }), { reduction: "none" }), 9),
  ],
];
for (const [name, loss] of losses) {
  Deno.test(`${name} gradients match finite differences`, async () => {
    const x = requiresGrad(randn([3, 4], { seed: 7 }));
    await loss(x).backward();
    await assertFiniteDifferences(
      "x",
      x.data,
      x.grad!.data,
      () => Promise.resolve(loss(x).data[0]),
    );
  });
}

Deno.test("nllLoss: the mean is over the targets not ignored, as PyTorch's", () => {
  const logp = tensor([-1, -2, -3, -4, -5, -6], [3, 2]);
  assert.equal(nllLoss(logp, [0, 1, 0]).data[0], Math.fround((1 + 4 + 5) / 3));
  assert.equal(nllLoss(logp, [0, -100, 0]).data[0], 3);
  assert.equal(nllLoss(logp, [0, 7, 0], { ignoreIndex: 7, reduction: "sum" }).data[0], 6);
  assert.deepEqual([...nllLoss(logp, [0, -100, 1], { reduction: "none" }).data], [1, 0, 6]);
});

Deno.test("crossEntropy takes (B, T, V) logits with (B, T) targets", async () => {
  const logits = requiresGrad(randn([2, 3, 5], { seed: 1 }));
  const targets = [[1, 2, 3], [4, 0, -100]];
  const loss = crossEntropy(logits, tensor(targets.flat(), [2, 3]));
  const flat = crossEntropy(reshape(logits.detach(), [6, 5]), targets.flat());
  assert.equal(loss.data[0], flat.data[0]);
  await loss.backward();
  assert.deepEqual([...logits.grad!.data.subarray(25, 30)], [0, 0, 0, 0, 0]); // ignored step
});

Deno.test("losses reject class ids out of range and targets that do not fit the batch", () => {
  const logp = logSoftmax(tensor([0, 0, 0, 0], [2, 2]));
  assert.throws(
    () => nllLoss(logp, [0, 2]),
    /targets\[1\] must be a class id in \[0, 2\) or ignoreIndex -100, got 2/,
  );
  assert.throws(() => nllLoss(logp, [0.5, 1]), /targets\[0\] must be a class id/);
  assert.throws(
    () => nllLoss(logp, [0, 1, 1]),
    /targets must hold one class id per row of input \(2 for input shape \[2, 2\]\), got 3/,
  );
  assert.throws(
    () => nllLoss(logp, tensor([0, 1], [1, 2])),
    /targets must have the shape of input without its last axis, \[2\], got \[1, 2\]/,
  );
  assert.throws(() => nllLoss(tensor([0, 0], [2]), [0]), /input must be \(batch, classes\)/);
  assert.throws(
    () => nllLoss(logp, [0, 1], { reduction: "avg" as "mean" }),
    /options\.reduction must be "mean", "sum" or "none", got "avg"/,
  );
  assert.throws(
    () => mseLoss(logp, tensor([0], [1])),
    /target must have the shape of input, \[2, 2\], got \[1\]/,
  );
});

Deno.test("backward() rejects a non-scalar, a tensor without history, and a second pass", async () => {
  const linear = new Linear(2, 2, { seed: 1 }).train();
  const y = await linear.forward(tensor([1, 2], [1, 2]));
  await assert.rejects(
    () => y.backward(),
    /backward\(\) needs a scalar \(one element\), got shape \[1, 2\]/,
  );
  const frozen = await new Linear(2, 2, { seed: 1 }).forward(tensor([1, 2], [1, 2]));
  await assert.rejects(
    () => sum(frozen).backward(),
    /backward\(\) needs a tensor with history.*call train\(\)/,
  );
  const loss = sum(y);
  await loss.backward();
  await assert.rejects(() => loss.backward(), /backward\(\) through the same graph a second time/);
});

Deno.test("gradients accumulate over backward() calls, as PyTorch's", async () => {
  const linear = new Linear(2, 1, { seed: 1 }).train();
  const x = tensor([1, 2], [1, 2]);
  await sum(await linear.forward(x)).backward();
  const once = linear.parameters()[0].grad!.data.slice();
  await sum(await linear.forward(x)).backward();
  assert.deepEqual([...linear.parameters()[0].grad!.data], [...once].map((v) => 2 * v));
});

Deno.test("a tensor used twice gets the sum of both gradients; detach() stops them", async () => {
  const x = requiresGrad(tensor([3], [1]));
  await add(mul(x, x), x.detach()).backward();
  assert.deepEqual([...x.grad!.data], [6]);
});

Deno.test("an eval() layer passes gradients to its input but fills no grad of its own", async () => {
  const linear = new Linear(2, 1, { seed: 1 });
  const x = requiresGrad(tensor([1, 2], [1, 2]));
  await sum(await linear.forward(x)).backward();
  assert.deepEqual(x.grad!.data, linear.parameters()[0].value.data);
  assert.equal(linear.parameters()[0].grad, null);
});

Deno.test("Linear and Embedding initialise like PyTorch and load state dicts in place", () => {
  const linear = new Linear(16, 3, { seed: 1 });
  const [weight, bias] = linear.parameters();
  assert.ok(weight.value.data.every((v) => Math.abs(v) <= 0.25));
  assert.deepEqual(bias.value.shape, [3]);
  linear.loadStateDict({
    weight: tensor(new Float32Array(48), [3, 16]),
    bias: tensor([1, 2, 3], [3]),
  });
  assert.equal(linear.parameters()[1], bias);
  assert.deepEqual([...bias.value.data], [1, 2, 3]);
  assert.equal(new Linear(2, 2, { bias: false }).parameters().length, 1);
  assert.throws(() => new Linear(0, 2), /inFeatures must be a positive integer, got 0/);
  assert.throws(
    () => new Embedding(3, 2, { paddingIdx: 3 }),
    /options\.paddingIdx must be an integer in \[-3, 3\), got 3/,
  );
  const table = new Embedding(1000, 8, { seed: 1 }).parameters()[0].value.data;
  const mean = table.reduce((a, b) => a + b, 0) / table.length;
  const variance = table.reduce((a, b) => a + (b - mean) ** 2, 0) / table.length;
  assert.ok(
    Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05,
    `N(0, 1): ${mean}, ${variance}`,
  );
});

Deno.test("Linear rejects an input whose last axis is not inFeatures", async () => {
  await assert.rejects(
    () => new Linear(3, 2).forward(tensor([1, 2], [1, 2])),
    /x must be \(\.\.\., inFeatures\) = \(\.\.\., 3\), got shape \[1, 2\]/,
  );
});
