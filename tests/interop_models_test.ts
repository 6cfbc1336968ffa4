// GRU and RNN gradients against finite differences, torch -> safetensors -> loadModel round
// trips, and the interop errors.
import assert from "node:assert/strict";
import {
  add,
  Bidirectional,
  fromTorch,
  GRU,
  importKerasLSTM,
  loadModel,
  LSTM,
  mul,
  randn,
  readSafetensors,
  requiresGrad,
  RNN,
  saveModel,
  saveSafetensors,
  Stacked,
  sum,
  type Tensor,
} from "../mod.ts";
import { torchCellForward, type TorchCellKind } from "../src/reference/gru_rnn.ts";
import { readFixture } from "./_testdata.ts";

const SIZES = { batch: 2, seqLen: 4, inputSize: 3, hiddenSize: 3 };

/** The loss Σ w·output + Σ v·hidden in float64, straight from the reference. */
function loss(kind: TorchCellKind, p: Record<string, Tensor>, x: Tensor, h0: Tensor): number {
  const { hiddens } = torchCellForward(
    kind,
    {
      weightIh: p.weight_ih.data,
      weightHh: p.weight_hh.data,
      biasIh: p.bias_ih.data,
      biasHh: p.bias_hh.data,
    },
    SIZES,
    x.data,
    h0.data,
  );
  const { batch: B, seqLen: T, hiddenSize: H } = SIZES;
  let total = 0;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      for (let u = 0; u < H; u++) {
        total += hiddens[((t + 1) * B + b) * H + u] * Math.sin(((b * T + t) * H + u) * 0.7);
      }
    }
  }
  for (let i = 0; i < B * H; i++) total += hiddens[T * B * H + i] * Math.cos(i);
  return total;
}

for (
  const [name, make, kind] of [
    ["GRU", () => new GRU(3, 3, { seed: 1 }), "gru"],
    ["RNN tanh", () => new RNN(3, 3, { seed: 1 }), "rnn_tanh"],
    ["RNN relu", () => new RNN(3, 3, { seed: 1, nonlinearity: "relu" }), "rnn_relu"],
  ] as const
) {
  Deno.test(`${name} backward matches finite differences`, async () => {
    const layer = make().train();
    const x = requiresGrad(randn([2, 4, 3], { seed: 2 }));
    const h0 = requiresGrad(randn([1, 2, 3], { seed: 3 }));
    const { output, hidden } = await layer.forward(x, { hidden: h0 });
    const w = { shape: output.shape, data: output.data.map((_, i) => Math.sin(i * 0.7)) };
    const v = { shape: hidden.shape, data: hidden.data.map((_, i) => Math.cos(i)) };
    const total = sum(mul(output, w)), extra = sum(mul(hidden, v));
    await add(total, extra).backward();
    const params = layer.stateDict();
    const eps = 1e-3;
    const check = (label: string, value: Tensor, grad: Float32Array, at: (t: Tensor) => number) => {
      for (let i = 0; i < value.data.length; i++) {
        const up = value.data.slice(), down = value.data.slice();
        up[i] += eps;
        down[i] -= eps;
        const numeric =
          (at({ shape: value.shape, data: up }) - at({ shape: value.shape, data: down })) /
          (2 * eps);
        assert.ok(
          Math.abs(numeric - grad[i]) <= 1e-3 * Math.max(1, Math.abs(numeric)),
          `${label}[${i}]: analytic ${grad[i]}, numeric ${numeric}`,
        );
      }
    };
    for (const p of layer.parameters()) {
      check(
        p.name,
        params[p.name],
        p.grad!.data,
        (t) => loss(kind, { ...params, [p.name]: t }, x, h0),
      );
    }
    check("x", x, x.grad!.data, (t) => loss(kind, params, t, h0));
    check("h0", h0, h0.grad!.data, (t) => loss(kind, params, x, t));
  });
}

