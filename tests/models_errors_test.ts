import assert from "node:assert/strict";
import { backendNames } from "../src/backends/select.ts";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  LSTM,
  type LSTMOptions,
  randn,
  StochasticArrayLSTM,
  type Tensor,
  zeros,
} from "../mod.ts";

type Make = (inputSize: number, hiddenSize: number, k: number, options?: LSTMOptions) => LSTM;

const CLASSES: Record<string, Make> = {
  LSTM: (I, H, _k, options) => new LSTM(I, H, options),
  ArrayLSTM: (I, H, k, options) => new ArrayLSTM(I, H, k, options),
  AttentionArrayLSTM: (I, H, k, options) => new AttentionArrayLSTM(I, H, k, options),
  StochasticArrayLSTM: (I, H, k, options) => new StochasticArrayLSTM(I, H, k, options),
};

/** Values that are not sizes, the error each gives, and how the message shows them. */
const BAD_SIZES: [unknown, "TypeError" | "RangeError", string][] = [
  [1.5, "RangeError", "1\\.5"],
  [0, "RangeError", "0"],
  [-3, "RangeError", "-3"],
  [NaN, "RangeError", "NaN"],
  ["3", "TypeError", 'string "3"'],
];

const I = 3, H = 4, B = 2, T = 5;

function arrayModel(k = 3): ArrayLSTM {
  return new ArrayLSTM(I, H, k, { backend: "js", seed: 1 });
}

function asNumber(value: unknown): number {
  return value as number;
}

Deno.test("constructors reject sizes that are not positive integers, naming the argument", () => {
  for (const [name, make] of Object.entries(CLASSES)) {
    for (const [value, error, shown] of BAD_SIZES) {
      const size = asNumber(value);
      const expected = (argument: string) => ({
        name: error,
        message: new RegExp(`^${argument} must be a positive integer, got ${shown}$`),
      });
      assert.throws(() => make(size, H, 2), expected("inputSize"), `${name} inputSize`);
      assert.throws(() => make(I, size, 2), expected("hiddenSize"), `${name} hiddenSize`);
      if (name !== "LSTM") assert.throws(() => make(I, H, size), expected("k"), `${name} k`);
    }
  }
});

Deno.test("constructors reject an unknown backend, listing the valid ones", () => {
  for (const make of Object.values(CLASSES)) {
    for (const backend of ["cuda", "JS", "", 1]) {
      assert.throws(() => make(I, H, 2, { backend: backend as "js" }), {
        name: "TypeError",
        message: new RegExp(
          `options\\.backend must be one of ${
            backendNames().map((n) => `"${n}"`).join(", ")
          }, got ${JSON.stringify(backend)}`,
        ),
      });
    }
  }
});

Deno.test("constructors reject seeds that are not safe integers, naming the seed", () => {
  const seeds: [unknown, string][] = [
    [1.5, "1\\.5"],
    [NaN, "NaN"],
    [2 ** 60, String(2 ** 60)],
    ["1", '"1"'],
  ];
  for (const make of Object.values(CLASSES)) {
    for (const [seed, shown] of seeds) {
      assert.throws(() => make(I, H, 2, { seed: asNumber(seed) }), {
        name: "RangeError",
        message: new RegExp(`options\\.seed must be a safe integer, got ${shown}`),
      });
    }
  }
});

Deno.test("constructors reject options that are not an object", () => {
  for (const make of Object.values(CLASSES)) {
    assert.throws(() => make(I, H, 2, null as unknown as LSTMOptions), {
      name: "TypeError",
      message: /options must be an object, got null/,
    });
  }
});

Deno.test("AttentionArrayLSTM rejects a maxPooling that is not a boolean", () => {
  for (const [maxPooling, shown] of [["yes", '"yes"'], [1, "1"], [0, "0"]] as const) {
    assert.throws(
      () => new AttentionArrayLSTM(I, H, 2, { maxPooling: maxPooling as unknown as boolean }),
      {
        name: "TypeError",
        message: new RegExp(`options\\.maxPooling must be a boolean, got ${shown}`),
      },
    );
  }
});

Deno.test("forward rejects x of the wrong rank, showing the expected and actual shapes", async () => {
  const model = arrayModel();
  await assert.rejects(() => model.forward(zeros([B, I])), {
    name: "RangeError",
    message:
      /x has the wrong rank \(expected 3, got 2\): .*\(batch, seqLen, inputSize\) = \[\*, \*, 3\], got \[2, 3\]/,
  });
  await assert.rejects(() => model.forward(zeros([B, T, I, 1])), {
    name: "RangeError",
    message: /x has the wrong rank \(expected 3, got 4\): .* = \[\*, \*, 3\], got \[2, 5, 3, 1\]/,
  });
});

