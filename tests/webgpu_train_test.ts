import assert from "node:assert/strict";
import type { CellSpec, OptimizerUpdate, SequenceInput, VariantKind } from "../src/contract/mod.ts";
import { WebGpuTrainer } from "../src/backends/webgpu/trainer.ts";
import { backward } from "../src/reference/backward.ts";
import { runSequence } from "../src/reference/sequence.ts";
import { Random } from "../src/random.ts";
import { type CaseShape, randomCase } from "./_random_cells.ts";
import { variantName, VARIANTS } from "./_golden.ts";
import { assertClose, ofLargest } from "./_assert.ts";
import { hasWebGpu } from "./_backends.ts";

const ignore = !hasWebGpu;

/** The float32 trainer against the float64 reference: 1e-4 of each tensor's largest entry. */
const TRAINER = ofLargest(1e-4, 1e-6);

/** A random case of `kind` with the shape `[batch, seqLen, inputSize, hiddenSize, k]`. */
function caseOf(
  seed: number,
  kind: VariantKind,
  maxPooling: boolean,
  [batch, seqLen, inputSize, hiddenSize, k]: readonly number[],
): { spec: CellSpec; input: SequenceInput } {
  return randomCase(new Random(seed), kind, maxPooling, {
    batch,
    seqLen,
    inputSize,
    hiddenSize,
    k,
  });
}

function normals(random: Random, length: number): Float64Array {
  return Float64Array.from({ length }, () => random.normal());
}

/** Forward and backward on the trainer against the float64 reference. */
async function checkGradients(spec: CellSpec, input: SequenceInput, seed: number): Promise<void> {
  const { batch: B, seqLen: T } = input;
  const { hiddenSize: H, variant: { k } } = spec;
  const random = new Random(seed);
  const grads = {
    output: normals(random, B * T * H),
    hidden: normals(random, B * H),
    state: normals(random, k * B * H),
  };
  using trainer = await WebGpuTrainer.create(spec);
  const result = await trainer.forward(input);
  const reference = runSequence(spec, input, Float64Array);
  assertClose(result.output, reference.output, TRAINER, "output");
  assertClose(result.hidden, reference.hidden, TRAINER, "hidden");
  assertClose(result.state, reference.state, TRAINER, "state");
  const actual = await trainer.backward(grads, { read: ["params", "x", "hidden", "state"] });
  const expected = backward(spec, input, grads);
  assert.deepEqual(Object.keys(actual.params!).sort(), Object.keys(expected.params).sort());
  for (const [name, value] of Object.entries(expected.params)) {
    assertClose(actual.params![name], value, TRAINER, `grad ${name}`);
  }
  assertClose(actual.x!, expected.x, TRAINER, "grad x");
  assertClose(actual.hidden!, expected.hidden, TRAINER, "grad hidden");
  assertClose(actual.state!, expected.state, TRAINER, "grad state");
}

const SHAPES: readonly [string, CaseShape][] = [
  ["odd sizes", { batch: 3, seqLen: 4, inputSize: 5, hiddenSize: 7, k: 3 }],
  // 70 rows: two row tiles of the cell kernel; 19 units: two unit tiles.
  ["batch > workgroup", { batch: 70, seqLen: 3, inputSize: 6, hiddenSize: 19, k: 2 }],
];

for (const [kind, maxPooling] of VARIANTS) {
  for (const [label, shape] of SHAPES) {
    Deno.test({
      name: `webgpu training: gradients match the reference, ${
        variantName(kind, maxPooling)
      }, ${label}`,
      ignore,
      fn: async () => {
        const k = kind === "lstm" ? 1 : shape.k;
        const { spec, input } = randomCase(new Random(11), kind, maxPooling, { ...shape, k });
        await checkGradients(spec, input, 5);
      },
    });
  }
}

