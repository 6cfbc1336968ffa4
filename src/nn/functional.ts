/**
 * Functional ops on tensors, synchronous, recording when an input carries history: `reshape`,
 * `softmax` and `logSoftmax` over the last axis, `add`, `mul`, `sum` to build custom losses,
 * `tanh` for the hooks' readouts, and the activations `relu` and `sigmoid`.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { checkTensor, sizeOf, type Tensor } from "../tensor.ts";
import { record, type TrackedTensor } from "./tape.ts";

/**
 * The same elements with another shape (row-major, no copy). One size may be `-1`: it is
 * inferred.
 *
 * @example The documentation's `hidden.squeeze(0)`
 * ```ts
 * import assert from "node:assert/strict";
 * import { reshape, zeros } from "../../mod.ts";
 * assert.deepEqual(reshape(zeros([1, 4, 8]), [4, -1]).shape, [4, 8]);
 * ```
 */
export function reshape(input: Tensor, shape: readonly number[]): TrackedTensor {
  checkTensor("input", input);
  if (!Array.isArray(shape)) throw new TypeError(`shape must be an array, got ${describe(shape)}`);
  const inferred = shape.filter((size) => size === -1).length;
  const known = sizeOf(shape.filter((size) => size !== -1));
  const valid = inferred <= 1 &&
    shape.every((size) => size === -1 || (Number.isInteger(size) && size >= 0));
  const resolved = shape.map((size) => size === -1 && known > 0 ? input.data.length / known : size);
  if (!valid || sizeOf(resolved) !== input.data.length || !resolved.every(Number.isInteger)) {
    throw new RangeError(
      `shape ${describe(shape)} does not fit input of shape ${
        describe(input.shape)
      } (${input.data.length} elements); sizes must be integers ≥ 0, at most one -1`,
    );
  }
  return record("reshape", [{ shape: resolved, data: input.data }], [input], ([grad]) => [grad])[0];
}

function lastAxis(name: string, input: Tensor): { rows: number; width: number } {
  checkTensor(name, input);
  if (input.shape.length === 0 || input.shape[input.shape.length - 1] === 0) {
    throw new RangeError(
      `${name} needs a last axis of at least one element, got shape ${describe(input.shape)}`,
    );
  }
  const width = input.shape[input.shape.length - 1];
  return { rows: input.data.length / width, width };
}

/** Row-wise log-softmax in float64 arithmetic, stable (max subtracted). */
function logSoftmaxRows(data: Float32Array, rows: number, width: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const start = r * width;
    let largest = -Infinity;
    for (let c = 0; c < width; c++) largest = Math.max(largest, data[start + c]);
    let total = 0;
    for (let c = 0; c < width; c++) total += Math.exp(data[start + c] - largest);
    const logTotal = largest + Math.log(total);
    for (let c = 0; c < width; c++) out[start + c] = data[start + c] - logTotal;
  }
  return out;
}

/**
 * `log(softmax(input))` over the last axis, computed stably, as `F.log_softmax(input, dim=-1)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logSoftmax, tensor } from "../../mod.ts";
 * const logp = logSoftmax(tensor([0, 0], [1, 2]));
 * assert.ok(Math.abs(logp.data[0] - Math.log(0.5)) < 1e-7);
 * ```
 */
export function logSoftmax(input: Tensor): TrackedTensor {
  const { rows, width } = lastAxis("input", input);
  const out = logSoftmaxRows(input.data, rows, width);
  return record("logSoftmax", [{ shape: [...input.shape], data: out }], [input], ([grad]) => [
    logSoftmaxBackward(grad!, out, rows, width),
  ])[0];
}

/**
 * `d/dx_j = g_j − softmax_j · Σ g` per row, from the log-softmax `out`. The nested loops of a
 * backward live in functions of their own (as in `linear.ts`): run inside the closure that each
 * forward makes, V8 compiled the inner loop on stack replacement and dropped back to the
 * interpreter at every exit from it.
 */
function logSoftmaxBackward(
  grad: Float32Array,
  out: Float32Array,
  rows: number,
  width: number,
): Float32Array {
  const dx = new Float32Array(out.length);
  for (let r = 0; r < rows; r++) {
    const start = r * width;
    let total = 0;
    for (let c = 0; c < width; c++) total += grad[start + c];
    for (let c = 0; c < width; c++) {
      dx[start + c] = grad[start + c] - Math.exp(out[start + c]) * total;
    }
  }
  return dx;
}

/**
 * `softmax(input)` over the last axis, as `F.softmax(input, dim=-1)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmax, tensor } from "../../mod.ts";
 * assert.deepEqual([...softmax(tensor([1, 1], [2])).data], [0.5, 0.5]);
 * ```
 */
