/** Gradient saliency against finite differences, integrated gradients' completeness, errors. */

import assert from "node:assert/strict";
import { Bidirectional, Linear, lrp, LSTM, randn, saliency, Stacked } from "../mod.ts";

Deno.test("saliency: the gradient matches central differences, and the scores match lrp's", async () => {
  const model = new Bidirectional(
    new LSTM(3, 4, { backend: "js", seed: 1 }),
    new LSTM(3, 4, { backend: "js", seed: 2 }),
  );
  const head = new Linear(8, 3, { seed: 3 });
  const x = randn([2, 4, 3], { seed: 4 });
  const { saliency: grad, scores, target } = await saliency(model, head, x, { target: [2, 0] });
  const explained = await lrp(model, head, x, { target: [2, 0] });
  scores.data.forEach((s, i) => assert.ok(Math.abs(s - explained.scores.data[i]) < 1e-5));
  const h = 1e-2;
  for (const i of [0, 5, 13, 23]) {
    const at = async (delta: number) => {
      const data = x.data.slice();
      data[i] += delta;
      const out = (await saliency(model, head, { shape: x.shape, data }, { target })).scores;
      const b = Math.floor(i / 12);
      return out.data[b * 3 + target[b]];
    };
    const numeric = (await at(h) - await at(-h)) / (2 * h);
    assert.ok(Math.abs(grad.data[i] - numeric) < 1e-3, `x #${i}: ${grad.data[i]} vs ${numeric}`);
  }
  const times = await saliency(model, head, x, { target: [2, 0], method: "gradientXInput" });
  times.saliency.data.forEach((v, i) => assert.ok(Math.abs(v - grad.data[i] * x.data[i]) < 1e-6));
});

Deno.test("saliency: integrated gradients sum to about score(x) − score(0)", async () => {
  const model = new Stacked([
    new LSTM(3, 4, { backend: "js", seed: 1 }),
    new LSTM(4, 4, { backend: "js", seed: 2 }),
  ]);
  const head = new Linear(4, 2, { seed: 3 });
  const x = randn([1, 4, 3], { seed: 4 });
  const { saliency: ig, scores, target } = await saliency(model, head, x, {
    method: "integratedGradients",
    steps: 200,
  });
  const zero = await saliency(model, head, { shape: x.shape, data: new Float32Array(12) }, {
    target,
  });
  const total = ig.data.reduce((a, b) => a + b, 0);
  const expected = scores.data[target[0]] - zero.scores.data[target[0]];
  assert.ok(
    Math.abs(total - expected) < 0.02 * Math.abs(expected) + 1e-3,
    `${total} vs ${expected}`,
  );
  assert.equal(model.training, false);
});

Deno.test("saliency rejects bad options", async () => {
  const model = new LSTM(3, 4, { backend: "js", seed: 1 });
  const head = new Linear(4, 2, { seed: 3 });
  const x = randn([1, 4, 3], { seed: 4 });
  await assert.rejects(() => saliency(model, head, x, { target: 5 }), /class in \[0, 2\).*got 5/);
  await assert.rejects(
    () => saliency(model, head, x, { method: "smooth" as never }),
    /options.method must be/,
  );
  await assert.rejects(() => saliency(model, head, x, { steps: 0 }), /options.steps/);
});