/** A cell whose lanes are copies of lane 0: every unit's lanes tie exactly. */
function tiedCase(
  kind: VariantKind,
  maxPooling: boolean,
): { spec: CellSpec; input: SequenceInput } {
  const { spec, input } = caseOf(3, kind, maxPooling, [2, 3, 3, 5, 3]);
  const H = spec.hiddenSize;
  const copyLanes = (array: Float32Array | null, laneLength: number) => {
    if (array === null) return null;
    const copy = array.slice();
    for (let lane = 1; lane < 3; lane++) copy.set(array.subarray(0, laneLength), lane * laneLength);
    return copy;
  };
  const I = spec.inputSize, p = spec.params;
  const state = input.state.slice();
  for (let lane = 1; lane < 3; lane++) state.set(input.state.subarray(0, 2 * H), lane * 2 * H);
  return {
    spec: {
      ...spec,
      params: {
        i2hWeight: copyLanes(p.i2hWeight, 4 * H * I)!,
        i2hBias: copyLanes(p.i2hBias, 4 * H)!,
        h2hWeight: copyLanes(p.h2hWeight, 4 * H * H)!,
        h2hBias: copyLanes(p.h2hBias, 4 * H)!,
        i2aWeight: copyLanes(p.i2aWeight, H * I),
        i2aBias: copyLanes(p.i2aBias, H),
      },
    },
    input: { ...input, state },
  };
}

for (const [kind, maxPooling] of [["stochastic", false], ["attention", true]] as const) {
  Deno.test({
    name: `webgpu training: exact ties send the gradient to the first lane, ${
      variantName(kind, maxPooling)
    }`,
    ignore,
    fn: async () => {
      const { spec, input } = tiedCase(kind, maxPooling);
      await checkGradients(spec, input, 9);
    },
  });
}

Deno.test({
  name: "webgpu training: gradients accumulate until zeroGrad, and the input is not mutated",
  ignore,
  fn: async () => {
    const { spec, input } = caseOf(4, "array", false, [2, 2, 3, 5, 2]);
    const x = input.x.slice();
    using trainer = await WebGpuTrainer.create(spec);
    const output = new Float64Array(2 * 2 * 5).fill(1);
    await trainer.forward(input);
    const once = await trainer.backward({ output }, { read: ["params"] });
    await trainer.forward(input);
    const twice = await trainer.backward({ output }, { read: ["params"] });
    for (const [name, value] of Object.entries(once.params!)) {
      assertClose(twice.params![name], value.map((g) => 2 * g), TRAINER, name);
    }
    trainer.zeroGrad();
    for (const value of Object.values(await trainer.readGradients())) {
      assert(value.every((g) => g === 0));
    }
    assert.deepEqual(input.x, x);
  },
});

