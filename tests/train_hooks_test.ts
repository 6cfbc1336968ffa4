/**
 * Training through overridden hooks: the step-by-step path records every step, so a subclass
 * whose hooks are built from the differentiable ops trains. Hooks that reproduce the built-in
 * classes give the fused path's gradients; different hooks match finite differences; an
 * optimizer step moves the weights; a hook computed on raw arrays is refused at forward time.
 */

import assert from "node:assert/strict";
import {
  add,
  ArrayLSTM,
  AttentionArrayLSTM,
  LSTM,
  type LSTMOptions,
  mul,
  randn,
  type RecurrentState,
  requiresGrad,
  SGD,
  split,
  StochasticArrayLSTM,
  sum,
  tanh,
  type Tensor,
  tensor,
  type TrackedTensor,
} from "../mod.ts";
import { assertClose, ofLargest, TOLERANCE } from "./_assert.ts";
import { CPU_BACKENDS } from "./_backends.ts";
const [B, T, I, H] = [2, 4, 3, 4];

/** `Σ_j o_j·tanh(c_j)` from the functional ops, lane 0 first (the built-in readout). */
function laneSum(outputs: Tensor, states: Tensor): TrackedTensor {
  const lanes = split(mul(outputs, tanh(states)), new Array(states.shape[0]).fill(1), 0);
  return lanes.reduce((total, lane) => add(total, lane));
}

/** A constant tensor of `shape` filled with `value`. */
function filled(shape: readonly number[], value: number): Tensor {
  return tensor(new Array(shape.reduce((a, b) => a * b, 1)).fill(value), [...shape]);
}

// Subclasses whose overrides reproduce the built-in behaviour.
class SameLSTM extends LSTM {
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return this.stepCells(x, hidden, state, null, (outputs, states) => mul(outputs, tanh(states)));
  }
}
class SameArray extends ArrayLSTM {
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    return laneSum(outputs, states);
  }
}
class SameAttention extends AttentionArrayLSTM {
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return super.forwardCell(x, hidden, state);
  }
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    return laneSum(outputs, states);
  }
}
class SameStochastic extends StochasticArrayLSTM {
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    return super.updateHidden(outputs, states);
  }
}

// Subclasses with genuinely different hooks.
class CellOut extends LSTM {
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return this.stepCells(x, hidden, state, null, (_outputs, states) => states);
  }
}
class HalfReadout extends ArrayLSTM {
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    const hidden = super.updateHidden(outputs, states);
    return mul(hidden, filled(hidden.shape, 0.5));
  }
}
class CellSumAttention extends AttentionArrayLSTM {
  override updateHidden(_outputs: Tensor, states: Tensor): Tensor {
    const lanes = split(states, new Array(states.shape[0]).fill(1), 0);
    return tanh(lanes.reduce((total, lane) => add(total, lane)));
  }
}
class LaneZeroStochastic extends StochasticArrayLSTM {
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return this.stepCells(x, hidden, state, null, (outputs, states) => {
      const k = states.shape[0];
      const [o] = split(outputs, [1, k - 1], 0), [c] = split(states, [1, k - 1], 0);
      return add(mul(o, tanh(c)), super.updateHidden(outputs, states));
    });
  }
}

interface Case {
  readonly name: string;
  readonly make: (options: LSTMOptions) => LSTM;
}

const SAME: readonly (Case & { readonly builtin: (options: LSTMOptions) => LSTM })[] = [
  {
    name: "LSTM",
    make: (o) => new SameLSTM(I, H, o),
    builtin: (o) => new LSTM(I, H, o),
  },
  {
    name: "ArrayLSTM",
    make: (o) => new SameArray(I, H, 3, o),
    builtin: (o) => new ArrayLSTM(I, H, 3, o),
  },
  {
    name: "AttentionArrayLSTM",
    make: (o) => new SameAttention(I, H, 3, o),
    builtin: (o) => new AttentionArrayLSTM(I, H, 3, o),
  },
  {
    name: "AttentionArrayLSTM with maxPooling",
    make: (o) => new SameAttention(I, H, 2, { ...o, maxPooling: true }),
    builtin: (o) => new AttentionArrayLSTM(I, H, 2, { ...o, maxPooling: true }),
  },
  {
    name: "StochasticArrayLSTM",
    make: (o) => new SameStochastic(I, H, 3, o),
    builtin: (o) => new StochasticArrayLSTM(I, H, 3, o),
  },
];

