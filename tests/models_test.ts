import assert from "node:assert/strict";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  type ForwardResult,
  LSTM,
  randn,
  type RecurrentState,
  StochasticArrayLSTM,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import { absolute, assertClose, TOLERANCE } from "./_assert.ts";

const I = 3, H = 5, B = 2, T = 6;

/** One model of each class (attention with and without max pooling), `k` lanes, on "js". */
function everyModel(k = 3, seed = 1): LSTM[] {
  const options = { backend: "js", seed } as const;
  return [
    new LSTM(I, H, options),
    new ArrayLSTM(I, H, k, options),
    new AttentionArrayLSTM(I, H, k, options),
    new AttentionArrayLSTM(I, H, k, { ...options, maxPooling: true }),
    new StochasticArrayLSTM(I, H, k, options),
  ];
}

function nameOf(model: LSTM): string {
  return model.constructor.name +
    (model instanceof AttentionArrayLSTM && model.maxPooling ? " (maxPooling)" : "");
}

function copyOf(t: Tensor): Tensor {
  return { shape: [...t.shape], data: t.data.slice() };
}

function filled(shape: number[], value: number): Tensor {
  const t = zeros(shape);
  t.data.fill(value);
  return t;
}

function scaled(t: Tensor, factor: number): Tensor {
  return tensor(t.data.map((value) => value * factor), t.shape);
}

/** Step `t` of `x (B, T, I)`, as `(B, I)`. */
function stepOf(x: Tensor, t: number): Tensor {
  const [batch, seqLen, inputSize] = x.shape;
  const step = new Float32Array(batch * inputSize);
  for (let b = 0; b < batch; b++) {
    step.set(
      x.data.subarray((b * seqLen + t) * inputSize, (b * seqLen + t + 1) * inputSize),
      b * inputSize,
    );
  }
  return tensor(step, [batch, inputSize]);
}

/** `a (B, Ta, I)` followed by `b (B, Tb, I)` in time. */
function concatSteps(a: Tensor, b: Tensor): Tensor {
  const [batch, ta, inputSize] = a.shape, tb = b.shape[1];
  const data = new Float32Array(batch * (ta + tb) * inputSize);
  for (let row = 0; row < batch; row++) {
    data.set(
      a.data.subarray(row * ta * inputSize, (row + 1) * ta * inputSize),
      row * (ta + tb) * inputSize,
    );
    data.set(
      b.data.subarray(row * tb * inputSize, (row + 1) * tb * inputSize),
      (row * (ta + tb) + ta) * inputSize,
    );
  }
  return tensor(data, [batch, ta + tb, inputSize]);
}

/** The reference's step loop, written with the public hooks `initHidden` and `forwardCell`. */
function forwardByHand(
  model: LSTM,
  x: Tensor,
  init?: RecurrentState,
): Result {
  const [batch, seqLen] = x.shape;
  const output = new Float32Array(batch * seqLen * model.hiddenSize);
  let { hidden, state } = init ?? model.initHidden(x);
  for (let t = 0; t < seqLen; t++) {
    ({ hidden, state } = model.forwardCell(stepOf(x, t), hidden, state));
    for (let b = 0; b < batch; b++) {
      const row = hidden.data.subarray(b * model.hiddenSize, (b + 1) * model.hiddenSize);
      output.set(row, (b * seqLen + t) * model.hiddenSize);
    }
  }
  return { output: tensor(output, [batch, seqLen, model.hiddenSize]), hidden, state };
}

type Result = RecurrentState & { output: Tensor };

function assertSameResult(actual: Result, expected: Result, label: string): void {
  assert.deepEqual(actual.output, expected.output, `${label}: output`);
  assert.deepEqual(actual.hidden, expected.hidden, `${label}: hidden`);
  assert.deepEqual(actual.state, expected.state, `${label}: state`);
}

class MeanLanes extends ArrayLSTM {
  /** The mean over the lanes instead of the sum. */
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    return scaled(super.updateHidden(outputs, states), 1 / this.k);
  }
}

