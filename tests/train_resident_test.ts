/**
 * The fused optimizer step on wasm: a recurrent layer's parameters are updated in wasm memory
 * where its runner holds them (counted), with the same results as the TypeScript path of the js
 * backend; `p.value` and `p.grad` read as there; `stateDict()` reads the state back and resumes
 * exactly; `clipGradNorm` spans resident and TypeScript parameters; an incomplete group or a
 * replaced parameter falls back to TypeScript.
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
  logSoftmax,
  nllLoss,
  oneHot,
  type Optimizer,
  type Parameter,
  reshape,
  SGD,
  tensor,
} from "../mod.ts";
import { WasmTrainingKernel } from "../src/backends/wasm/train_kernel.ts";
import { WasmThread } from "../src/backends/wasm/thread.ts";
import { ResidentGroup } from "../src/nn/resident.ts";
import { classifierLoss } from "./_classifier.ts";
import { assertClose, mixed } from "./_assert.ts";

type Backend = "js" | "wasm";

/** Counts fused steps while `fn` runs. */
async function countingSteps(fn: () => Promise<void>): Promise<{ group: number; kernel: number }> {
  const counts = { group: 0, kernel: 0 };
  const group = ResidentGroup.prototype.step, kernel = WasmTrainingKernel.prototype.step;
  ResidentGroup.prototype.step = function (this: ResidentGroup, ...args) {
    counts.group++;
    return group.apply(this, args);
  };
  WasmTrainingKernel.prototype.step = function (this: WasmTrainingKernel, ...args) {
    counts.kernel++;
    return kernel.apply(this, args);
  };
  try {
    await fn();
  } finally {
    ResidentGroup.prototype.step = group;
    WasmTrainingKernel.prototype.step = kernel;
  }
  return counts;
}

interface Run {
  readonly lstm: ArrayLSTM;
  readonly linear: Linear;
  readonly params: Parameter[];
  readonly opt: Optimizer;
  readonly losses: number[];
}

const TOKENS = [[1, 4, 2, 3], [0, 2, 1, 0], [3, 3, 4, 2]];

/** A small classifier and its optimizer, on `backend`. */
function model(backend: Backend, makeOpt: (params: Parameter[]) => Optimizer, attention = false) {
  const lstm = attention
    ? new AttentionArrayLSTM(5, 6, 2, { backend, seed: 1 })
    : new ArrayLSTM(5, 6, 2, { backend, seed: 1 });
  const linear = new Linear(6, 5, { seed: 2 });
  lstm.train();
  linear.train();
  const params = [...lstm.parameters(), ...linear.parameters()];
  return { lstm, linear, params, opt: makeOpt(params), losses: [] as number[] };
}

/** `steps` training steps (clipping the gradients to `clip` when given). */
async function train(run: Run, steps: number, clip?: number): Promise<void> {
  const y = TOKENS.map((row) => row[0]);
  for (let step = 0; step < steps; step++) {
    run.opt.zeroGrad();
    const loss = await classifierLoss(run.lstm, run.linear, oneHot(TOKENS, 5), y);
    await loss.backward();
    if (clip !== undefined) clipGradNorm(run.params, clip);
    run.opt.step();
    run.losses.push(loss.data[0]);
  }
}

/** The fused wasm step against the TypeScript path: the same float32 updates in another order. */
const STEPPED = mixed(2e-5);

const OPTIMIZERS: [string, (params: Parameter[]) => Optimizer][] = [
  ["SGD", (p) => new SGD(p, { lr: 0.1 })],
  [
    "SGD momentum, dampening, weightDecay",
    (p) => new SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
  ],
  ["SGD nesterov", (p) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true })],
  ["Adam", (p) => new Adam(p, { lr: 1e-2 })],
  ["Adam amsgrad, weightDecay", (p) => new Adam(p, { lr: 1e-2, amsgrad: true, weightDecay: 0.1 })],
  ["AdamW amsgrad", (p) => new AdamW(p, { lr: 1e-2, amsgrad: true })],
];

