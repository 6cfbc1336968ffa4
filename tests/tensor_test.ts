import assert from "node:assert/strict";
import { oneHot, tensor, zeros } from "../mod.ts";

Deno.test("tensor keeps a Float32Array as is and copies the shape", () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const shape = [2, 3];
  const t = tensor(data, shape);
  assert.equal(t.data, data, "the same Float32Array, not a copy");
  assert.deepEqual(t.shape, [2, 3]);
  shape[0] = 99;
  assert.deepEqual(t.shape, [2, 3], "later changes to the caller's shape do not leak in");
});

Deno.test("tensor converts plain arrays and other typed arrays to float32", () => {
  const fromArray = tensor([0.1, 2, -3], [3]);
  assert.ok(fromArray.data instanceof Float32Array);
  assert.deepEqual(Array.from(fromArray.data), [Math.fround(0.1), 2, -3]);
  const fromFloat64 = tensor(new Float64Array([1 / 3, 2]), [1, 2]);
  assert.ok(fromFloat64.data instanceof Float32Array);
  assert.deepEqual(Array.from(fromFloat64.data), [Math.fround(1 / 3), 2]);
  assert.deepEqual(tensor([7], []).shape, [], "a scalar");
  assert.equal(tensor([], [0, 4]).data.length, 0, "an empty tensor");
});

Deno.test("tensor rejects data that does not fit the shape, naming both", () => {
  assert.throws(() => tensor([1, 2, 3], [2, 2]), {
    name: "RangeError",
    message: /data has 3 elements but shape \[2, 2\] needs 4/,
  });
  assert.throws(() => tensor(new Float32Array(5), [1, 2, 3]), {
    name: "RangeError",
    message: /data has 5 elements but shape \[1, 2, 3\] needs 6/,
  });
});

Deno.test("tensor and zeros reject invalid shapes, naming the axis", () => {
  for (const make of [(shape: number[]) => tensor([], shape), zeros]) {
    assert.throws(() => make([2, -1]), {
      name: "RangeError",
      message: /shape\[1\] must be a non-negative integer, got -1 in \[2, -1\]/,
    });
    assert.throws(() => make([1.5]), { name: "RangeError", message: /shape\[0\] .* got 1\.5/ });
    assert.throws(() => make([NaN]), { name: "RangeError", message: /shape\[0\] .* got NaN/ });
    assert.throws(() => make(["2"] as unknown as number[]), {
      name: "RangeError",
      message: /shape\[0\] must be a non-negative integer, got "2"/,
    });
    assert.throws(() => make(4 as unknown as number[]), {
      name: "TypeError",
      message: /shape must be an array of sizes, got 4/,
    });
  }
});

Deno.test("zeros makes a zero tensor of the shape", () => {
  const t = zeros([2, 3, 4]);
  assert.deepEqual(t.shape, [2, 3, 4]);
  assert.ok(t.data instanceof Float32Array);
  assert.equal(t.data.length, 24);
  assert.ok(t.data.every((value) => value === 0));
  assert.equal(zeros([]).data.length, 1, "a scalar zero");
});

Deno.test("oneHot encodes a (batch, seq_len) grid as (batch, seq_len, classes)", () => {
  const t = oneHot([[0, 2], [1, 1]], 3);
  assert.deepEqual(t.shape, [2, 2, 3]);
  assert.ok(t.data instanceof Float32Array);
  assert.deepEqual(Array.from(t.data), [1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0]);
});

Deno.test("oneHot encodes a flat row as (n, classes) and accepts typed arrays", () => {
  const flat = oneHot([2, 0], 3);
  assert.deepEqual(flat.shape, [2, 3]);
  assert.deepEqual(Array.from(flat.data), [0, 0, 1, 1, 0, 0]);
  assert.deepEqual(oneHot(new Int32Array([2, 0]), 3), flat);
  assert.deepEqual(
    oneHot([new Uint8Array([0, 2]), new Uint8Array([1, 1])], 3),
    oneHot([[0, 2], [1, 1]], 3),
  );
});

Deno.test("oneHot of no tokens gives empty tensors", () => {
  assert.deepEqual(oneHot([], 4).shape, [0, 4]);
  const emptyRows = oneHot([[], []], 4);
  assert.deepEqual(emptyRows.shape, [2, 0, 4]);
  assert.equal(emptyRows.data.length, 0);
});

Deno.test("oneHot rejects ragged rows, naming the rows and their lengths", () => {
  assert.throws(() => oneHot([[1, 2], [3]], 5), {
    name: "RangeError",
    message: /tokens must be rows of equal length: row 0 has 2, row 1 has 1/,
  });
});

Deno.test("oneHot rejects ids that are not integers in range, naming the position", () => {
  const cases: [number[] | number[][], RegExp][] = [
    [[[0, 1, 2], [1, 0, 1.5]], /tokens\[1\]\[2\] must be an integer in \[0, 3\), got 1\.5/],
    [[[0, 3]], /tokens\[0\]\[1\] must be an integer in \[0, 3\), got 3/],
    [[[-1]], /tokens\[0\]\[0\] must be an integer in \[0, 3\), got -1/],
    [[[0, NaN]], /tokens\[0\]\[1\] must be an integer in \[0, 3\), got NaN/],
    [[1, 7], /tokens\[1\] must be an integer in \[0, 3\), got 7/],
  ];
  for (const [tokens, message] of cases) {
    assert.throws(() => oneHot(tokens, 3), { name: "RangeError", message });
  }
});

Deno.test("oneHot rejects a classes count that is not a positive integer", () => {
  for (const [classes, shown] of [[0, "0"], [1.5, "1\\.5"], [-2, "-2"], [NaN, "NaN"]] as const) {
    assert.throws(() => oneHot([[0]], classes), {
      name: "RangeError",
      message: new RegExp(`classes must be a positive integer, got ${shown}`),
    });
  }
  assert.throws(() => oneHot([[0]], "3" as unknown as number), {
    name: "TypeError",
    message: /classes must be a positive integer, got string "3"/,
  });
});