Deno.test("forward rejects x with the wrong input size", async () => {
  await assert.rejects(() => arrayModel().forward(zeros([B, T, I + 2])), {
    name: "RangeError",
    message:
      /x has the wrong shape: expected \(batch, seqLen, inputSize\) = \[\*, \*, 3\], got \[2, 5, 5\]/,
  });
});

Deno.test("forward rejects an empty batch or an empty sequence", async () => {
  for (const shape of [[0, T, I], [B, 0, I]]) {
    await assert.rejects(() => arrayModel().forward(zeros(shape)), {
      name: "RangeError",
      message: new RegExp(
        `x must have at least one sequence and one step, got \\[${shape.join(", ")}\\]`,
      ),
    });
  }
});

Deno.test("forward rejects x that is not a tensor of float32 data fitting its shape", async () => {
  const model = arrayModel();
  const asTensor = (value: unknown) => value as Tensor;
  await assert.rejects(
    () => model.forward(asTensor({ shape: [1, 1, I], data: new Float64Array(I) })),
    {
      name: "TypeError",
      message: /x\.data must be a Float32Array, got \[object Float64Array\]/,
    },
  );
  await assert.rejects(() => model.forward(asTensor({ shape: [1, 1, I], data: [1, 2, 3] })), {
    name: "TypeError",
    message: /x\.data must be a Float32Array, got \[object Array\]/,
  });
  await assert.rejects(() => model.forward({ shape: [1, 2, I], data: new Float32Array(5) }), {
    name: "RangeError",
    message: /x has 5 elements but its shape \[1, 2, 3\] needs 6/,
  });
  await assert.rejects(() => model.forward(asTensor(null)), {
    name: "TypeError",
    message: /x must be a tensor \{ shape, data \}, got null/,
  });
});

Deno.test("forward rejects an init whose batch does not match x", async () => {
  const model = arrayModel(3);
  const x = randn([B, T, I], { seed: 1 });
  await assert.rejects(
    () => model.forward(x, { hidden: zeros([1, B + 1, H]), state: zeros([3, B, H]) }),
    {
      name: "RangeError",
      message:
        /init\.hidden has the wrong shape: expected \(1, batch, hiddenSize\) = \[1, 2, 4\], got \[1, 3, 4\]/,
    },
  );
  await assert.rejects(
    () => model.forward(x, { hidden: zeros([1, B, H]), state: zeros([3, B + 1, H]) }),
    {
      name: "RangeError",
      message:
        /init\.state has the wrong shape: expected \(k, batch, hiddenSize\) = \[3, 2, 4\], got \[3, 3, 4\]/,
    },
  );
});

Deno.test("forward rejects an init state with the wrong k or hidden size", async () => {
  const x = randn([B, T, I], { seed: 1 });
  await assert.rejects(
    () => arrayModel(3).forward(x, { hidden: zeros([1, B, H]), state: zeros([2, B, H]) }),
    {
      name: "RangeError",
      message: /init\.state has the wrong shape: .* = \[3, 2, 4\], got \[2, 2, 4\]/,
    },
  );
  const lstm = new LSTM(I, H, { backend: "js", seed: 1 });
  await assert.rejects(
    () => lstm.forward(x, { hidden: zeros([1, B, H]), state: zeros([4, B, H]) }),
    {
      name: "RangeError",
      message: /init\.state has the wrong shape: .* = \[1, 2, 4\], got \[4, 2, 4\]/,
    },
  );
  await assert.rejects(
    () => lstm.forward(x, { hidden: zeros([1, B, H + 1]), state: zeros([1, B, H]) }),
    {
      name: "RangeError",
      message: /init\.hidden has the wrong shape: .* = \[1, 2, 4\], got \[1, 2, 5\]/,
    },
  );
  await assert.rejects(() => lstm.forward(x, { hidden: zeros([B, H]), state: zeros([1, B, H]) }), {
    name: "RangeError",
    message: /init\.hidden has the wrong rank \(expected 3, got 2\)/,
  });
});

Deno.test("forward rejects an init that lacks a tensor", async () => {
  const lstm = new LSTM(I, H, { backend: "js", seed: 1 });
  const x = randn([B, T, I], { seed: 1 });
  const partial = { hidden: zeros([1, B, H]) } as unknown as { hidden: Tensor; state: Tensor };
  await assert.rejects(() => lstm.forward(x, partial), {
    name: "TypeError",
    message: /init\.state must be a tensor \{ shape, data \}, got undefined/,
  });
});

