/**
 * Optimizers, clipGradNorm and schedules against values computed by hand with PyTorch's update
 * rules (float64, three steps with gradients g, 2g, 3g), resume through stateDict, and errors.
 */

import assert from "node:assert/strict";
import {
  Adam,
  AdamW,
  clipGradNorm,
  CosineAnnealingLR,
  Linear,
  LSTM,
  type Optimizer,
  Parameter,
  SGD,
  StepLR,
  tensor,
} from "../mod.ts";

const START = [1, -2, 0.5], GRAD = [0.3, -0.1, 2];

function threeSteps(make: (params: Parameter[]) => Optimizer): Float32Array {
  const p = new Parameter("w", tensor(START, [3]));
  const opt = make([p]);
  for (let step = 1; step <= 3; step++) {
    opt.zeroGrad();
    p.grad = tensor(GRAD.map((g) => g * step), [3]);
    opt.step();
  }
  return p.value.data;
}

const cases: [string, (params: Parameter[]) => Optimizer, number[]][] = [
  ["SGD", (p) => new SGD(p, { lr: 0.1 }), [0.82, -1.94, -0.7]],
  [
    "SGD momentum, dampening, weightDecay",
    (p) => new SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
    [0.72993540489, -1.9011188502799998, -1.267650047405],
  ],
  [
    "SGD nesterov",
    (p) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
    [0.555720235371, -1.838514913692, -2.4123153212295],
  ],
  [
    "Adam betas, eps, weightDecay",
    (p) => new Adam(p, { lr: 0.1, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.01 }),
    [0.7023526751558934, -1.7012256947808106, 0.20261451685582252],
  ],
  [
    "Adam amsgrad",
    (p) => new Adam(p, { lr: 0.1, amsgrad: true }),
    [0.707681681853612, -1.7076816955448424, 0.20768167603483864],
  ],
  [
    "AdamW",
    (p) => new AdamW(p, { lr: 0.1, weightDecay: 0.1 }),
    [0.6809358637927556, -1.6512348773106298, 0.19578635804765868],
  ],
];
for (const [name, make, expected] of cases) {
  Deno.test(`${name} follows PyTorch's update rule`, () => {
    const actual = threeSteps(make);
    expected.forEach((value, i) =>
      assert.ok(Math.abs(actual[i] - value) < 2e-6, `${actual[i]} vs ${value}`)
    );
  });
}

Deno.test("optimizers skip parameters without a gradient and zeroGrad sets grad to null", () => {
  const [a, b] = [new Parameter("a", tensor([1], [1])), new Parameter("b", tensor([1], [1]))];
  const opt = new Adam([a, b], { lr: 0.1 });
  a.grad = tensor([1], [1]);
  opt.step();
  assert.equal(b.value.data[0], 1);
  assert.equal(b.version, 0);
  assert.equal(opt.stateDict().state[1], null);
  opt.zeroGrad();
  assert.equal(a.grad, null);
});

Deno.test("defaults are PyTorch's", () => {
  const p = [new Parameter("w", tensor([1], [1]))];
  assert.deepEqual(new SGD(p).stateDict().options, {
    lr: 1e-3,
    momentum: 0,
    dampening: 0,
    nesterov: false,
    weightDecay: 0,
  });
  assert.deepEqual(new Adam(p).stateDict().options, {
    lr: 1e-3,
    betas: [0.9, 0.999],
    eps: 1e-8,
    weightDecay: 0,
    amsgrad: false,
  });
  assert.equal(new AdamW(p).stateDict().options.weightDecay, 1e-2);
});

Deno.test("clipGradNorm is clip_grad_norm_: L2 over all parameters, the norm before clipping", () => {
  const a = new Parameter("a", tensor([0, 0], [2])), b = new Parameter("b", tensor([0], [1]));
  const c = new Parameter("c", tensor([0], [1]));
  a.grad = tensor([3, 0], [2]);
  b.grad = tensor([4], [1]);
  assert.equal(clipGradNorm([a, b, c], 10), 5);
  assert.deepEqual([...b.grad.data], [4]);
  assert.equal(clipGradNorm([a, b, c], 1), 5);
  const factor = 1 / (5 + 1e-6);
  assert.ok(
    Math.abs(a.grad.data[0] - 3 * factor) < 1e-7 && Math.abs(b.grad.data[0] - 4 * factor) < 1e-7,
  );
  assert.equal(c.grad, null);
  assert.throws(() => clipGradNorm([a], -1), /maxNorm must be a number ≥ 0, got -1/);
});

