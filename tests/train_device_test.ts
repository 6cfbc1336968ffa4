/**
 * Training with the weights, gradients and optimizer state on the webgpu device (`DeviceGroup`):
 * the same trajectories as the wasm backend for every update rule, exact resumption after
 * `sync()`, the error of a stale synchronous read, and the host↔device transfers of one step
 * (no weight upload, two read-backs: the forward's results and the gradients' squared norms) and
 * of the evaluation after steps (the weights packed for inference on the device).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Adam,
  AdamW,
  ArrayLSTM,
  AttentionArrayLSTM,
  clipGradNorm,
  Linear,
  oneHot,
  type Optimizer,
  type Parameter,
  SGD,
  sum,
} from "../mod.ts";
import type { BackendName } from "../src/contract/mod.ts";
import { DeviceGroup } from "../src/nn/device_group.ts";
import { classifierLoss } from "./_classifier.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { hasWebGpu } from "./_backends.ts";

const ignore = !hasWebGpu;
if (ignore) console.log("webgpu device training tests skipped: no WebGPU adapter");

const I = 4, H = 5, K = 2, C = 3;
const x = oneHot([[0, 1, 2, 3], [3, 2, 1, 1]], I);
const targets = [1, 2];

/** An ArrayLSTM on `backend` with a `Linear` head (host parameters), in training mode. */
function network(backend: BackendName): { lstm: ArrayLSTM; linear: Linear; params: Parameter[] } {
  const lstm = new ArrayLSTM(I, H, K, { backend, seed: 3 }).train();
  const linear = new Linear(H, C, { seed: 4 }).train();
  return { lstm, linear, params: [...lstm.parameters(), ...linear.parameters()] };
}

/** One training step; returns the loss. */
async function trainStep(
  net: { lstm: ArrayLSTM; linear: Linear; params: Parameter[] },
  opt: Optimizer,
  clip: number | null,
): Promise<number> {
  opt.zeroGrad();
  const loss = await classifierLoss(net.lstm, net.linear, x, targets);
  await loss.backward();
  if (clip !== null) clipGradNorm(net.params, clip);
  opt.step();
  return loss.data[0];
}

