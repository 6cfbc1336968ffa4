import assert from "node:assert/strict";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  LSTM,
  randn,
  Random,
  StochasticArrayLSTM,
  uniform,
} from "../mod.ts";
import { describe } from "../src/errors.ts";

function draws(random: Random, count: number): number[] {
  return Array.from({ length: count }, () => random.nextUint32());
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

function variance(values: ArrayLike<number>): number {
  const center = mean(values);
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += (values[i] - center) ** 2;
  return sum / values.length;
}

/** One model of each class with the given seed, on the js backend. */
function modelsWithSeed(seed: number): LSTM[] {
  const options = { backend: "js", seed } as const;
  return [
    new LSTM(3, 16, options),
    new ArrayLSTM(3, 16, 2, options),
    new AttentionArrayLSTM(3, 16, 2, options),
    new StochasticArrayLSTM(3, 16, 2, options),
  ];
}

Deno.test("Random with the same seed gives the same stream", () => {
  assert.deepEqual(draws(new Random(7), 1000), draws(new Random(7), 1000));
  assert.notDeepEqual(draws(new Random(7), 10), draws(new Random(8), 10));
  const a = new Random(7), b = new Random(7);
  assert.deepEqual(
    Array.from({ length: 100 }, () => a.normal()),
    Array.from({ length: 100 }, () => b.normal()),
  );
});

Deno.test("Random gives pinned values on every platform and engine", () => {
  const pinned: [number, number[]][] = [
    [0, [3737715805, 2584255861, 2876756834, 3286328325]],
    [42, [1776835114, 4165204688, 17111135, 2317295270]],
    [-1, [477689756, 2493998634, 555695776, 607808419]],
    [2 ** 40, [4134667975, 860967323, 86803246, 1890533205]],
  ];
  for (const [seed, expected] of pinned) {
    assert.deepEqual(draws(new Random(seed), 4), expected, `seed ${seed}`);
  }
});

Deno.test("Random.uniform lies in [0, 1) and Random.normal is finite", () => {
  const random = new Random(3);
  for (let i = 0; i < 10000; i++) {
    const u = random.uniform();
    assert.ok(u >= 0 && u < 1, `uniform() gave ${u}`);
    assert.ok(Number.isFinite(random.normal()));
  }
});

Deno.test("uniform fills the shape with numbers in [low, high) around their midpoint", () => {
  const small = uniform([2, 3, 4], { low: -2, high: 6, seed: 1 });
  assert.deepEqual(small.shape, [2, 3, 4]);
  assert.equal(small.data.length, 24);
  const large = uniform([100000], { low: -2, high: 6, seed: 1 });
  assert.ok(large.data.every((value) => value >= -2 && value < 6));
  assert.ok(Math.abs(mean(large.data) - 2) < 0.05, `mean ${mean(large.data)}`);
  const unit = uniform([100000], { seed: 2 });
  assert.ok(unit.data.every((value) => value >= 0 && value < 1));
  assert.ok(Math.abs(mean(unit.data) - 0.5) < 0.01, `mean ${mean(unit.data)}`);
  assert.ok(uniform([10], { low: 3, high: 3, seed: 1 }).data.every((value) => value === 3));
});

Deno.test("uniform and randn are reproducible from a seed and continue a Random", () => {
  assert.deepEqual(uniform([50], { seed: 9 }), uniform([50], { seed: 9 }));
  assert.deepEqual(randn([50], { seed: 9 }), randn([50], { seed: 9 }));
  const random = new Random(9);
  const first = uniform([50], { seed: random });
  assert.deepEqual(first, uniform([50], { seed: 9 }));
  assert.notDeepEqual(uniform([50], { seed: random }), first, "the generator moved on");
});

Deno.test("randn has mean about 0 and variance about 1", () => {
  const { shape, data } = randn([100, 1000], { seed: 5 });
  assert.deepEqual(shape, [100, 1000]);
  assert.ok(Math.abs(mean(data)) < 0.02, `mean ${mean(data)}`);
  assert.ok(Math.abs(variance(data) - 1) < 0.03, `variance ${variance(data)}`);
});

Deno.test("Random rejects seeds that are not safe integers, naming the seed", () => {
  for (const [seed, shown] of [[1.5, "1.5"], [NaN, "NaN"], [2 ** 60, String(2 ** 60)]] as const) {
    const message = new RegExp(`seed must be a safe integer, got ${shown}`);
    assert.throws(() => new Random(seed), { name: "RangeError", message });
    assert.throws(() => uniform([2], { seed }), { name: "RangeError", message });
    assert.throws(() => randn([2], { seed }), { name: "RangeError", message });
  }
});

Deno.test("uniform rejects bounds that are not finite with low <= high, naming both", () => {
  const cases: [number, number, string][] = [
    [2, 1, "low 2, high 1"],
    [NaN, 1, "low NaN, high 1"],
    [0, Infinity, "low 0, high Infinity"],
    [-Infinity, 0, "low -Infinity, high 0"],
  ];
  for (const [low, high, shown] of cases) {
    assert.throws(() => uniform([2], { low, high, seed: 1 }), {
      name: "RangeError",
      message: new RegExp(`uniform needs finite low <= high, got ${shown}`),
    });
  }
});

Deno.test("uniform and randn reject invalid shapes, naming the shape", () => {
  for (const shape of [[0.5, 4], [NaN], [-1], [2, -3]]) {
    const message = /shape\[\d\] must be a non-negative integer/;
    const problem = `${describe(shape)} is accepted or fails without naming the shape`;
    assert.throws(() => uniform(shape, { seed: 1 }), { name: "RangeError", message }, problem);
    assert.throws(() => randn(shape, { seed: 1 }), { name: "RangeError", message }, problem);
  }
});

Deno.test("models with the same seed have identical weights, other seeds differ", () => {
  const first = modelsWithSeed(123), again = modelsWithSeed(123), other = modelsWithSeed(124);
  first.forEach((model, i) => {
    const name = model.constructor.name;
    assert.equal(model.seed, 123);
    assert.deepEqual(model.stateDict(), again[i].stateDict(), name);
    for (const [key, { data }] of Object.entries(model.stateDict())) {
      assert.notDeepEqual(data, other[i].stateDict()[key].data, `${name} ${key}`);
    }
  });
});

Deno.test("model weights lie in ±1/sqrt(fan_in) like nn.Linear and fill that range", () => {
  const I = 3, H = 16;
  const fanIn: Record<string, number> = { i2h: I, h2h: H, i2a: I };
  for (const model of modelsWithSeed(77)) {
    for (const [key, { data }] of Object.entries(model.stateDict())) {
      const bound = 1 / Math.sqrt(fanIn[key.split(".")[0]]);
      const largest = data.reduce((worst, value) => Math.max(worst, Math.abs(value)), 0);
      const where = `${model.constructor.name} ${key}`;
      assert.ok(largest <= bound * (1 + 2 ** -23), `${where}: |w| = ${largest} > ${bound}`);
      // Enough samples come close to the bound that a smaller range would be caught.
      if (data.length >= 48) assert.ok(largest > 0.9 * bound, `${where}: |w| <= ${largest}`);
    }
  }
});
