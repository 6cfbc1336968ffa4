/**
 * Issue 21: non-finite values never poison weights silently. One NaN in the input of a training
 * step makes every optimizer refuse the step (naming a parameter) or skip it, on every backend,
 * before any weight or optimizer state changes; `clipGradNorm` follows torch's
 * `error_if_nonfinite`; `fit` stops with the epoch and the step and keeps the last checkpoint.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Adam,
  AdamW,
  checkpointBest,
  clipGradNorm,
  fit,
  Linear,
  LSTM,
  mseLoss,
  type Optimizer,
  Parameter,
  Sequential,
  SGD,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import type { ResolvedBackendName } from "../src/contract/mod.ts";
import { record } from "../src/nn/tape.ts";
import { AVAILABLE_BACKENDS } from "./_backends.ts";

type MakeOptimizer = (params: Parameter[], nonfinite: "error" | "skip") => Optimizer;

const OPTIMIZERS: Record<string, MakeOptimizer> = {
  SGD: (params, nonfinite) => new SGD(params, { lr: 0.1, momentum: 0.9, nonfinite }),
  Adam: (params, nonfinite) => new Adam(params, { lr: 0.01, nonfinite }),
  AdamW: (params, nonfinite) => new AdamW(params, { lr: 0.01, amsgrad: true, nonfinite }),
};

const GOOD = tensor([0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8], [2, 2, 2]);
const POISONED = tensor([0.1, -0.2, 0.3, NaN, -0.5, 0.6, 0.7, -0.8], [2, 2, 2]);

/** Every parameter's value and the optimizer's state, read back (synced) as plain arrays. */
async function snapshot(lstm: LSTM, opt: Optimizer): Promise<string> {
  await opt.sync();
  const values = lstm.parameters().map((p) => [...p.value.data]);
  const state = opt.stateDict().state.map((entry) =>
    entry === null ? null : Object.fromEntries(
      Object.entries(entry).map(([name, v]) => [name, typeof v === "number" ? v : [...v.data]]),
    )
  );
  return JSON.stringify({ values, state });
}

async function trainingStep(lstm: LSTM, opt: Optimizer, x: Tensor): Promise<boolean> {
  opt.zeroGrad();
  await sum((await lstm.forward(x)).output).backward();
  return opt.step();
}

for (const backend of AVAILABLE_BACKENDS as ResolvedBackendName[]) {
  for (const [name, make] of Object.entries(OPTIMIZERS)) {
    Deno.test(`${backend}: ${name} refuses a NaN gradient, naming the parameter, all or nothing`, async () => {
      using lstm = new LSTM(2, 3, { backend, seed: 1 }).train();
      using opt = make(lstm.parameters(), "error");
      assert.equal(await trainingStep(lstm, opt, GOOD), true); // state exists, on the device too
      const before = await snapshot(lstm, opt);
      await assert.rejects(
        trainingStep(lstm, opt, POISONED),
        /step\(\) refused a non-finite gradient: the gradient of params\[\d\] \("[a-z0-9.]+"\) is not finite/,
      );
      assert.equal(await snapshot(lstm, opt), before);
      // Training goes on from there.
      assert.equal(await trainingStep(lstm, opt, GOOD), true);
      assert.notEqual(await snapshot(lstm, opt), before);
    });

    Deno.test(`${backend}: ${name} with nonfinite "skip" skips the step and counts it`, async () => {
      using lstm = new LSTM(2, 3, { backend, seed: 2 }).train();
      using opt = make(lstm.parameters(), "skip");
      await trainingStep(lstm, opt, GOOD);
      const before = await snapshot(lstm, opt);
      assert.equal(await trainingStep(lstm, opt, POISONED), false);
      assert.equal(opt.skippedSteps, 1);
      assert.equal(await snapshot(lstm, opt), before);
      assert.equal(await trainingStep(lstm, opt, GOOD), true);
      assert.equal(opt.skippedSteps, 1);
    });
  }

  Deno.test(`${backend}: clipGradNorm with errorIfNonfinite throws, naming the parameter`, async () => {
    using lstm = new LSTM(2, 3, { backend, seed: 3 }).train();
    const opt = new SGD(lstm.parameters(), { lr: 0.1 });
    opt.zeroGrad();
    await sum((await lstm.forward(POISONED)).output).backward();
    assert.throws(
      () => clipGradNorm(lstm.parameters(), 1, { errorIfNonfinite: true }),
      /total norm of the gradients is NaN, so it cannot be clipped: the gradient of params\[\d\]/,
    );
    // Without it, the NaN norm is returned, as torch does, and the step is still refused.
    assert.ok(Number.isNaN(clipGradNorm(lstm.parameters(), 1)));
    assert.throws(() => opt.step(), /non-finite gradient/);
  });
}

