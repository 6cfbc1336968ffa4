/**
 * Training the recurrent models: stable parameters, train()/eval(), re-packing after a step,
 * training and inference agreeing, truncated BPTT with detach(), hook subclasses, on js and wasm.
 */

import assert from "node:assert/strict";
import {
  Adam,
  ArrayLSTM,
  AttentionArrayLSTM,
  LSTM,
  mseLoss,
  mul,
  randn,
  type RecurrentState,
  requiresGrad,
  StochasticArrayLSTM,
  sum,
  type Tensor,
  zeros,
} from "../mod.ts";
import type { ResolvedBackendName } from "../src/contract/mod.ts";
import { CPU_BACKENDS } from "./_backends.ts";

function models(backend: ResolvedBackendName): LSTM[] {
  return [
    new LSTM(3, 4, { backend, seed: 1 }),
    new ArrayLSTM(3, 4, 2, { backend, seed: 2 }),
    new AttentionArrayLSTM(3, 4, 3, { backend, seed: 3 }),
    new AttentionArrayLSTM(3, 4, 2, { backend, seed: 4, maxPooling: true }),
    new StochasticArrayLSTM(3, 4, 3, { backend, seed: 5 }),
  ];
}

Deno.test("parameters() gives the same objects, named as stateDict, and loadStateDict keeps them", () => {
  const model = new AttentionArrayLSTM(3, 4, 2, { backend: "js", seed: 1 });
  const params = model.parameters();
  assert.deepEqual(params.map((p) => p.name), Object.keys(model.stateDict()));
  assert.deepEqual(params.map((p) => p.backend), params.map(() => "js"));
  model.loadStateDict(new AttentionArrayLSTM(3, 4, 2, { seed: 9 }).stateDict());
  const again = model.parameters();
  params.forEach((p, i) => assert.equal(again[i], p));
  assert.deepEqual(params[0].value.data, model.stateDict()["i2h.weight"].data);
});

Deno.test("inference records nothing: training is false by default and results carry no history", async () => {
  const model = new LSTM(3, 4, { backend: "js", seed: 1 });
  assert.equal(model.training, false);
  const { output, hidden, state } = await model.forward(randn([2, 3, 3], { seed: 1 }));
  assert.deepEqual([output.requiresGrad, hidden.requiresGrad, state.requiresGrad], [
    false,
    false,
    false,
  ]);
  await assert.rejects(() => sum(output).backward(), /backward\(\) needs a tensor with history/);
  assert.equal(model.train().training, true);
  assert.equal(model.eval().training, false);
});

for (const backend of CPU_BACKENDS) {
  Deno.test(`training and inference agree on the same weights, and a step re-packs (${backend})`, async () => {
    const x = randn([2, 5, 3], { seed: 7 });
    const copies = models(backend);
    for (const [i, model] of models(backend).entries()) {
      using _ = model;
      using copy = copies[i];
      const inference = await model.forward(x);
      model.train();
      const training = await model.forward(x);
      assert.deepEqual(training.output.data, inference.output.data);
      assert.deepEqual(training.state.data, inference.state.data);
      const opt = new Adam(model.parameters(), { lr: 0.05 });
      await mseLoss(training.output, zeros(training.output.shape)).backward();
      opt.step();
      const after = await model.forward(x);
      assert.notDeepEqual(after.output.data, training.output.data);
      // The re-packed runner computes what a fresh model with the new weights computes.
      copy.loadStateDict(model.stateDict());
      assert.deepEqual((await copy.forward(x)).output.data, after.output.data);
    }
  });
}

/** Σ output·R over a sequence model's outputs, a loss with a gradient everywhere. */
function weightedLoss(output: Tensor, seed: number) {
  return sum(mul(output, randn([...output.shape], { seed })));
}