Deno.test("loadStateDict rejects a record with a missing tensor, naming it", () => {
  const model = new LSTM(I, H, { backend: "js", seed: 1 });
  const { "h2h.bias": _, ...record } = model.stateDict();
  assert.throws(() => model.loadStateDict(record), {
    name: "RangeError",
    message:
      /record does not match this LSTM's parameters: missing "h2h\.bias"; expected exactly i2h\.weight, i2h\.bias, h2h\.weight, h2h\.bias/,
  });
});

Deno.test("loadStateDict rejects a record with an extra tensor, naming it", () => {
  const model = new AttentionArrayLSTM(I, H, 2, { backend: "js", seed: 1 });
  const record: Record<string, Tensor> = { ...model.stateDict(), "h2a.weight": zeros([8, I]) };
  assert.throws(() => model.loadStateDict(record), {
    name: "RangeError",
    message:
      /this AttentionArrayLSTM's parameters: unexpected "h2a\.weight"; expected exactly .*i2a\.weight, i2a\.bias/,
  });
  const { "i2a.bias": _, ...swapped } = record;
  assert.throws(() => model.loadStateDict(swapped), {
    name: "RangeError",
    message: /missing "i2a\.bias"; unexpected "h2a\.weight"/,
  });
});

Deno.test("loadStateDict rejects extra tensors named like Object.prototype members", () => {
  const model = new LSTM(I, H, { backend: "js", seed: 1 });
  for (const name of ["constructor", "toString"]) {
    const record = { ...model.stateDict(), [name]: zeros([1]) };
    assert.throws(
      () => model.loadStateDict(record),
      { name: "RangeError", message: new RegExp(`unexpected "${name}"`) },
      `an extra tensor named "${name}" is accepted`,
    );
  }
});

Deno.test("loadStateDict rejects a misshaped tensor, naming it and both shapes", () => {
  const model = arrayModel(3);
  const record = { ...model.stateDict(), "h2h.weight": zeros([H, 12 * H]) };
  assert.throws(() => model.loadStateDict(record), {
    name: "RangeError",
    message:
      /record\["h2h\.weight"\] has the wrong shape: expected h2h\.weight = \[48, 4\], got \[4, 48\]/,
  });
  const flat = { ...model.stateDict(), "i2h.weight": zeros([48 * I]) };
  assert.throws(() => model.loadStateDict(flat), {
    name: "RangeError",
    message:
      /record\["i2h\.weight"\] has the wrong rank \(expected 2, got 1\): expected i2h\.weight = \[48, 3\], got \[144\]/,
  });
});

Deno.test("loadStateDict rejects entries that are not float32 tensors fitting their shape", () => {
  const model = new LSTM(I, H, { backend: "js", seed: 1 });
  const withBias = (bias: unknown) => ({ ...model.stateDict(), "i2h.bias": bias as Tensor });
  assert.throws(() => model.loadStateDict(withBias([1, 2])), {
    name: "TypeError",
    message: /record\["i2h\.bias"\] must be a tensor \{ shape, data \}, got \[1, 2\]/,
  });
  assert.throws(() => model.loadStateDict(withBias({ shape: [16], data: new Float64Array(16) })), {
    name: "TypeError",
    message: /record\["i2h\.bias"\]\.data must be a Float32Array/,
  });
  assert.throws(() => model.loadStateDict(withBias({ shape: [16], data: new Float32Array(15) })), {
    name: "RangeError",
    message: /record\["i2h\.bias"\] has 15 elements but its shape \[16\] needs 16/,
  });
});

Deno.test("loadStateDict rejects a record that is not an object", () => {
  const model = new LSTM(I, H, { backend: "js", seed: 1 });
  for (
    const [record, shown] of [[null, "null"], [undefined, "undefined"], ["w", '"w"'], [3, "3"]]
  ) {
    assert.throws(() => model.loadStateDict(record as unknown as Record<string, Tensor>), {
      name: "TypeError",
      message: new RegExp(`record must be an object of tensors, got ${shown}`),
    });
  }
});

Deno.test("a failed loadStateDict leaves the model unchanged", async () => {
  const model = arrayModel(2);
  const x = randn([B, T, I], { seed: 2 });
  const weights = model.stateDict();
  const output = (await model.forward(x)).output;
  const other = new ArrayLSTM(I, H, 2, { seed: 99 }).stateDict();
  const attempts = [
    // Every tensor but the last is valid: nothing may be loaded before the error.
    { ...other, "h2h.bias": zeros([3]) },
    { ...other, extra: zeros([1]) },
    { ...other, "h2h.bias": { shape: [8 * H], data: new Float32Array(8 * H - 1) } },
  ];
  for (const record of attempts) assert.throws(() => model.loadStateDict(record));
  assert.deepEqual(model.stateDict(), weights);
  assert.deepEqual((await model.forward(x)).output, output);
});
