/**
 * Recorded layout ops along one axis: `concat`, `split` and `flip`. Stacked and bidirectional
 * layers are built from them, so gradients flow through the joins and the time reversal.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { checkTensor, sizeOf, type Tensor } from "../tensor.ts";
import { record, type TrackedTensor } from "./tape.ts";

/** `outer` blocks before the axis, `inner` elements after it. */
function strides(shape: readonly number[], axis: number): { outer: number; inner: number } {
  return { outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis + 1)) };
}

function checkAxis(name: string, value: Tensor, axis: number): void {
  if (!Number.isInteger(axis) || axis < 0 || axis >= value.shape.length) {
    throw new RangeError(
      `axis must be an integer in [0, ${value.shape.length}) for ${name} of shape ${
        describe(value.shape)
      }, got ${describe(axis)}`,
    );
  }
}

/** Where each part starts on the axis (running sums: one pass, as parts may be many time steps). */
function startsOf(sizes: readonly number[]): number[] {
  const starts: number[] = [];
  let start = 0;
  for (const size of sizes) {
    starts.push(start);
    start += size;
  }
  return starts;
}

/** Copies `src` (size `n` on the axis) into `dst` (size `total`) at `offset` on that axis. */
function place(
  src: Float32Array,
  dst: Float32Array,
  outer: number,
  inner: number,
  n: number,
  total: number,
  offset: number,
): void {
  for (let o = 0; o < outer; o++) {
    dst.set(src.subarray(o * n * inner, (o + 1) * n * inner), (o * total + offset) * inner);
  }
}

/** Reads the part of `src` (size `total` on the axis) at `offset`, `n` long. */
function take(
  src: Float32Array,
  outer: number,
  inner: number,
  n: number,
  total: number,
  offset: number,
): Float32Array {
  const out = new Float32Array(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    out.set(
      src.subarray((o * total + offset) * inner, (o * total + offset + n) * inner),
      o * n * inner,
    );
  }
  return out;
}

/**
 * Joins tensors along `axis`; every other axis must agree, as `torch.cat(tensors, dim=axis)`.
 *
 * @example Two directions' hidden states `(1, B, H)` to `(2, B, H)`
 * ```ts
 * import assert from "node:assert/strict";
 * import { concat, tensor } from "../../mod.ts";
 * const joined = concat([tensor([1, 2], [1, 1, 2]), tensor([3, 4], [1, 1, 2])], 0);
 * assert.deepEqual(joined.shape, [2, 1, 2]);
 * assert.deepEqual([...joined.data], [1, 2, 3, 4]);
 * ```
 */
export function concat(tensors: readonly Tensor[], axis: number): TrackedTensor {
  if (!Array.isArray(tensors) || tensors.length === 0) {
    throw new TypeError(`tensors must be a non-empty array, got ${describe(tensors)}`);
  }
  tensors.forEach((value, i) => checkTensor(`tensors[${i}]`, value));
  const first: Tensor = tensors[0];
  checkAxis("tensors[0]", first, axis);
  tensors.forEach((value: Tensor, i) => {
    const fits = value.shape.length === first.shape.length &&
      value.shape.every((size, a) => a === axis || size === first.shape[a]);
    if (!fits) {
      throw new RangeError(
        `tensors[${i}] of shape ${describe(value.shape)} does not fit tensors[0] of shape ${
          describe(first.shape)
        }: all axes but ${axis} must agree`,
      );
    }
  });
  const sizes = tensors.map((value) => value.shape[axis]);
  const total = sizes.reduce((a, b) => a + b, 0);
  const { outer, inner } = strides(first.shape, axis);
  const out = new Float32Array(outer * total * inner);
  const offsets = startsOf(sizes);
  tensors.forEach((value, i) => place(value.data, out, outer, inner, sizes[i], total, offsets[i]));
  const shape = first.shape.map((size, a) => a === axis ? total : size);
  return record(
    "concat",
    [{ shape, data: out }],
    tensors,
    ([grad]) => sizes.map((n, i) => take(grad!, outer, inner, n, total, offsets[i])),
  )[0];
}

/**
 * Cuts a tensor along `axis` into parts of the given sizes, as `torch.split(x, sizes, dim=axis)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { split, tensor } from "../../mod.ts";
 * const [a, b] = split(tensor([1, 2, 3, 4], [1, 4]), [1, 3], 1);
 * assert.deepEqual([...a.data], [1]);
 * assert.deepEqual(b.shape, [1, 3]);
 * ```
 */
export function split(value: Tensor, sizes: readonly number[], axis: number): TrackedTensor[] {
  checkTensor("value", value);
  checkAxis("value", value, axis);
  const total = value.shape[axis];
  const valid = Array.isArray(sizes) &&
    sizes.every((n) => Number.isInteger(n) && n >= 0) &&
    sizes.reduce((a, b) => a + b, 0) === total;
  if (!valid) {
    throw new RangeError(
      `sizes must be integers ≥ 0 adding up to ${total} (axis ${axis} of shape ${
        describe(value.shape)
      }), got ${describe(sizes)}`,
    );
  }
  const { outer, inner } = strides(value.shape, axis);
  const offsets = startsOf(sizes);
  const parts = sizes.map((n, i) => ({
    shape: value.shape.map((size, a) => a === axis ? n : size),
    data: take(value.data, outer, inner, n, total, offsets[i]),
  }));
  return record("split", parts, [value], (grads) => {
    const dx = new Float32Array(value.data.length);
    grads.forEach((grad, i) => {
      if (grad !== null) place(grad, dx, outer, inner, sizes[i], total, offsets[i]);
    });
    return [dx];
  });
}

/** Reverses the order along `axis` (its own inverse). */
function reversed(data: Float32Array, shape: readonly number[], axis: number): Float32Array {
  const { outer, inner } = strides(shape, axis);
  const n = shape[axis];
  const out = new Float32Array(data.length);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < n; t++) {
      out.set(
        data.subarray((o * n + t) * inner, (o * n + t + 1) * inner),
        (o * n + n - 1 - t) * inner,
      );
    }
  }
  return out;
}

/**
 * Reverses a tensor along `axis`, as `torch.flip(x, [axis])`: axis 1 of `(B, T, F)` is time, so
 * a backward direction reads a sequence from its last step to its first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flip, tensor } from "../../mod.ts";
 * assert.deepEqual([...flip(tensor([1, 2, 3], [1, 3, 1]), 1).data], [3, 2, 1]);
 * ```
 */
export function flip(value: Tensor, axis: number): TrackedTensor {
  checkTensor("value", value);
  checkAxis("value", value, axis);
  const out = reversed(value.data, value.shape, axis);
  return record("flip", [{ shape: [...value.shape], data: out }], [value], ([grad]) => [
    reversed(grad!, value.shape, axis),
  ])[0];
}