Deno.test("truncated BPTT: detach() stops the gradient at the batch boundary", async () => {
  for (const model of models("js")) {
    model.train();
    const x = randn([2, 6, 3], { seed: 3 });
    const split = (from: number) => ({
      shape: [2, 3, 3],
      data: Float32Array.from({ length: 18 }, (_, i) => {
        const [b, t, f] = [Math.floor(i / 9), Math.floor(i / 3) % 3, i % 3];
        return x.data[(b * 6 + from + t) * 3 + f];
      }),
    });
    const [first, second] = [split(0), split(3)];
    const gradsOf = () => model.parameters().map((p) => p.grad!.data.slice());
    const zeroGrad = () => model.parameters().forEach((p) => (p.grad = null));

    // Whole sequence in one graph vs two halves chained without detach: the same gradients.
    const whole = await model.forward(x);
    await weightedLoss(whole.state, 11).backward();
    const full = gradsOf();
    zeroGrad();
    const a = await model.forward(first);
    const b = await model.forward(second, { hidden: a.hidden, state: a.state });
    await weightedLoss(b.state, 11).backward();
    gradsOf().forEach((g, i) => g.forEach((v, j) => assert.ok(Math.abs(v - full[i][j]) < 1e-4)));

    // With detach: exactly the gradients of the second half from a plain initial state.
    zeroGrad();
    const c = await model.forward(first);
    const d = await model.forward(second, { hidden: c.hidden.detach(), state: c.state.detach() });
    await weightedLoss(d.state, 11).backward();
    const truncated = gradsOf();
    zeroGrad();
    const plain = {
      hidden: { shape: c.hidden.shape, data: c.hidden.data },
      state: { shape: c.state.shape, data: c.state.data },
    };
    await weightedLoss((await model.forward(second, plain)).state, 11).backward();
    assert.deepEqual(truncated, gradsOf());
  }
});

Deno.test("an eval() model passes gradients to x and the initial state, not to its parameters", async () => {
  const model = new ArrayLSTM(3, 4, 2, { backend: "js", seed: 1 });
  const x = requiresGrad(randn([2, 3, 3], { seed: 1 }));
  const hidden = requiresGrad(zeros([1, 2, 4]));
  const { output } = await model.forward(x, { hidden, state: zeros([2, 2, 4]) });
  await weightedLoss(output, 2).backward();
  assert.ok(x.grad!.data.some((v) => v !== 0) && hidden.grad!.data.some((v) => v !== 0));
  assert.ok(model.parameters().every((p) => p.grad === null));
});

Deno.test("training a hook computed on raw arrays is a clear error; inference still works", async () => {
  class Doubled extends ArrayLSTM {
    override updateHidden(outputs: Tensor, states: Tensor): Tensor {
      const hidden = super.updateHidden(outputs, states);
      return { shape: hidden.shape, data: hidden.data.map((v) => 2 * v) };
    }
  }
  const model = new Doubled(3, 4, 2, { backend: "js", seed: 1 });
  const x = randn([1, 2, 3], { seed: 1 });
  assert.equal((await model.forward(x)).output.requiresGrad, false);
  model.train();
  await assert.rejects(
    () => model.forward(x),
    /Doubled\.updateHidden\(outputs, states\) returned a tensor without history while recording/,
  );
});

Deno.test("a subclass that overrides only initHidden trains on the fused path", async () => {
  class WarmStart extends ArrayLSTM {
    override initHidden(x: Tensor): RecurrentState {
      const [batch] = x.shape;
      return {
        hidden: { shape: [1, batch, 4], data: new Float32Array(batch * 4).fill(0.5) },
        state: { shape: [2, batch, 4], data: new Float32Array(2 * batch * 4).fill(-0.25) },
      };
    }
  }
  const x = randn([2, 3, 3], { seed: 4 });
  const gradientsOf = async (model: ArrayLSTM, init?: RecurrentState) => {
    model.train();
    const { output } = await model.forward(x, init);
    await mseLoss(output, zeros(output.shape)).backward();
    return model.parameters().map((p) => Array.from(p.grad!.data));
  };
  for (const backend of CPU_BACKENDS) {
    const warm = new WarmStart(3, 4, 2, { backend, seed: 1 });
    const plain = new ArrayLSTM(3, 4, 2, { backend, seed: 1 });
    const expected = await gradientsOf(plain, warm.initHidden(x));
    assert.deepEqual(await gradientsOf(warm), expected, backend);
    warm.dispose();
    plain.dispose();
  }
});