class HalvedHidden extends LSTM {
  /** The LSTM step with the hidden state halved. */
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    const next = super.forwardCell(x, hidden, state);
    return { hidden: scaled(next.hidden, 0.5), state: next.state };
  }
}

class WarmStart extends ArrayLSTM {
  /** A non-zero initial state. */
  override initHidden(x: Tensor): RecurrentState {
    const batch = x.shape[0];
    return {
      hidden: filled([1, batch, this.hiddenSize], 0.5),
      state: filled([this.k, batch, this.hiddenSize], -0.25),
    };
  }
}

Deno.test("forward returns output (B, T, H), hidden (1, B, H) and state (k, B, H)", async () => {
  const x = randn([B, T, I], { seed: 1 });
  for (const model of everyModel(3)) {
    const { output, hidden, state } = await model.forward(x);
    const k = model instanceof ArrayLSTM ? 3 : 1;
    assert.equal(model.k, k, nameOf(model));
    assert.deepEqual(output.shape, [B, T, H], nameOf(model));
    assert.deepEqual(hidden.shape, [1, B, H], nameOf(model));
    assert.deepEqual(state.shape, [k, B, H], nameOf(model));
    for (const t of [output, hidden, state]) {
      assert.ok(t.data instanceof Float32Array, nameOf(model));
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b), nameOf(model));
      assert.ok(t.data.every(Number.isFinite), nameOf(model));
    }
    assert.ok(output.data.some((value) => value !== 0), `${nameOf(model)} computes something`);
  }
});

Deno.test("stateDict has the PyTorch names and shapes of every class", () => {
  const k = 3, rows = 4 * k * H;
  const array = {
    "i2h.weight": [rows, I],
    "i2h.bias": [rows],
    "h2h.weight": [rows, H],
    "h2h.bias": [rows],
  };
  const expected = [
    {
      "i2h.weight": [4 * H, I],
      "i2h.bias": [4 * H],
      "h2h.weight": [4 * H, H],
      "h2h.bias": [4 * H],
    },
    array,
    { ...array, "i2a.weight": [k * H, I], "i2a.bias": [k * H] },
    { ...array, "i2a.weight": [k * H, I], "i2a.bias": [k * H] },
    array,
  ];
  everyModel(k).forEach((model, i) => {
    const shapes = Object.fromEntries(
      Object.entries(model.stateDict()).map(([name, t]) => [name, t.shape]),
    );
    assert.deepEqual(shapes, expected[i], nameOf(model));
  });
});

Deno.test("hidden is the last step of output", async () => {
  const x = randn([B, T, I], { seed: 2 });
  for (const model of everyModel(2)) {
    const { output, hidden } = await model.forward(x);
    for (let b = 0; b < B; b++) {
      assert.deepEqual(
        hidden.data.subarray(b * H, (b + 1) * H),
        output.data.subarray((b * T + T - 1) * H, (b * T + T) * H),
        `${nameOf(model)} row ${b}`,
      );
    }
  }
});

Deno.test("continuing from a returned state equals one forward over the joined sequence", async () => {
  const first = randn([B, 4, I], { seed: 3 }), second = randn([B, 3, I], { seed: 4 });
  for (const model of everyModel(3)) {
    const whole = await model.forward(concatSteps(first, second));
    const head = await model.forward(first);
    const tail = await model.forward(second, { hidden: head.hidden, state: head.state });
    assert.deepEqual(tail.hidden, whole.hidden, nameOf(model));
    assert.deepEqual(tail.state, whole.state, nameOf(model));
    assert.deepEqual(concatSteps(head.output, tail.output), whole.output, nameOf(model));
  }
});