/** PyTorch's update rules (torch.optim, single-tensor), written out in float64. */
function torchUpdate(
  config: OptimizerUpdate,
  step: number,
  param: Float64Array,
  grad: ArrayLike<number>,
  state: Float64Array[],
): void {
  if (config.kind === "sgd") {
    const { lr, momentum, dampening, nesterov, weightDecay } = config;
    for (let i = 0; i < param.length; i++) {
      let d = grad[i] + weightDecay * param[i];
      if (momentum !== 0) {
        state[0][i] = step === 1 ? d : momentum * state[0][i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * state[0][i] : state[0][i];
      }
      param[i] -= lr * d;
    }
    return;
  }
  const { lr, beta1: b1, beta2: b2, eps, amsgrad, weightDecay, decoupled } = config;
  for (let i = 0; i < param.length; i++) {
    let g = grad[i];
    if (decoupled) param[i] *= 1 - lr * weightDecay;
    else g += weightDecay * param[i];
    state[0][i] = b1 * state[0][i] + (1 - b1) * g;
    state[1][i] = b2 * state[1][i] + (1 - b2) * g * g;
    state[2][i] = Math.max(state[2][i], state[1][i]);
    const second = amsgrad ? state[2][i] : state[1][i];
    const denominator = Math.sqrt(second) / Math.sqrt(1 - b2 ** step) + eps;
    param[i] -= lr / (1 - b1 ** step) * state[0][i] / denominator;
  }
}

const SGD = { kind: "sgd", momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 } as const;
const ADAM = {
  kind: "adam",
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  amsgrad: false,
  decoupled: false,
} as const;
const OPTIMIZERS: readonly OptimizerUpdate[] = [
  { ...SGD, lr: 0.1 },
  { ...SGD, lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 },
  { ...SGD, lr: 0.05, momentum: 0.8, nesterov: true },
  { ...ADAM, lr: 0.01, weightDecay: 0.1 },
  { ...ADAM, lr: 0.01, beta1: 0.8, beta2: 0.9, amsgrad: true },
  { ...ADAM, lr: 0.01, weightDecay: 1e-2, decoupled: true },
];

for (const config of OPTIMIZERS) {
  Deno.test({
    name: `webgpu training: 3 optimizer steps follow PyTorch, ${JSON.stringify(config)}`,
    ignore,
    fn: async () => {
      const { spec, input } = caseOf(6, "lstm", false, [2, 2, 3, 4, 1]);
      using trainer = await WebGpuTrainer.create(spec);
      const expected: Record<string, Float64Array> = {};
      const state: Record<string, Float64Array[]> = {};
      for (const [name, value] of Object.entries(await trainer.readParameters())) {
        expected[name] = Float64Array.from(value);
        state[name] = [0, 1, 2].map(() => new Float64Array(value.length));
      }
      const random = new Random(2);
      for (let step = 1; step <= 3; step++) {
        trainer.zeroGrad();
        const { output } = await trainer.forward(input);
        const dOutput = normals(random, output.length);
        const { params } = await trainer.backward({ output: dOutput }, { read: ["params"] });
        trainer.step(config);
        for (const name of Object.keys(expected)) {
          torchUpdate(config, step, expected[name], params![name], state[name]);
        }
        // The next forward runs on the updated weights: compare them first.
        const actual = await trainer.readParameters();
        for (const [name, value] of Object.entries(expected)) {
          assertClose(actual[name], value, TRAINER, `step ${step} ${name}`);
        }
      }
    },
  });
}

Deno.test({
  name: "webgpu training: clipGradNorm returns the norm and clips to maxNorm",
  ignore,
  fn: async () => {
    const { spec, input } = caseOf(8, "attention", false, [3, 2, 4, 6, 2]);
    using trainer = await WebGpuTrainer.create(spec);
    const { output } = await trainer.forward(input);
    const { params } = await trainer.backward(
      { output: new Float32Array(output.length).fill(3) },
      { read: ["params"] },
    );
    let squares = 0;
    for (const value of Object.values(params!)) for (const g of value) squares += g * g;
    const norm = await trainer.clipGradNorm(0.5);
    assert(Math.abs(norm - Math.sqrt(squares)) <= 1e-5 * Math.sqrt(squares), `norm ${norm}`);
    assert(norm > 0.5, "the case must need clipping");
    const clipped = Math.sqrt(await trainer.gradSquaredNorm());
    assert(Math.abs(clipped - 0.5) < 1e-5, `clipped norm ${clipped}`);
    for (const [name, value] of Object.entries(await trainer.readGradients())) {
      assertClose(value, params![name].map((g) => g * 0.5 / (norm + 1e-6)), TRAINER, name);
    }
  },
});

Deno.test({
  name: "webgpu training: dispose frees every device buffer, and later calls throw",
  ignore,
  fn: async () => {
    const created = new Set<GPUBuffer>();
    const createBuffer = GPUDevice.prototype.createBuffer;
    const destroy = GPUBuffer.prototype.destroy;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const buffer = createBuffer.call(this, descriptor);
      created.add(buffer);
      return buffer;
    };
    GPUBuffer.prototype.destroy = function () {
      created.delete(this);
      return destroy.call(this);
    };
    try {
      const { spec, input } = caseOf(9, "attention", true, [3, 2, 4, 6, 2]);
      const trainer = await WebGpuTrainer.create(spec);
      const { output } = await trainer.forward(input);
      await trainer.backward({ output }, { read: ["params", "x", "hidden", "state"] });
      await trainer.clipGradNorm(1);
      trainer.step(ADAM);
      // A new shape replaces the activation buffers.
      const longer = caseOf(9, "attention", true, [2, 3, 4, 6, 2]).input;
      await trainer.forward(longer);
      assert(created.size > 0);
      trainer.dispose();
      assert.equal(created.size, 0, "every buffer the trainer created is destroyed");
      await assert.rejects(trainer.forward(input), /disposed/);
      assert.throws(() => trainer.step({ ...SGD, lr: 1 }), /disposed/);
      trainer.dispose();
    } finally {
      GPUDevice.prototype.createBuffer = createBuffer;
      GPUBuffer.prototype.destroy = destroy;
    }
  },
});

Deno.test({
  name: "webgpu training: bad calls throw errors that name the problem",
  ignore,
  fn: async () => {
    const { spec, input } = caseOf(10, "stochastic", false, [2, 2, 3, 4, 2]);
    using trainer = await WebGpuTrainer.create(spec);
    const output = new Float32Array(2 * 2 * 4);
    await assert.rejects(trainer.backward({ output }), /needs a forward\(\)/);
    await trainer.forward(input);
    await trainer.backward({ output });
    await assert.rejects(trainer.backward({ output }), /each forward\(\) serves one backward/);
    assert.throws(() => trainer.step({ kind: "rmsprop" } as never), /update\.kind.*"rmsprop"/);
  },
});
