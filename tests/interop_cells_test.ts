// The step-by-step recurrent layers of src/interop (StepwiseLSTM, StepwiseGRU): their tape
// gradients against central finite differences of the float32 forward, on js; and how they
// compose.
import assert from "node:assert/strict";
import { add, Bidirectional, mul, randn, requiresGrad, Stacked, sum, type Tensor } from "../mod.ts";
import type { Module } from "../src/nn/module.ts";
import type { RecurrentInit, RecurrentLayer } from "../src/models/recurrent.ts";
import { StepwiseGRU } from "../src/interop/stepwise_gru.ts";
import { StepwiseLSTM } from "../src/interop/stepwise_lstm.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

type Layer = RecurrentLayer & Module;

/** Σ w·output + Σ v·hidden (+ Σ u·state): every result reaches the loss. */
async function loss(layer: Layer, x: Tensor, init: RecurrentInit) {
  const { output, hidden, state } = await layer.forward(x, init);
  const weigh = (t: Tensor, f: (i: number) => number) =>
    sum(mul(t, { shape: t.shape, data: t.data.map((_, i) => f(i)) }));
  let total = add(weigh(output, (i) => Math.sin(i * 0.7)), weigh(hidden, Math.cos));
  if (state !== undefined) total = add(total, weigh(state, (i) => Math.sin(i + 1)));
  return total;
}

const CASES: [string, () => Layer, (B: number) => RecurrentInit][] = [
  [
    "StepwiseLSTM (Keras activation relu, Keras 3 hard sigmoid)",
    () =>
      new StepwiseLSTM(3, 3, { activation: "relu", recurrentActivation: "hard_sigmoid_keras3" }),
    (B) => ({ hidden: randn([1, B, 3], { seed: 3 }), state: randn([1, B, 3], { seed: 4 }) }),
  ],
  [
    "StepwiseLSTM (torch proj_size 2)",
    () => new StepwiseLSTM(3, 4, { projSize: 2, recurrentBias: true, seed: 5 }),
    (B) => ({ hidden: randn([1, B, 2], { seed: 3 }), state: randn([1, B, 4], { seed: 4 }) }),
  ],
  [
    "StepwiseGRU (Keras reset_after=False)",
    () => new StepwiseGRU(3, 3, { resetAfter: false, seed: 6 }),
    (B) => ({ hidden: randn([1, B, 3], { seed: 3 }) }),
  ],
  [
    "StepwiseGRU (reset_after=True, activation sigmoid)",
    () => new StepwiseGRU(3, 3, { activation: "sigmoid", seed: 7 }),
    (B) => ({ hidden: randn([1, B, 3], { seed: 3 }) }),
  ],
];

for (const [name, make, initOf] of CASES) {
  Deno.test(`${name}: gradients match central finite differences (js)`, async () => {
    const layer = make().train();
    const x = requiresGrad(randn([2, 4, 3], { seed: 2 }));
    const start = initOf(2);
    const init: RecurrentInit = {
      hidden: requiresGrad(start.hidden),
      ...(start.state ? { state: requiresGrad(start.state) } : {}),
    };
    await (await loss(layer, x, init)).backward();
    const params = layer.stateDict();
    const probe = make();
    const at = async (p: Record<string, Tensor>, xs: Tensor, i0: RecurrentInit) => {
      probe.loadStateDict(p);
      return (await loss(probe, xs, i0)).data[0];
    };
    // 1e-3: the float32 loss resolves it, and it crosses no relu or hard-sigmoid kink here.
    const eps = 1e-3;
    const check = async (
      label: string,
      value: Tensor,
      grad: Float32Array,
      f: (t: Tensor) => Promise<number>,
    ) => {
      const numeric = new Float32Array(value.data.length);
      for (let i = 0; i < value.data.length; i++) {
        const up = value.data.slice(), down = value.data.slice();
        up[i] += eps;
        down[i] -= eps;
        numeric[i] = ((await f({ shape: value.shape, data: up })) -
          (await f({ shape: value.shape, data: down }))) / (2 * eps);
      }
      assertClose(grad, numeric, TOLERANCE.float32FiniteDifference, `${name}: ${label}`);
    };
    // A child's Parameter keeps its own name ("weight"): the stateDict keys are in the same order.
    const names = Object.keys(params);
    for (const [i, p] of layer.parameters().entries()) {
      const key = names[i];
      assert.ok(p.grad !== null, `${key} has no gradient`);
      await check(key, params[key], p.grad!.data, (t) => at({ ...params, [key]: t }, x, init));
    }
    await check("x", x, x.grad!.data, (t) => at(params, t, init));
    const hidden = init.hidden as ReturnType<typeof requiresGrad>;
    await check("h0", hidden, hidden.grad!.data, (t) => at(params, x, { ...init, hidden: t }));
    if (init.state !== undefined) {
      const state = init.state as ReturnType<typeof requiresGrad>;
      await check("c0", state, state.grad!.data, (t) => at(params, x, { ...init, state: t }));
    }
  });
}

Deno.test("the step-by-step layers compose in Stacked and Bidirectional", async () => {
  const net = new Stacked([
    new Bidirectional(
      new StepwiseLSTM(3, 4, { projSize: 2, recurrentBias: true, seed: 1 }),
      new StepwiseLSTM(3, 4, { projSize: 2, recurrentBias: true, seed: 2 }),
    ),
    new Bidirectional(
      new StepwiseLSTM(4, 4, { projSize: 2, seed: 3 }),
      new StepwiseLSTM(4, 4, { projSize: 2, seed: 4 }),
    ),
  ]);
  const { output, hidden, state } = await net.forward(randn([2, 5, 3], { seed: 5 }));
  assert.deepEqual([output.shape, hidden.shape, state?.shape], [[2, 5, 4], [4, 2, 2], [4, 2, 4]]);
  const gru = new Stacked([new StepwiseGRU(3, 2, { resetAfter: false }), new StepwiseGRU(2, 2)]);
  const result = await gru.forward(randn([1, 3, 3], { seed: 6 }));
  assert.deepEqual([result.output.shape, result.hidden.shape, result.state], [
    [1, 3, 2],
    [2, 1, 2],
    undefined,
  ]);
});

Deno.test("the step-by-step layers name what they refuse", () => {
  assert.throws(
    () => new StepwiseLSTM(3, 4, { activation: "selu" as "relu" }),
    /options\.activation must be one of tanh, relu/,
  );
  assert.throws(() => new StepwiseGRU(3, 0), /hiddenSize must be a positive integer, got 0/);
  assert.rejects(() => new StepwiseLSTM(3, 4).forward(randn([2, 5, 2])), /x has the wrong/);
});