Deno.test("torch -> safetensors -> loadModel keeps the network and its numbers", async () => {
  const { tensors } = readSafetensors(
    readFixture("golden_interop", "torch_lstm_2layer_bidi.safetensors"),
  );
  const record = Object.fromEntries(
    Object.entries(tensors).filter(([n]) => /^(weight|bias)_/.test(n)),
  );
  const net = fromTorch(record, { mode: "LSTM", backend: "js" });
  assert.equal(net.layers.length, 2);
  const copy = loadModel(saveModel(net), { backend: "wasm" });
  assert.ok(copy instanceof Stacked && copy.layers[0] instanceof Bidirectional);
  const init = { hidden: tensors.h0, state: tensors.c0 };
  const [a, b] = [await net.forward(tensors.x, init), await copy.forward(tensors.x, init)];
  for (let i = 0; i < a.output.data.length; i++) {
    assert.ok(Math.abs(a.output.data[i] - b.output.data[i]) < 1e-5);
  }
  copy.dispose();
  const gru = loadModel(
    saveModel(new Stacked([new GRU(2, 3, { seed: 1 }), new RNN(3, 3, { nonlinearity: "relu" })])),
  );
  assert.ok(
    gru instanceof Stacked && gru.layers[1] instanceof RNN && gru.layers[1].nonlinearity === "relu",
  );
  const keras = loadModel(saveModel(importKerasLSTM(
    { kernel: randn([2, 8], { seed: 1 }), recurrentKernel: randn([2, 8], { seed: 2 }) },
    { recurrentActivation: "hard_sigmoid_keras3" },
  )));
  assert.ok(keras instanceof LSTM && keras.recurrentActivation === "hard_sigmoid_keras3");
});

Deno.test("interop errors name the tensor, both shapes, what is missing and what to call", async () => {
  const lstm = (n: number, extra: Record<string, Tensor> = {}) => ({
    [`weight_ih_l${n}`]: randn([8, 3], { seed: 1 }),
    [`weight_hh_l${n}`]: randn([8, 2], { seed: 1 }),
    [`bias_ih_l${n}`]: randn([8], { seed: 1 }),
    [`bias_hh_l${n}`]: randn([8], { seed: 1 }),
    ...extra,
  });
  assert.throws(
    () => fromTorch(lstm(0, { bias_hh_l0: randn([7], { seed: 1 }) }), { mode: "LSTM" }),
    /record\.bias_hh_l0 has the wrong shape: expected \(8\) = \[8\], got \[7\]/,
  );
  const { weight_hh_l0: _, ...partial } = lstm(0);
  assert.throws(
    () => fromTorch(partial, { mode: "LSTM" }),
    /missing weight_hh_l0 \(layer 0 of a 1-layer LSTM\)/,
  );
  assert.throws(
    () => fromTorch(lstm(0), { mode: "LSTM", numLayers: 2 }),
    /missing weight_ih_l1, weight_hh_l1, bias_ih_l1, bias_hh_l1 \(layer 1 of a 2-layer LSTM\)/,
  );
  assert.throws(
    () => fromTorch(lstm(0), { mode: "GRU" }),
    /weight_ih_l0 has the wrong shape: expected \(6, 3\)/,
  );
  assert.throws(
    () => fromTorch(lstm(0), { mode: "lstm" as "LSTM" }),
    /options\.mode must be one of/,
  );
  assert.throws(
    () => new LSTM(3, 2).loadStateDict(lstm(0)),
    /torch\.nn\.LSTM\/GRU\/RNN names .* fromTorch/,
  );
  assert.throws(
    () => new LSTM(3, 2).loadStateDict({ kernel: randn([3, 8], { seed: 1 }) }),
    /Keras names .* importKerasLSTM/,
  );
  assert.throws(
    () =>
      importKerasLSTM({
        kernel: randn([3, 8], { seed: 1 }),
        recurrentKernel: randn([3, 8], { seed: 1 }),
      }),
    /weights\.recurrentKernel has the wrong shape: expected \(units, 4·units\) = \[2, 8\], got \[3, 8\]/,
  );
  assert.throws(
    () => loadModel(saveSafetensors(new LSTM(1, 1).stateDict())),
    /bare state dict: construct the model/,
  );
  assert.throws(
    () => new LSTM(1, 1, { recurrentActivation: "relu" as "sigmoid" }),
    /options\.recurrentActivation/,
  );
  using hard = new LSTM(2, 2, { backend: "wasm", recurrentActivation: "hard_sigmoid" });
  assert.equal(await hard.resolveBackend(), "wasm");
});