const DIFFERENT: readonly Case[] = [
  { name: "LSTM whose hidden state is the cell state", make: (o) => new CellOut(I, H, o) },
  { name: "ArrayLSTM with a halved readout", make: (o) => new HalfReadout(I, H, 3, o) },
  {
    name: "AttentionArrayLSTM reading tanh(Σ c)",
    make: (o) => new CellSumAttention(I, H, 2, { ...o, maxPooling: true }),
  },
  {
    name: "StochasticArrayLSTM adding lane 0",
    make: (o) => new LaneZeroStochastic(I, H, 3, o),
  },
];

/** The inputs of a run: `x`, and a non-zero initial state for `model`. */
function inputsOf(model: LSTM): { x: Tensor; hidden: Tensor; state: Tensor } {
  return {
    x: randn([B, T, I], { seed: 11 }),
    hidden: mul(randn([1, B, H], { seed: 12 }), filled([1, B, H], 0.5)),
    state: mul(randn([model.k, B, H], { seed: 13 }), filled([model.k, B, H], 0.5)),
  };
}

/** A scalar that every output, the final hidden state and the final cells reach. */
async function lossOf(
  model: LSTM,
  inputs: { x: Tensor; hidden: Tensor; state: Tensor },
  lengths?: number[],
): Promise<TrackedTensor> {
  const { x, hidden, state } = inputs;
  const result = await model.forward(x, { hidden, state, ...(lengths ? { lengths } : {}) });
  return add(
    add(
      sum(mul(result.output, randn([B, T, H], { seed: 21 }))),
      sum(mul(result.hidden, randn([1, B, H], { seed: 22 }))),
    ),
    sum(mul(result.state, randn([model.k, B, H], { seed: 23 }))),
  );
}

/** The gradients of the loss to every parameter, `x`, and the initial state. */
async function gradientsOf(model: LSTM, lengths?: number[]): Promise<Record<string, Float32Array>> {
  const plain = inputsOf(model);
  const x = requiresGrad(plain.x), hidden = requiresGrad(plain.hidden);
  const state = requiresGrad(plain.state);
  model.train();
  const loss = await lossOf(model, { x, hidden, state }, lengths);
  assert.ok(loss.requiresGrad);
  await loss.backward();
  return {
    ...Object.fromEntries(model.parameters().map((p) => [p.name, p.grad!.data])),
    x: x.grad!.data,
    hidden: hidden.grad!.data,
    state: state.grad!.data,
  };
}

/** Each entry within `1e-4` of the largest entry of the expected tensor (float32 rounding). */
function assertGradientsClose(
  actual: Record<string, Float32Array>,
  expected: Record<string, Float32Array>,
): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    assert.ok(
      want.some((v) => v !== 0),
      `${name}: the gradient is zero, the test would prove nothing`,
    );
    assertClose(actual[name], want, ofLargest(1e-4), name);
  }
}

for (const backend of CPU_BACKENDS) {
  for (const { name, make, builtin } of SAME) {
    Deno.test(`${backend}: ${name} through its hooks has the fused path's gradients`, async () => {
      using hooks = make({ backend, seed: 5 });
      using fused = builtin({ backend, seed: 5 });
      assertGradientsClose(await gradientsOf(hooks), await gradientsOf(fused));
    });
  }

  Deno.test(`${backend}: hook gradients match the fused path's with lengths`, async () => {
    using hooks = new SameArray(I, H, 2, { backend, seed: 6 });
    using fused = new ArrayLSTM(I, H, 2, { backend, seed: 6 });
    assertGradientsClose(await gradientsOf(hooks, [T, 2]), await gradientsOf(fused, [T, 2]));
  });
}

/**
 * The loss's derivative along a random direction of each tensor (parameters through
 * `loadStateDict`, `x` and the initial state), by central differences of the float32 forward,
 * against the tape's gradient.
 */