Deno.test("StepLR and CosineAnnealingLR follow PyTorch's schedules", () => {
  const p = [new Parameter("w", tensor([1], [1]))];
  const sgd = new SGD(p, { lr: 1 });
  const step = new StepLR(sgd, { stepSize: 3, gamma: 0.5 });
  const steps = Array.from({ length: 7 }, () => (step.step(), sgd.lr));
  assert.deepEqual(steps, [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]);
  const adam = new Adam(p, { lr: 1 });
  const cosine = new CosineAnnealingLR(adam, { tMax: 3, etaMin: 0.1 });
  const expected = [0.775, 0.325, 0.1, 0.325, 0.775, 1, 0.775, 0.325];
  for (const value of expected) {
    cosine.step();
    assert.ok(Math.abs(adam.lr - value) < 1e-12, `${adam.lr} vs ${value}`);
  }
  assert.equal(cosine.lastEpoch, 8);
});

Deno.test("optimizer and schedule stateDict resume a run exactly", () => {
  const run = (opt: Optimizer, schedule: StepLR, p: Parameter, from: number, to: number) => {
    for (let step = from; step < to; step++) {
      p.grad = tensor(GRAD.map((g) => g * Math.sin(step)), [3]);
      opt.step();
      schedule.step();
    }
  };
  const p = new Parameter("w", tensor(START, [3]));
  const opt = new Adam([p], { lr: 0.1, amsgrad: true });
  const schedule = new StepLR(opt, { stepSize: 2 });
  run(opt, schedule, p, 0, 3);
  const saved = {
    value: p.value.data.slice(),
    opt: opt.stateDict(),
    schedule: schedule.stateDict(),
  };
  run(opt, schedule, p, 3, 6);

  const q = new Parameter("w", tensor(saved.value, [3]));
  const resumed = new Adam([q]);
  resumed.loadStateDict(saved.opt);
  const resumedSchedule = new StepLR(resumed, { stepSize: 2 });
  resumedSchedule.loadStateDict(saved.schedule);
  run(resumed, resumedSchedule, q, 3, 6);
  assert.deepEqual(q.value.data, p.value.data);
  assert.equal(resumed.lr, opt.lr);
});

Deno.test("optimizers reject bad options, naming them", () => {
  const p = [new Parameter("w", tensor([1], [1]))];
  assert.throws(() => new SGD(p, { lr: -1 }), /options\.lr must be a number ≥ 0, got -1/);
  assert.throws(
    () => new SGD(p, { weight_decay: 1 } as never),
    /unknown option "weight_decay" for SGD; expected some of lr, momentum, dampening, nesterov, weightDecay/,
  );
  assert.throws(
    () => new SGD(p, { nesterov: true }),
    /options\.nesterov needs momentum > 0 and dampening = 0/,
  );
  assert.throws(
    () => new Adam(p, { betas: [0.9, 1] }),
    /options\.betas\[1\] must be a number in \[0, 1\), got 1/,
  );
  assert.throws(
    () => new AdamW(p, { amsgrad: 1 as never }),
    /options\.amsgrad must be a boolean, got 1/,
  );
  assert.throws(() => new Adam([]), /params must be a non-empty array of Parameter/);
  assert.throws(() => new Adam([{ name: "w" } as never]), /params\[0\] must be a Parameter/);
  assert.throws(() => new Adam([p[0], p[0]]), /params\[1\] \("w"\) appears twice/);
  assert.throws(
    () => new StepLR(new SGD(p), { stepSize: 0 }),
    /options\.stepSize must be a positive integer, got 0/,
  );
});

Deno.test("an optimizer rejects parameters from two backends", () => {
  const params = [
    ...new LSTM(2, 3, { backend: "js", seed: 1 }).parameters(),
    ...new Linear(3, 2, { seed: 2 }).parameters(),
    ...new LSTM(2, 3, { backend: "wasm", seed: 1 }).parameters(),
  ];
  assert.throws(
    () => new Adam(params),
    /params mixes backends: params\[0\] \("i2h\.weight"\) is on "js", params\[6\] \("i2h\.weight"\) on "wasm"/,
  );
});

Deno.test("step() after dispose() is an error", () => {
  const p = new Parameter("w", tensor([1], [1]));
  const opt = new SGD([p], { lr: 0.1 });
  opt.dispose();
  p.grad = tensor([1], [1]);
  assert.throws(
    () => opt.step(),
    /step\(\) on a disposed SGD: its state was freed; create a new optimizer/,
  );
});