for (const [name, makeOpt] of OPTIMIZERS) {
  Deno.test(`wasm: ${name} steps the recurrent weights in place, as the TypeScript path`, async () => {
    const reference = model("js", makeOpt);
    await train(reference, 4);
    const resident = model("wasm", makeOpt);
    const counts = await countingSteps(() => train(resident, 4));
    assert.deepEqual(counts, { group: 4, kernel: 4 }); // one fused step per optimizer step
    assertClose(resident.losses, reference.losses, STEPPED, "losses");
    resident.params.forEach((parameter, index) => {
      const expected = reference.params[index];
      assertClose(parameter.value.data, expected.value.data, STEPPED, `${parameter.name} value`);
      assertClose(parameter.grad!.data, expected.grad!.data, STEPPED, `${parameter.name} grad`);
    });
    const [ours, theirs] = [resident.opt.stateDict(), reference.opt.stateDict()];
    assert.deepEqual(ours.options, theirs.options);
    ours.state.forEach((state, index) => {
      const other = theirs.state[index]!;
      assert.deepEqual(Object.keys(state!).sort(), Object.keys(other).sort());
      for (const [key, value] of Object.entries(state!)) {
        const expected = other[key];
        if (typeof value === "number") assert.equal(value, expected, key);
        else {assertClose(
            value.data,
            (expected as typeof value).data,
            STEPPED,
            `state[${index}].${key}`,
          );}
      }
    });
    // Inference runs on the stepped weights.
    const [ran, expected] = await Promise.all(
      [resident, reference].map(({ lstm }) => lstm.eval().forward(oneHot(TOKENS, 5))),
    );
    assertClose(ran.output.data, expected.output.data, STEPPED, "inference output");
    resident.lstm.dispose();
  });
}

Deno.test("wasm: an attention layer's six tensors step in place", async () => {
  const makeOpt = (p: Parameter[]) => new Adam(p, { lr: 1e-2 });
  const reference = model("js", makeOpt, true);
  await train(reference, 3);
  const resident = model("wasm", makeOpt, true);
  const counts = await countingSteps(() => train(resident, 3));
  assert.equal(counts.group, 3);
  assert.equal(resident.lstm.parameters()[0].resident!.parameters.length, 6);
  resident.params.forEach((parameter, index) =>
    assertClose(parameter.value.data, reference.params[index].value.data, STEPPED, parameter.name)
  );
  resident.lstm.dispose();
});

Deno.test("wasm: stateDict() of a resident optimizer resumes exactly", async () => {
  const makeOpt = (p: Parameter[]) => new Adam(p, { lr: 1e-2, amsgrad: true });
  const first = model("wasm", makeOpt);
  await train(first, 3);
  const saved = {
    lstm: structuredClone(first.lstm.stateDict()),
    linear: structuredClone(first.linear.stateDict()),
    opt: first.opt.stateDict(),
  };
  await train(first, 2);

  const resumed = model("wasm", makeOpt);
  resumed.lstm.loadStateDict(saved.lstm);
  resumed.linear.loadStateDict(saved.linear);
  resumed.opt.loadStateDict(saved.opt);
  const counts = await countingSteps(() => train(resumed, 2));
  assert.equal(counts.group, 2);
  assert.deepEqual(resumed.losses, first.losses.slice(3));
  resumed.params.forEach((parameter, index) =>
    assert.deepEqual(parameter.value.data, first.params[index].value.data, parameter.name)
  );
  assert.deepEqual(resumed.opt.stateDict(), first.opt.stateDict());
  first.lstm.dispose();
  resumed.lstm.dispose();
});

Deno.test("wasm: clipGradNorm spans resident and TypeScript parameters", async () => {
  const makeOpt = (p: Parameter[]) => new SGD(p, { lr: 0.5, momentum: 0.5 });
  const reference = model("js", makeOpt);
  await train(reference, 3, 0.05);
  const resident = model("wasm", makeOpt);
  const counts = await countingSteps(() => train(resident, 3, 0.05));
  assert.equal(counts.group, 3);
  assertClose(resident.losses, reference.losses, STEPPED, "losses");
  resident.params.forEach((parameter, index) =>
    assertClose(parameter.value.data, reference.params[index].value.data, STEPPED, parameter.name)
  );
  // The norm covers every gradient: the resident group's and the Linear's.
  const all = resident.params.flatMap((p) => [...p.grad!.data]);
  const norm = Math.hypot(...all);
  assert.ok(Math.abs(clipGradNorm(resident.params, 1e9) - norm) < 1e-5 * norm);
  resident.lstm.dispose();
});

Deno.test("wasm: an incomplete group or a replaced parameter takes the TypeScript path", async () => {
  const makeOpt = (p: Parameter[]) => new Adam(p, { lr: 1e-2 });
  // An optimizer over part of the layer's parameters.
  const partial = model("wasm", (p) => makeOpt(p.slice(1)));
  const reference = model("js", (p) => makeOpt(p.slice(1)));
  assert.equal((await countingSteps(() => train(partial, 2))).group, 0);
  await train(reference, 2);
  partial.params.forEach((parameter, index) =>
    assertClose(parameter.value.data, reference.params[index].value.data, STEPPED, parameter.name)
  );
  partial.lstm.dispose();

  // Two resident steps, a replaced weight (the layer re-packs), then resident steps again.
  const run = model("wasm", makeOpt);
  const check = model("js", makeOpt);
  const halve = (target: Run) => {
    const p = target.lstm.parameters()[3];
    p.value = tensor(p.value.data.map((v) => v / 2), p.value.shape);
  };
  const counts = await countingSteps(async () => {
    await train(run, 2);
    halve(run);
    await train(run, 2);
  });
  await train(check, 2);
  halve(check);
  await train(check, 2);
  assert.equal(counts.group, 4);
  run.params.forEach((parameter, index) =>
    assertClose(parameter.value.data, check.params[index].value.data, STEPPED, parameter.name)
  );
  run.lstm.dispose();
});