for (const { name, make } of DIFFERENT) {
  Deno.test(`${name}: gradients match finite differences`, async () => {
    const model = make({ backend: "js", seed: 7 });
    const grads = await gradientsOf(model);
    const weights = model.stateDict();
    const inputs = inputsOf(model);
    const tensors: Record<string, Tensor> = { ...weights, ...inputs };
    model.eval();
    // Small enough that no stochastic lane choice or max-pooled lane flips along the way.
    const step = 1e-3;
    for (const [key, value] of Object.entries(tensors)) {
      const direction = randn([...value.shape], { seed: 31 });
      const moved = (sign: number): Tensor => ({
        shape: value.shape,
        data: value.data.map((v, i) => v + sign * step * direction.data[i]),
      });
      const lossAt = async (sign: number): Promise<number> => {
        const changed = { ...tensors, [key]: moved(sign) };
        model.loadStateDict(Object.fromEntries(Object.keys(weights).map((n) => [n, changed[n]])));
        const { x, hidden, state } = changed;
        return (await lossOf(model, { x, hidden, state })).data[0];
      };
      const numeric = (await lossAt(1) - await lossAt(-1)) / (2 * step);
      const analytic = grads[key].reduce((total, g, i) => total + g * direction.data[i], 0);
      assertClose([analytic], [numeric], TOLERANCE.float32FiniteDifference, `${key}: tape`);
    }
    model.loadStateDict(weights);
  });
}

for (const backend of CPU_BACKENDS) {
  Deno.test(`${backend}: an SGD step moves a hook subclass's weights by -lr·grad`, async () => {
    using model = new HalfReadout(I, H, 2, { backend, seed: 8 });
    const before = model.stateDict();
    const grads = await gradientsOf(model);
    const opt = new SGD(model.parameters(), { lr: 0.1 });
    opt.step();
    const after = model.stateDict();
    for (const [key, value] of Object.entries(before)) {
      after[key].data.forEach((v, i) => {
        assert.equal(v, Math.fround(value.data[i] - 0.1 * grads[key][i]), key);
      });
    }
    // The next forward runs the new weights: the same as a fresh model loaded with them.
    using fresh = new HalfReadout(I, H, 2, { backend, seed: 1 });
    fresh.loadStateDict(after);
    const x = inputsOf(model).x;
    assert.deepEqual(
      (await model.eval().forward(x)).output.data,
      (await fresh.forward(x)).output.data,
    );
  });
}

Deno.test("a few SGD steps lower the loss through the hooks", async () => {
  using model = new CellOut(I, H, { backend: "js", seed: 9 });
  const opt = new SGD(model.parameters(), { lr: 0.05 });
  model.train();
  const losses: number[] = [];
  for (let i = 0; i < 5; i++) {
    opt.zeroGrad();
    const loss = await lossOf(model, inputsOf(model));
    losses.push(loss.data[0]);
    await loss.backward();
    opt.step();
  }
  assert.ok(losses[4] < losses[0], `losses ${losses}`);
});

Deno.test("a hook computed on raw arrays is refused at forward time, naming the hook", async () => {
  class RawReadout extends ArrayLSTM {
    override updateHidden(outputs: Tensor, states: Tensor): Tensor {
      const hidden = super.updateHidden(outputs, states);
      return { shape: hidden.shape, data: hidden.data.map((v) => 2 * v) };
    }
  }
  class RawCell extends LSTM {
    override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
      const next = super.forwardCell(x, hidden, state);
      return { hidden: { shape: next.hidden.shape, data: next.hidden.data.slice() }, state };
    }
  }
  const x = randn([B, T, I], { seed: 1 });
  const readout = new RawReadout(I, H, 2, { backend: "js", seed: 1 });
  const cell = new RawCell(I, H, { backend: "js", seed: 1 });
  // Inference records nothing: raw arrays are fine there.
  assert.equal((await readout.forward(x)).output.requiresGrad, false);
  assert.equal((await cell.forward(x)).output.requiresGrad, false);
  await assert.rejects(
    () => readout.train().forward(x),
    /RawReadout\.updateHidden\(outputs, states\) returned a tensor without history while recording .*differentiable ops.*or call eval\(\)/,
  );
  await assert.rejects(
    () => cell.train().forward(x),
    /RawCell\.forwardCell at step 0 \(its hidden\) returned a tensor without history/,
  );
  // An input with history records in eval() too.
  await assert.rejects(
    () => cell.eval().forward(requiresGrad(x)),
    /RawCell\.forwardCell at step 0 \(its hidden\)/,
  );
});

Deno.test("eval(): a hook subclass passes gradients to x, not to its parameters", async () => {
  const model = new SameAttention(I, H, 2, { backend: "js", seed: 3 });
  const x = requiresGrad(randn([B, T, I], { seed: 2 }));
  const { output } = await model.forward(x);
  await sum(output).backward();
  assert.ok(x.grad!.data.some((v) => v !== 0));
  assert.ok(model.parameters().every((p) => p.grad === null));
});