/** Every update rule the fused kernels implement, with clipping that bites. */
const RULES: readonly {
  name: string;
  make: (params: Parameter[]) => Optimizer;
  clip: number | null;
}[] = [
  { name: "SGD", make: (p) => new SGD(p, { lr: 0.2 }), clip: null },
  {
    name: "SGD momentum, dampening, weightDecay, clipped",
    make: (p) => new SGD(p, { lr: 0.2, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
    clip: 0.05,
  },
  {
    name: "SGD nesterov, weightDecay",
    make: (p) => new SGD(p, { lr: 0.2, momentum: 0.8, nesterov: true, weightDecay: 0.02 }),
    clip: null,
  },
  {
    name: "Adam weightDecay, amsgrad, clipped",
    make: (p) => new Adam(p, { lr: 0.05, weightDecay: 0.01, amsgrad: true }),
    clip: 0.05,
  },
  { name: "AdamW", make: (p) => new AdamW(p, { lr: 0.05, betas: [0.8, 0.99] }), clip: null },
];

const STEPS = 5;

for (const rule of RULES) {
  Deno.test({
    name: `webgpu device optimizer: ${rule.name} follows the wasm backend for ${STEPS} steps`,
    ignore,
    async fn() {
      const results = [];
      for (const backend of ["wasm", "webgpu"] as const) {
        const net = network(backend);
        using opt = rule.make(net.params);
        const losses = [];
        for (let step = 0; step < STEPS; step++) losses.push(await trainStep(net, opt, rule.clip));
        if (backend === "webgpu") {
          // The device path ran: the recurrent gradients are held there, not copied here.
          for (const parameter of net.lstm.parameters()) {
            assert.ok(parameter.resident instanceof DeviceGroup, parameter.name);
            assert.equal(parameter.heldGrad?.holder, parameter.resident, parameter.name);
          }
        }
        // Inference runs on the stepped weights (webgpu packs them for inference on the device).
        const evaluated = (await net.lstm.eval().forward(x)).hidden.data;
        await opt.sync();
        results.push({
          evaluated,
          losses,
          values: net.params.map((p) => p.value.data.slice()),
          grads: net.params.map((p) => p.grad!.data.slice()),
          state: opt.stateDict(),
        });
        net.lstm.dispose();
      }
      const [wasm, webgpu] = results;
      const near = TOLERANCE.backends;
      assertClose(webgpu.losses, wasm.losses, near, "losses");
      assertClose(webgpu.evaluated, wasm.evaluated, near, "evaluation");
      webgpu.values.forEach((v, i) => assertClose(v, wasm.values[i], near, `value ${i}`));
      webgpu.grads.forEach((g, i) => assertClose(g, wasm.grads[i], near, `grad ${i}`));
      webgpu.state.state.forEach((entry, i) => {
        const other = wasm.state.state[i];
        assert.deepEqual(Object.keys(entry ?? {}), Object.keys(other ?? {}), `state ${i}`);
        for (const [name, value] of Object.entries(entry ?? {})) {
          const want = other![name];
          if (typeof value === "number") assert.equal(value, want, `state ${i}.${name}`);
          else assertClose(value.data, (want as typeof value).data, near, `state ${i}.${name}`);
        }
      });
    },
  });
}

Deno.test({
  name: "webgpu device optimizer: resuming from stateDict() after sync() is exact",
  ignore,
  async fn() {
    const first = network("webgpu");
    using opt = new Adam(first.params, { lr: 0.05, amsgrad: true });
    for (let step = 0; step < 3; step++) await trainStep(first, opt, 0.05);
    await opt.sync();
    const saved = { lstm: first.lstm.stateDict(), linear: first.linear.stateDict() };
    const optimizerState = opt.stateDict();

    const second = network("webgpu");
    second.lstm.loadStateDict(saved.lstm);
    second.linear.loadStateDict(saved.linear);
    using resumed = new Adam(second.params, { lr: 1 });
    resumed.loadStateDict(optimizerState);
    for (let step = 0; step < 3; step++) {
      const a = await trainStep(first, opt, 0.05);
      const b = await trainStep(second, resumed, 0.05);
      assert.equal(b, a, `loss at step ${step}`);
    }
    await opt.sync();
    await second.lstm.sync();
    assert.deepEqual(second.lstm.stateDict(), first.lstm.stateDict());
    assert.deepEqual(second.linear.stateDict(), first.linear.stateDict());
    assert.deepEqual(resumed.stateDict(), opt.stateDict());
    first.lstm.dispose();
    second.lstm.dispose();
  },
});

Deno.test({
  name: "webgpu device optimizer: a synchronous read of a stale host copy throws and says why",
  ignore,
  async fn() {
    const net = network("webgpu");
    using opt = new SGD(net.params, { lr: 0.1, momentum: 0.9 });
    await trainStep(net, opt, null);
    const [weight] = net.lstm.parameters();
    const stale = /parameter "i2h\.weight".*await opt\.sync\(\)/;
    assert.throws(() => weight.value, stale);
    assert.throws(() => weight.grad, /gradient of parameter "i2h\.weight".*await opt\.sync\(\)/);
    assert.throws(() => net.lstm.stateDict(), stale);
    assert.throws(() => opt.stateDict(), /optimizer state.*await opt\.sync\(\)/);
    // The host head stays readable, and the device's gradient norm is known without a read-back.
    assert.equal(net.linear.parameters()[0].value.data.length, C * H);
    assert.ok(weight.gradSquaredNorm() > 0);
    await net.lstm.sync();
    assert.equal(weight.value.data.length, 4 * K * H * I);
    assert.ok(opt.stateDict().state[0] !== null);
    // A backward changes the gradients, not the values; a step changes both.
    await trainStep(net, opt, null);
    assert.throws(() => weight.grad, /await opt\.sync\(\)/);
    await opt.sync();
    assert.equal(weight.grad!.data.length, 4 * K * H * I);
    net.lstm.dispose();
  },
});

/** What `work` sends to and reads from the device: writes by buffer label, read-backs, uploads. */
async function transfers<T>(
  work: () => Promise<T>,
): Promise<{ result: T; writes: Map<string, number>; reads: number; uploads: number }> {
  const writes = new Map<string, number>();
  let reads = 0, uploads = 0;
  const { writeBuffer, writeTexture } = GPUQueue.prototype;
  const { mapAsync } = GPUBuffer.prototype;
  const { createBuffer } = GPUDevice.prototype;
  GPUQueue.prototype.writeBuffer = function (buffer, ...rest) {
    writes.set(buffer.label, (writes.get(buffer.label) ?? 0) + 1);
    return writeBuffer.call(this, buffer, ...rest);
  };
  // Inference weights go up as a texture write and buffers mapped at creation.
  GPUQueue.prototype.writeTexture = function (...args) {
    uploads++;
    return writeTexture.apply(this, args);
  };
  GPUDevice.prototype.createBuffer = function (descriptor) {
    if (descriptor.mappedAtCreation) uploads++;
    return createBuffer.call(this, descriptor);
  };
  GPUBuffer.prototype.mapAsync = function (...args) {
    reads++;
    return mapAsync.apply(this, args);
  };
  try {
    const result = await work();
    return { result, writes, reads, uploads };
  } finally {
    Object.assign(GPUQueue.prototype, { writeBuffer, writeTexture });
    GPUBuffer.prototype.mapAsync = mapAsync;
    GPUDevice.prototype.createBuffer = createBuffer;
  }
}

Deno.test({
  name: "webgpu device optimizer: a step uploads no weights and reads back only the loss's " +
    "inputs and the gradient norms",
  ignore,
  async fn() {
    const net = network("webgpu");
    using opt = new Adam(net.params, { lr: 0.05 });
    await trainStep(net, opt, 0.05); // compiles, uploads the weights once, makes the state
    const steps = 3;
    const { writes, reads, uploads } = await transfers(async () => {
      for (let step = 0; step < steps; step++) await trainStep(net, opt, 0.05);
    });
    assert.equal(reads, 2 * steps, "per step: the forward's results and the squared norms");
    assert.equal(uploads, 0, "no weights packed for inference and uploaded");
    for (const label of ["parameters", "gradients", "first moment", "second moment"]) {
      assert.equal(writes.get(label), undefined, `no upload to ${label}`);
    }
    // What is written: the step's inputs, the loss's gradients and the kernels' records.
    const allowed = [
      "the inputs",
      "the hidden states",
      "the cell states",
      "dLoss/d output",
      "dLoss/d state",
      "training records",
    ];
    assert.deepEqual([...writes.keys()].filter((label) => !allowed.includes(label)), []);
    net.lstm.dispose();
  },
});

Deno.test({
  name: "webgpu device optimizer: evaluation after steps packs the weights on the device, reads " +
    "back only its results, and matches wasm",
  ignore,
  async fn() {
    // Attention (every packed layout), and sizes that are not multiples of four (the padding).
    const inputs = oneHot([[0, 1, 2, 1], [2, 2, 1, 0]], 3);
    const evaluated = [];
    for (const backend of ["wasm", "webgpu"] as const) {
      const lstm = new AttentionArrayLSTM(3, 5, 2, { backend, seed: 5 }).train();
      using opt = new Adam(lstm.parameters(), { lr: 0.05 });
      for (let step = 0; step < 3; step++) {
        opt.zeroGrad();
        await sum((await lstm.forward(inputs)).output).backward();
        opt.step();
      }
      lstm.eval();
      if (backend === "wasm") {
        evaluated.push((await lstm.forward(inputs)).output.data);
        lstm.dispose();
        continue;
      }
      const { result, writes, reads, uploads } = await transfers(() => lstm.forward(inputs));
      evaluated.push(result.output.data);
      assert.equal(reads, 1, "one read-back: the evaluation's results");
      assert.equal(uploads, 0, "no weights uploaded");
      // What is written: the call's inputs and the kernels' records.
      const allowed = ["input", "hidden A", "cells", "step records", "training records"];
      assert.deepEqual([...writes.keys()].filter((label) => !allowed.includes(label)), []);
      lstm.dispose();
    }
    const [wasm, webgpu] = evaluated;
    assertClose(webgpu, wasm, TOLERANCE.backends, "output");
  },
});

Deno.test({
  name: "webgpu device optimizer: assigning a parameter mid-training hands the others' values " +
    "and the optimizer state over, as on wasm",
  ignore,
  async fn() {
    const results = [];
    for (const backend of ["wasm", "webgpu"] as const) {
      const net = network(backend);
      using opt = new SGD(net.params, { lr: 0.1, momentum: 0.9 });
      for (let step = 0; step < 2; step++) await trainStep(net, opt, null);
      const bias = net.lstm.parameters()[1];
      bias.value = { shape: [4 * K * H], data: new Float32Array(4 * K * H).fill(0.1) };
      for (let step = 0; step < 2; step++) await trainStep(net, opt, null);
      await opt.sync();
      results.push({ values: net.params.map((p) => [...p.value.data]), state: opt.stateDict() });
      net.lstm.dispose();
    }
    const [wasm, webgpu] = results;
    assertClose(webgpu.values.flat(), wasm.values.flat(), TOLERANCE.backends, "values");
    webgpu.state.state.forEach((entry, i) => {
      const buffer = (entry!.momentumBuffer as { data: Float32Array }).data;
      const want = (wasm.state.state[i]!.momentumBuffer as { data: Float32Array }).data;
      assertClose(buffer, want, TOLERANCE.backends, `state ${i}`);
    });
  },
});

Deno.test({
  name: "webgpu device optimizer: gradients assigned on the host are uploaded and stepped there",
  ignore,
  async fn() {
    const results = [];
    for (const backend of ["wasm", "webgpu"] as const) {
      const net = network(backend);
      using opt = new Adam(net.lstm.parameters(), { lr: 0.05 });
      await trainStep(net, opt, null);
      // The shapes of i2h.weight, i2h.bias, h2h.weight, h2h.bias (p.value is on the device).
      const shapes = [[4 * K * H, I], [4 * K * H], [4 * K * H, H], [4 * K * H]];
      for (const [i, parameter] of net.lstm.parameters().entries()) {
        const size = shapes[i].reduce((product, n) => product * n, 1);
        parameter.grad = {
          shape: shapes[i],
          data: Float32Array.from({ length: size }, (_, j) => Math.sin(i + j)),
        };
        assert.equal(parameter.heldGrad, null);
      }
      opt.step();
      await opt.sync();
      results.push(net.lstm.parameters().flatMap((p) => [...p.value.data]));
      net.lstm.dispose();
    }
    const [wasm, webgpu] = results;
    assertClose(webgpu, wasm, TOLERANCE.backends, "values");
  },
});