Deno.test("clipGradNorm with an infinite gradient: torch's semantics, then the step refuses it", () => {
  const p = new Parameter("w", tensor([1, 1, 1], [3]));
  const q = new Parameter("v", tensor([1], [1]));
  p.grad = tensor([1, Infinity, -2], [3]);
  q.grad = tensor([3], [1]);
  assert.throws(
    () => clipGradNorm([q, p], 1, { errorIfNonfinite: true }),
    /params\[1\] \("w"\) is not \(element 1 of 3 is Infinity\)/,
  );
  assert.deepEqual([...p.grad!.data], [1, Infinity, -2]); // nothing scaled
  // torch: clip_coef = 1 / (inf + 1e-6) = 0, grads *= 0: finite entries 0, inf·0 = NaN.
  assert.equal(clipGradNorm([q, p], 1), Infinity);
  assert.deepEqual([...p.grad!.data], [0, NaN, -0]);
  assert.deepEqual([...q.grad!.data], [0]);
  const sgd = new SGD([q, p], { lr: 1 });
  assert.throws(() => sgd.step(), /params\[1\] \("w"\) is not finite \(element 1 of 3 is NaN\)/);
  assert.deepEqual([...p.value.data], [1, 1, 1]);
  assert.deepEqual([...q.value.data], [1]);
  // A NaN norm scales by NaN, as torch's clamp(NaN, max=1) does.
  p.grad = tensor([NaN, 1, 1], [3]);
  q.grad = tensor([1], [1]);
  assert.ok(Number.isNaN(clipGradNorm([q, p], 1)));
  assert.ok(Number.isNaN(q.grad!.data[0]));
});

Deno.test("optimizers check the nonfinite option", () => {
  const p = new Parameter("w", tensor([1], [1]));
  assert.throws(
    () => new SGD([p], { nonfinite: "ignore" as "skip" }),
    /options\.nonfinite must be "error" or "skip", got "ignore"/,
  );
  assert.equal(new Adam([p]).nonfinite, "error");
  assert.equal(new AdamW([p], { nonfinite: "skip" }).nonfinite, "skip");
  // The option is not a hyper-parameter: stateDict() is as before.
  assert.deepEqual(Object.keys(new SGD([p], { nonfinite: "skip" }).stateDict().options), [
    "lr",
    "momentum",
    "dampening",
    "nesterov",
    "weightDecay",
  ]);
});

/** A loss that turns NaN from its `poisonAt`-th call on (counted from 0). */
function poisonedLoss(poisonAt: number) {
  let calls = 0;
  return (output: Tensor, targets: unknown) => {
    const loss = mseLoss(output, targets as Tensor);
    if (calls++ < poisonAt) return loss;
    return mseLoss(output, { shape: output.shape, data: output.data.map(() => NaN) });
  };
}

Deno.test("fit stops on a NaN loss naming the epoch and the step; the checkpoint stays good", async () => {
  const model = new Sequential([new Linear(2, 1, { seed: 1 })]);
  const data = [{ inputs: tensor([1, 2, 3, 4], [2, 2]), targets: tensor([1, 0], [2, 1]) }];
  const saved: string[] = [];
  const weights = () => JSON.stringify(model.parameters().map((p) => [...p.value.data]));
  await assert.rejects(
    fit(model, data, {
      loss: poisonedLoss(2),
      optimizer: new SGD(model.parameters(), { lr: 0.01 }),
      epochs: 5,
      callbacks: [checkpointBest({ monitor: "loss", save: () => void saved.push(weights()) })],
    }),
    /fit stopped at epoch 2, step 0 \(counted from 0, as in the logs\): the loss is NaN/,
  );
  assert.equal(saved.length, 2);
  assert.equal(weights(), saved[1]); // the refused step changed nothing
});

Deno.test("fit stops on a NaN gradient with a finite loss, naming the parameter", async () => {
  const model = new Sequential([new Linear(2, 1, { seed: 1 })]);
  const data = [{ inputs: tensor([1, 2, 3, 4], [2, 2]), targets: tensor([1, 0], [2, 1]) }];
  // The loss is finite, its gradient NaN (as √x at 0 would give, times 0).
  const loss = (output: Tensor, targets: unknown) => {
    const base = mseLoss(output, targets as Tensor);
    const copy = { shape: base.shape, data: base.data.slice() };
    return record("poison", [copy], [base], ([g]) => [g === null ? null : g.map(() => NaN)])[0];
  };
  const weights = JSON.stringify(model.parameters().map((p) => [...p.value.data]));
  const failure = await fit(model, data, {
    loss: loss as never,
    optimizer: new SGD(model.parameters(), { lr: 0.01 }),
    clipGradNorm: 1,
  }).then(() => null, (error: Error) => error);
  assert.ok(failure !== null, "fit should have stopped");
  assert.match(failure.message, /fit stopped at epoch 0, step 0/);
  assert.match(failure.message, /params\[\d\] \("(weight|bias)"\)/);
  assert.equal(JSON.stringify(model.parameters().map((p) => [...p.value.data])), weights);
});

Deno.test('fit with an optimizer made with nonfinite "skip" skips the poisoned steps', async () => {
  const model = new Sequential([new Linear(2, 1, { seed: 1 })]);
  const data = [{ inputs: tensor([1, 2, 3, 4], [2, 2]), targets: tensor([1, 0], [2, 1]) }];
  const optimizer = new SGD(model.parameters(), { lr: 0.01, nonfinite: "skip" });
  const history = await fit(model, data, { loss: poisonedLoss(1), optimizer, epochs: 3 });
  assert.equal(optimizer.skippedSteps, 2);
  assert.equal(history.epochs.length, 3);
  assert.ok(Number.isFinite(history.epochs[0].metrics.loss));
  assert.ok(Number.isNaN(history.epochs[1].metrics.loss)); // no step counted
});