Deno.test("forward and loadStateDict never modify the caller's tensors", async () => {
  const x = randn([B, T, I], { seed: 5 });
  // MeanLanes runs step by step through the hooks, the others through the fused kernels.
  const models = [...everyModel(2), new MeanLanes(I, H, 2, { backend: "js", seed: 1 })];
  const others = [...everyModel(2, 9), new MeanLanes(I, H, 2, { backend: "js", seed: 9 })];
  for (const [i, model] of models.entries()) {
    const init = {
      hidden: randn([1, B, H], { seed: 6 }),
      state: randn([model.k, B, H], { seed: 7 }),
    };
    const record = others[i].stateDict();
    const before = { x: copyOf(x), hidden: copyOf(init.hidden), state: copyOf(init.state) };
    const recordBefore = Object.fromEntries(
      Object.entries(record).map(([name, t]) => [name, copyOf(t)]),
    );
    model.loadStateDict(record);
    await model.forward(x, init);
    await model.forward(x);
    assert.deepEqual({ x, hidden: init.hidden, state: init.state }, before, nameOf(model));
    assert.deepEqual(record, recordBefore, nameOf(model));
  }
});

Deno.test("loadStateDict copies the record: changing it afterwards leaves the model alone", async () => {
  const x = randn([B, T, I], { seed: 8 });
  for (const model of everyModel(2)) {
    const record = model.stateDict();
    model.loadStateDict(record);
    const expected = await model.forward(x);
    for (const t of Object.values(record)) t.data.fill(7);
    assert.notDeepEqual(model.stateDict(), record, nameOf(model));
    assertSameResult(await model.forward(x), expected, nameOf(model));
  }
});

Deno.test("stateDict returns copies: changing them leaves the model alone", async () => {
  const x = randn([B, T, I], { seed: 10 });
  for (const model of everyModel(2)) {
    const expected = await model.forward(x);
    const weights = model.stateDict();
    const copy = Object.fromEntries(Object.entries(weights).map(([name, t]) => [name, copyOf(t)]));
    for (const t of Object.values(weights)) {
      t.data.fill(3);
      (t.shape as number[]).push(1);
    }
    assert.deepEqual(model.stateDict(), copy, nameOf(model));
    assertSameResult(await model.forward(x), expected, nameOf(model));
  }
});

Deno.test("loadStateDict changes what a compiled model computes", async () => {
  const x = randn([B, T, I], { seed: 11 });
  const others = everyModel(3, 2);
  for (const [i, model] of everyModel(3, 1).entries()) {
    const before = await model.forward(x);
    model.loadStateDict(others[i].stateDict());
    const after = await model.forward(x);
    assert.notDeepEqual(after.output, before.output, nameOf(model));
    assertSameResult(after, await others[i].forward(x), nameOf(model));
  }
});

Deno.test("ArrayLSTM and StochasticArrayLSTM with k = 1 equal LSTM exactly", async () => {
  const x = randn([B, T, I], { seed: 12 });
  const init = { hidden: randn([1, B, H], { seed: 13 }), state: randn([1, B, H], { seed: 14 }) };
  const lstm = new LSTM(I, H, { backend: "js", seed: 5 });
  for (
    const model of [
      new ArrayLSTM(I, H, 1, { backend: "js" }),
      new StochasticArrayLSTM(I, H, 1, { backend: "js" }),
    ]
  ) {
    model.loadStateDict(lstm.stateDict());
    assertSameResult(await model.forward(x), await lstm.forward(x), nameOf(model));
    assertSameResult(
      await model.forward(x, init),
      await lstm.forward(x, init),
      `${nameOf(model)} from init`,
    );
  }
  // The same seed draws the same weights, since the parameter shapes agree at k = 1.
  assert.deepEqual(new ArrayLSTM(I, H, 1, { seed: 5 }).stateDict(), lstm.stateDict());
});

Deno.test("stepping forwardCell by hand reproduces forward for every class", async () => {
  const x = randn([B, T, I], { seed: 15 });
  const init = { hidden: randn([1, B, H], { seed: 16 }), state: randn([3, B, H], { seed: 17 }) };
  for (const model of everyModel(3)) {
    const start = model.k === 3
      ? init
      : { hidden: init.hidden, state: randn([1, B, H], { seed: 17 }) };
    const fused = await model.forward(x, start);
    const byHand = forwardByHand(model, x, start);
    // The fused kernels fold the h2h bias into the input projection: float32 rounding differs.
    for (const key of ["output", "hidden", "state"] as const) {
      assertClose(fused[key], byHand[key], TOLERANCE.reordered, `${nameOf(model)} ${key}`);
    }
  }
});