export function softmax(input: Tensor): TrackedTensor {
  const { rows, width } = lastAxis("input", input);
  const out = logSoftmaxRows(input.data, rows, width).map(Math.exp);
  return record("softmax", [{ shape: [...input.shape], data: out }], [input], ([grad]) => [
    softmaxBackward(grad!, out, rows, width),
  ])[0];
}

/** `d/dx_j = s_j · (g_j − Σ g·s)` per row, from the softmax `out` (see `logSoftmaxBackward`). */
function softmaxBackward(
  grad: Float32Array,
  out: Float32Array,
  rows: number,
  width: number,
): Float32Array {
  const dx = new Float32Array(out.length);
  for (let r = 0; r < rows; r++) {
    const start = r * width;
    let dot = 0;
    for (let c = 0; c < width; c++) dot += grad[start + c] * out[start + c];
    for (let c = 0; c < width; c++) dx[start + c] = out[start + c] * (grad[start + c] - dot);
  }
  return dx;
}

function checkSameShape(a: Tensor, b: Tensor): void {
  checkTensor("a", a);
  checkTensor("b", b);
  if (a.shape.length !== b.shape.length || a.shape.some((size, i) => size !== b.shape[i])) {
    throw new RangeError(
      `a and b must have the same shape, got ${describe(a.shape)} and ${describe(b.shape)}`,
    );
  }
}

/**
 * Elementwise `a + b` (same shapes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { add, tensor } from "../../mod.ts";
 * assert.deepEqual([...add(tensor([1, 2], [2]), tensor([3, 4], [2])).data], [4, 6]);
 * ```
 */
export function add(a: Tensor, b: Tensor): TrackedTensor {
  checkSameShape(a, b);
  const out = a.data.map((value, i) => value + b.data[i]);
  return record("add", [{ shape: [...a.shape], data: out }], [a, b], ([grad]) => [grad, grad])[0];
}

/**
 * Elementwise `a · b` (same shapes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mul, tensor } from "../../mod.ts";
 * assert.deepEqual([...mul(tensor([1, 2], [2]), tensor([3, 4], [2])).data], [3, 8]);
 * ```
 */
export function mul(a: Tensor, b: Tensor): TrackedTensor {
  checkSameShape(a, b);
  const out = a.data.map((value, i) => value * b.data[i]);
  return record("mul", [{ shape: [...a.shape], data: out }], [a, b], ([grad]) => [
    grad!.map((g, i) => g * b.data[i]),
    grad!.map((g, i) => g * a.data[i]),
  ])[0];
}

/**
 * The sum of all elements, a scalar of shape `[]` (summed in float64).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sum, tensor } from "../../mod.ts";
 * assert.equal(sum(tensor([1, 2, 3], [3])).data[0], 6);
 * ```
 */
export function sum(input: Tensor): TrackedTensor {
  checkTensor("input", input);
  let total = 0;
  for (let i = 0; i < input.data.length; i++) total += input.data[i];
  return record("sum", [{ shape: [], data: new Float32Array([total]) }], [input], ([grad]) => [
    new Float32Array(input.data.length).fill(grad![0]),
  ])[0];
}

/**
 * Elementwise `tanh(input)`, as `torch.tanh`: with `mul` and `add`, a hook's readout
 * `o·tanh(c)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tanh, tensor } from "../../mod.ts";
 * assert.ok(Math.abs(tanh(tensor([1], [1])).data[0] - Math.tanh(1)) < 1e-7);
 * ```
 */
export function tanh(input: Tensor): TrackedTensor {
  checkTensor("input", input);
  const out = input.data.map(Math.tanh);
  return record("tanh", [{ shape: [...input.shape], data: out }], [input], ([grad]) => [
    grad!.map((g, i) => g * (1 - out[i] * out[i])),
  ])[0];
}

/**
 * Elementwise `max(0, input)`, as `torch.relu` (the gradient at 0 is 0, as torch's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { relu, tensor } from "../../mod.ts";
 * assert.deepEqual([...relu(tensor([-1, 0, 2], [3])).data], [0, 0, 2]);
 * ```
 */
export function relu(input: Tensor): TrackedTensor {
  checkTensor("input", input);
  const out = input.data.map((value) => value > 0 ? value : 0);
  return record("relu", [{ shape: [...input.shape], data: out }], [input], ([grad]) => [
    grad!.map((g, i) => input.data[i] > 0 ? g : 0),
  ])[0];
}

/**
 * Elementwise `1 / (1 + exp(−input))`, as `torch.sigmoid`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sigmoid, tensor } from "../../mod.ts";
 * assert.deepEqual([...sigmoid(tensor([0], [1])).data], [0.5]);
 * ```
 */
export function sigmoid(input: Tensor): TrackedTensor {
  checkTensor("input", input);
  const out = input.data.map((value) => 1 / (1 + Math.exp(-value)));
  return record("sigmoid", [{ shape: [...input.shape], data: out }], [input], ([grad]) => [
    grad!.map((g, i) => g * out[i] * (1 - out[i])),
  ])[0];
}