Deno.test("wasm: a gradient of a step taken before an in-place update is refused", async () => {
  const run = model("wasm", (p) => new SGD(p, { lr: 0.1 }));
  await train(run, 1);
  const loss = await classifierLoss(
    run.lstm,
    run.linear,
    oneHot(TOKENS, 5),
    TOKENS.map((row) => row[0]),
  );
  await train(run, 1); // steps the weights the recorded forward ran on
  await assert.rejects(() => loss.backward(), /stepped before the backward/);
  run.lstm.dispose();
});

Deno.test("wasm: with workers, the weights stepped here reach every worker", async () => {
  // Large enough for the backend to split the batch over its workers (two on two cores).
  const make = (backend: Backend) => {
    const lstm = new ArrayLSTM(16, 64, 2, { backend, seed: 5 }).train();
    const opt = new Adam(lstm.parameters(), { lr: 1e-2 });
    return { lstm, opt };
  };
  const x = oneHot(
    Array.from(
      { length: 64 },
      (_, b) => Array.from({ length: 20 }, (_, t) => (b * 7 + t * 3) % 16),
    ),
    16,
  );
  const steps = async ({ lstm, opt }: ReturnType<typeof make>) => {
    const losses = [];
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      const { output } = await lstm.forward(x);
      const loss = nllLoss(logSoftmax(reshape(output, [64 * 20, 64])), new Array(64 * 20).fill(1));
      await loss.backward();
      opt.step();
      losses.push(loss.data[0]);
    }
    return losses;
  };
  const sent = WasmThread.prototype.setWeights;
  let broadcasts = 0;
  WasmThread.prototype.setWeights = function (this: WasmThread, params) {
    broadcasts++;
    return sent.call(this, params);
  };
  const wasm = make("wasm"), js = make("js");
  try {
    assertClose(await steps(wasm), await steps(js), STEPPED, "losses");
  } finally {
    WasmThread.prototype.setWeights = sent;
  }
  if (navigator.hardwareConcurrency > 1) assert.ok(broadcasts >= 3, `${broadcasts} broadcasts`);
  wasm.lstm.parameters().forEach((parameter, index) =>
    assertClose(
      parameter.value.data,
      js.lstm.parameters()[index].value.data,
      STEPPED,
      parameter.name,
    )
  );
  // Inference on the stepped weights (the kernels packed again, here and in the workers).
  using fresh = new ArrayLSTM(16, 64, 2, { backend: "wasm", seed: 9 });
  fresh.loadStateDict(wasm.lstm.stateDict());
  wasm.lstm.eval();
  assert.deepEqual((await wasm.lstm.forward(x)).output, (await fresh.forward(x)).output);
  wasm.lstm.dispose();
});

Deno.test("wasm: two optimizers over one layer keep their own state", async () => {
  const runs = (["js", "wasm"] as const).map((backend) => {
    const run = model(backend, (p) => new Adam(p, { lr: 1e-2 }));
    return { run, other: new SGD(run.params, { lr: 0.1, momentum: 0.9 }) };
  });
  for (const { run, other } of runs) {
    await train(run, 2);
    await train({ ...run, opt: other }, 2); // takes the state in wasm memory over
    await train(run, 2); // Adam's own state comes back
  }
  const [reference, resident] = runs;
  resident.run.params.forEach((parameter, index) =>
    assertClose(
      parameter.value.data,
      reference.run.params[index].value.data,
      STEPPED,
      parameter.name,
    )
  );
  for (const key of ["opt", "other"] as const) {
    const ours = key === "opt" ? resident.run.opt : resident.other;
    const theirs = key === "opt" ? reference.run.opt : reference.other;
    ours.stateDict().state.forEach((state, index) => {
      for (const [name, value] of Object.entries(state!)) {
        const expected = theirs.stateDict().state[index]![name];
        if (typeof value === "number") assert.equal(value, expected);
        else assertClose(value.data, (expected as typeof value).data, STEPPED, `${key} ${name}`);
      }
    });
  }
  resident.run.lstm.dispose();
});