Deno.test("a subclass that overrides no hook computes exactly what its base class does", async () => {
  // Bit-exact: the step-by-step hook path would round differently from the fused kernels.
  class Renamed extends StochasticArrayLSTM {}
  const x = randn([B, T, I], { seed: 25 });
  const expected = await new StochasticArrayLSTM(I, H, 3, { backend: "js", seed: 2 }).forward(x);
  assertSameResult(
    await new Renamed(I, H, 3, { backend: "js", seed: 2 }).forward(x),
    expected,
    "Renamed",
  );
});

Deno.test("an overridden updateHidden (mean over lanes) divides the first step's sum by k", async () => {
  const k = 4, x = randn([B, 1, I], { seed: 18 });
  const mean = new MeanLanes(I, H, k, { backend: "js", seed: 3 });
  const sum = new ArrayLSTM(I, H, k, { backend: "js", seed: 3 });
  const { output } = await mean.forward(x);
  const summed = sum.forwardCell(stepOf(x, 0), zeros([1, B, H]), zeros([k, B, H])).hidden;
  // Dividing by k = 4 is exact in binary floating point.
  assert.deepEqual(output.data, scaled(summed, 1 / k).data);
  assertClose(
    output,
    scaled((await sum.forward(x)).output, 1 / k),
    absolute(1e-7),
    "against the fused sum",
  );
});

Deno.test("an overridden updateHidden changes what forward computes", async () => {
  const x = randn([B, T, I], { seed: 19 });
  const mean = new MeanLanes(I, H, 3, { backend: "js", seed: 3 });
  const result = await mean.forward(x);
  assert.notDeepEqual(
    result.output,
    (await new ArrayLSTM(I, H, 3, { backend: "js", seed: 3 }).forward(x)).output,
  );
  assertSameResult(result, forwardByHand(mean, x), "MeanLanes");
});

Deno.test("an overridden forwardCell is what forward runs", async () => {
  const x = randn([B, T, I], { seed: 20 });
  const halved = new HalvedHidden(I, H, { backend: "js", seed: 4 });
  const plain = new LSTM(I, H, { backend: "js", seed: 4 });
  const result = await halved.forward(x);
  assertSameResult(result, forwardByHand(halved, x), "HalvedHidden");
  const firstStep = plain.forwardCell(stepOf(x, 0), zeros([1, B, H]), zeros([1, B, H]));
  assert.deepEqual(
    result.output.data.subarray(0, H),
    scaled(firstStep.hidden, 0.5).data.subarray(0, H),
  );
  assert.notDeepEqual(result.output, (await plain.forward(x)).output);
});

Deno.test("an overridden initHidden is the state forward starts from when init is omitted", async () => {
  const x = randn([B, T, I], { seed: 21 });
  const warm = new WarmStart(I, H, 3, { backend: "js", seed: 6 });
  const start = warm.initHidden(x);
  const result = await warm.forward(x);
  assertSameResult(result, await warm.forward(x, start), "WarmStart");
  assert.notDeepEqual(
    result.output,
    (await warm.forward(x, { hidden: zeros([1, B, H]), state: zeros([3, B, H]) })).output,
  );
  const plain = new ArrayLSTM(I, H, 3, { backend: "js", seed: 6 });
  assertClose(
    result.output,
    (await plain.forward(x, start)).output,
    TOLERANCE.reordered,
    "against ArrayLSTM from that state",
  );
});

Deno.test("a hook returning the wrong shape gives a RangeError naming the hook and step", async () => {
  const x = randn([B, T, I], { seed: 22 });
  class FlatAtStep2 extends ArrayLSTM {
    #step = 0;
    override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
      const next = super.forwardCell(x, hidden, state);
      if (this.#step++ !== 2) return next;
      return { hidden: tensor(next.hidden.data, [B, H]), state: next.state };
    }
  }
  await assert.rejects(() => new FlatAtStep2(I, H, 3, { backend: "js" }).forward(x), {
    name: "RangeError",
    message:
      /forwardCell at step 2\.hidden has the wrong rank \(expected 3, got 2\): expected \(1, batch, hiddenSize\) = \[1, 2, 5\], got \[2, 5\]/,
  });
  class WrongLanes extends ArrayLSTM {
    override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
      return { hidden: super.forwardCell(x, hidden, state).hidden, state: zeros([1, B, H]) };
    }
  }
  await assert.rejects(() => new WrongLanes(I, H, 3, { backend: "js" }).forward(x), {
    name: "RangeError",
    message:
      /forwardCell at step 0\.state has the wrong shape: expected \(k, batch, hiddenSize\) = \[3, 2, 5\], got \[1, 2, 5\]/,
  });
  class WrongStart extends ArrayLSTM {
    override initHidden(x: Tensor): RecurrentState {
      return { hidden: zeros([1, x.shape[0], H]), state: zeros([2, x.shape[0], H]) };
    }
  }
  await assert.rejects(() => new WrongStart(I, H, 3, { backend: "js" }).forward(x), {
    name: "RangeError",
    message:
      /initHidden\(x\)\.state has the wrong shape: expected \(k, batch, hiddenSize\) = \[3, 2, 5\], got \[2, 2, 5\]/,
  });
  class FlatReadout extends ArrayLSTM {
    override updateHidden(outputs: Tensor, states: Tensor): Tensor {
      const hidden = super.updateHidden(outputs, states);
      return tensor(hidden.data, hidden.shape.slice(1));
    }
  }
  await assert.rejects(() => new FlatReadout(I, H, 3, { backend: "js" }).forward(x), {
    name: "RangeError",
    message: /updateHidden\(outputs, states\) has the wrong rank \(expected 3, got 2\)/,
  });
  class NoState extends LSTM {
    override forwardCell(): RecurrentState {
      return undefined as unknown as RecurrentState;
    }
  }
  await assert.rejects(() => new NoState(I, H, { backend: "js" }).forward(x), {
    name: "TypeError",
    message: /forwardCell at step 0 must be \{ hidden, state \}, got undefined/,
  });
});

Deno.test('resolveBackend returns "js" for backend "js"', async () => {
  for (const model of everyModel(2)) {
    assert.equal(model.backend, "js");
    assert.equal(await model.resolveBackend(), "js", nameOf(model));
  }
});

Deno.test("dispose is final: a forward after it throws; one made before it finishes", async () => {
  const x = randn([B, T, I], { seed: 23 });
  for (const model of everyModel(2)) {
    const expected = await model.forward(x);
    const pending = model.forward(x);
    model.dispose();
    assertSameResult(await pending, expected, `${nameOf(model)} disposed while running`);
    model.dispose(); // twice: nothing
    await assert.rejects(
      model.forward(x),
      new RegExp(`^Error: this ${model.constructor.name} was disposed: .*create a new one`),
    );
  }
});

Deno.test("a model declared with using is disposed and its results stay valid", async () => {
  const x = randn([B, T, I], { seed: 24 });
  let result: ForwardResult;
  {
    using model = new ArrayLSTM(I, H, 2, { backend: "js", seed: 1 });
    result = await model.forward(x);
  }
  assert.deepEqual(result.output.shape, [B, T, H]);
  assert.ok(result.output.data.every(Number.isFinite));
});

Deno.test("every model class can be declared with using", async () => {
  const x = randn([B, T, I], { seed: 26 });
  for (const model of everyModel(2)) {
    using scoped = model;
    const { output } = await scoped.forward(x);
    assert.deepEqual(output.shape, [B, T, H], nameOf(model));
  }
});
