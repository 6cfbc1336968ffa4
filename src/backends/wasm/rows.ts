/**
 * Batch rows of the WASM backend's calls: a call split by rows over workers (or cut into rounds)
 * takes each slice's rows out of the caller's arrays, and places the slices' results back into
 * arrays of the whole batch.
 *
 * Arrays are shaped `(lanes, B, rowSize)`: the input `x` and the outputs with one lane, the cell
 * states with `k`.
 *
 * @module
 */

import {
  type CellSpec,
  type InputGradients,
  type OutputGradients,
  parameterSizes,
  requestedExtras,
  type SequenceInput,
  type SequenceOutput,
  stateRows,
  type WantedGradients,
} from "../../contract/mod.ts";
import { packedViews } from "./scratch.ts";
import type { SliceGradients, SliceInputGradients } from "./train_kernel.ts";

/** What takes back a slice's buffer once its results are copied out (a `WasmThread`). */
export interface Recycler {
  /** Takes back the buffer of a call's results. */
  recycle(buffer: ArrayBufferLike): void;
}

/**
 * A batch of `batch` rows cut into `parts` slices `[start, end)`, as even as possible.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchSlices } from "./rows.ts";
 * assert.deepEqual(batchSlices(5, 2), [[0, 2], [2, 5]]);
 * ```
 */
export function batchSlices(batch: number, parts: number): [number, number][] {
  return Array.from(
    { length: parts },
    (_, part) => [Math.floor((batch * part) / parts), Math.floor((batch * (part + 1)) / parts)],
  );
}

/**
 * Rows `[start, end)` of an array shaped `(lanes, B, rowSize)`, as a `(lanes, rows, rowSize)`
 * array: `part` (of that size), or a fresh one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { takeRows } from "./rows.ts";
 * // Two lanes of three rows of one value; rows [1, 3).
 * const rows = takeRows(new Float32Array([0, 1, 2, 10, 11, 12]), 3, 1, 2, [1, 3]);
 * assert.deepEqual([...rows], [1, 2, 11, 12]);
 * ```
 */
export function takeRows(
  array: Float32Array,
  B: number,
  rowSize: number,
  lanes: number,
  [start, end]: [number, number],
  part: Float32Array = new Float32Array(lanes * (end - start) * rowSize),
): Float32Array {
  const rows = end - start;
  for (let lane = 0; lane < lanes; lane++) {
    part.set(
      array.subarray((lane * B + start) * rowSize, (lane * B + end) * rowSize),
      lane * rows * rowSize,
    );
  }
  return part;
}

/**
 * Writes `part`, rows `[start, end)` shaped `(lanes, rows, rowSize)`, into `whole`
 * `(lanes, B, rowSize)`: the inverse of {@linkcode takeRows}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { putRows } from "./rows.ts";
 * const whole = new Float32Array(3);
 * putRows(whole, new Float32Array([7, 8]), 3, 1, 1, [1, 3]);
 * assert.deepEqual([...whole], [0, 7, 8]);
 * ```
 */
export function putRows<A extends Float32Array | Int32Array>(
  whole: A,
  part: A,
  B: number,
  rowSize: number,
  lanes: number,
  [start, end]: [number, number],
): void {
  const rows = end - start;
  for (let lane = 0; lane < lanes; lane++) {
    whole.set(
      part.subarray(lane * rows * rowSize, (lane + 1) * rows * rowSize),
      (lane * B + start) * rowSize,
    );
  }
}

/**
 * Copies rows `[start, end)` of `input` into fresh arrays (the worker receives them by transfer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sliceRows } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = {
 *   batch: 3, seqLen: 2, x: new Float32Array([0, 1, 2, 3, 4, 5]),
 *   hidden: new Float32Array(3), state: new Float32Array(3),
 * };
 * assert.deepEqual([...sliceRows(spec, input, [1, 2]).x], [2, 3]);
 * ```
 */
export function sliceRows(
  spec: CellSpec,
  input: SequenceInput,
  rows: [number, number],
): SequenceInput {
  const { inputSize: I, hiddenSize: H } = spec, k = stateRows(spec.variant);
  const { batch: B, seqLen: T } = input;
  return {
    batch: rows[1] - rows[0],
    seqLen: T,
    x: takeRows(input.x, B, T * I, 1, rows),
    hidden: takeRows(input.hidden, B, H, 1, rows),
    state: takeRows(input.state, B, H, k, rows),
    ...(input.outputs === undefined ? {} : { outputs: { ...input.outputs } }),
  };
}

/**
 * The result arrays of all `B` rows of `input`, for the parts to be placed into.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wholeOutput } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = {
 *   batch: 3, seqLen: 2, x: new Float32Array([0, 1, 2, 3, 4, 5]),
 *   hidden: new Float32Array(3), state: new Float32Array(3),
 * };
 * assert.equal(wholeOutput(spec, input).output.length, 6);
 * ```
 */
export function wholeOutput(spec: CellSpec, input: SequenceInput): SequenceOutput {
  const { hiddenSize: H, variant: { k } } = spec;
  const { batch: B, seqLen: T } = input;
  const wants = requestedExtras(input);
  const cellStates = stateRows(spec.variant);
  return {
    output: new Float32Array(B * T * H),
    hidden: new Float32Array(B * H),
    state: new Float32Array(cellStates * B * H),
    ...(wants.attention ? { attention: new Float32Array(B * T * H * k) } : {}),
    ...(wants.lanes ? { lanes: new Int32Array(B * T * H) } : {}),
  };
}

/**
 * Rows `[start, end)` of checked output gradients, in `f32` (absent final ones empty), as views of
 * `scratch` (of a new buffer where it is `null` or too small; see `scratch.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sliceGradients } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = {
 *   batch: 3, seqLen: 2, x: new Float32Array([0, 1, 2, 3, 4, 5]),
 *   hidden: new Float32Array(3), state: new Float32Array(3),
 * };
 * const grads = { output: new Float32Array([0, 1, 2, 3, 4, 5]) };
 * const slice = sliceGradients(spec, input, grads, [2, 3], null);
 * assert.deepEqual([...slice.output], [4, 5]);
 * assert.equal(slice.hidden.length, 0);
 * ```
 */
export function sliceGradients(
  spec: CellSpec,
  input: SequenceInput,
  grads: OutputGradients,
  rows: [number, number],
  scratch: ArrayBuffer | null,
): SliceGradients {
  const { hiddenSize: H, variant: { k } } = spec;
  const { batch: B, seqLen: T } = input;
  const n = rows[1] - rows[0];
  const [output, hidden, state] = packedViews(scratch, [
    n * T * H,
    grads.hidden ? n * H : 0,
    grads.state ? k * n * H : 0,
  ]);
  const f32 = (array: Float32Array | Float64Array) => array as Float32Array;
  takeRows(f32(grads.output), B, T * H, 1, rows, output);
  if (grads.hidden) takeRows(f32(grads.hidden), B, H, 1, rows, hidden);
  if (grads.state) takeRows(f32(grads.state), B, H, k, rows, state);
  return {
    output,
    hidden,
    state,
    ...(grads.wanted === undefined ? {} : { wanted: grads.wanted }),
  };
}

/**
 * Names the flat parameter gradients of a trainer (`parameterSizes` order): views of `flat`,
 * which must be an array nobody else holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { namedGradients } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const named = namedGradients(spec, new Float32Array(16));
 * assert.equal(named["h2h.weight"].length, 4);
 * ```
 */
export function namedGradients(spec: CellSpec, flat: Float32Array): Record<string, Float32Array> {
  let start = 0;
  return Object.fromEntries(
    parameterSizes(spec).map(([name, size]) => [name, flat.subarray(start, start += size)]),
  );
}

/**
 * The whole batch's input gradients (the wanted ones; the others empty), and the parameter
 * gradients summed over the slices, in arrays of their own; the slices' buffers go back to
 * their `workers`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assembleGradients } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = {
 *   batch: 2, seqLen: 1, x: new Float32Array(2),
 *   hidden: new Float32Array(2), state: new Float32Array(2),
 * };
 * const part = (value: number) => ({
 *   params: new Float32Array(16).fill(value), x: new Float32Array([value]),
 *   hidden: new Float32Array([value]), state: new Float32Array([value]),
 * });
 * const recycler = { recycle: () => {} };
 * const whole = assembleGradients(spec, input, [[0, 1], [1, 2]], [part(1), part(2)], [
 *   recycler,
 *   recycler,
 * ]);
 * assert.deepEqual([...whole.x], [1, 2]);
 * assert.equal(whole.params["i2h.bias"][0], 3);
 * ```
 */
export function assembleGradients(
  spec: CellSpec,
  input: SequenceInput,
  slices: [number, number][],
  parts: SliceInputGradients[],
  workers: readonly Recycler[],
  wanted: WantedGradients = { x: true, hidden: true, state: true },
): InputGradients {
  const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
  const { batch: B, seqLen: T } = input;
  const params = parts[0].params.slice();
  for (const part of parts.slice(1)) {
    const add = part.params;
    for (let i = 0; i < params.length; i++) params[i] += add[i];
  }
  const whole = (size: number, want: boolean) => new Float32Array(want ? size : 0);
  const x = whole(B * T * I, wanted.x);
  const hidden = whole(B * H, wanted.hidden);
  const state = whole(k * B * H, wanted.state);
  slices.forEach((rows, index) => {
    const part = parts[index];
    if (wanted.x) putRows(x, part.x, B, T * I, 1, rows);
    if (wanted.hidden) putRows(hidden, part.hidden, B, H, 1, rows);
    if (wanted.state) putRows(state, part.state, B, H, k, rows);
    workers[index].recycle(part.params.buffer);
  });
  return { params: namedGradients(spec, params), x, hidden, state };
}

/**
 * The results of the slices placed into arrays of all the rows; with `workers`, the slices were
 * theirs, in their spare buffers, which go back to them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assembleOutputs } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = {
 *   batch: 2, seqLen: 1, x: new Float32Array(2),
 *   hidden: new Float32Array(2), state: new Float32Array(2),
 * };
 * const part = (value: number) => ({
 *   output: new Float32Array([value]), hidden: new Float32Array([value]),
 *   state: new Float32Array([value]),
 * });
 * const whole = assembleOutputs(spec, input, [[0, 1], [1, 2]], [part(1), part(2)]);
 * assert.deepEqual([...whole.output], [1, 2]);
 * ```
 */
export function assembleOutputs(
  spec: CellSpec,
  input: SequenceInput,
  slices: [number, number][],
  results: SequenceOutput[],
  workers?: readonly Recycler[],
): SequenceOutput {
  const { batch: B, seqLen: T } = input;
  const whole = wholeOutput(spec, input);
  slices.forEach((rows, part) => {
    placeRows(spec, whole, B, T, rows, results[part]);
    workers?.[part].recycle(results[part].output.buffer);
  });
  return whole;
}

/**
 * Copies the result of batch rows `[start, end)` into the result `whole` of all `B` rows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placeRows, wholeOutput } from "./rows.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = {
 *   batch: 3, seqLen: 2, x: new Float32Array([0, 1, 2, 3, 4, 5]),
 *   hidden: new Float32Array(3), state: new Float32Array(3),
 * };
 * const whole = wholeOutput(spec, input);
 * const part = {
 *   output: new Float32Array([1, 2]), hidden: new Float32Array([2]),
 *   state: new Float32Array([3]),
 * };
 * placeRows(spec, whole, 3, 2, [1, 2], part);
 * assert.deepEqual([...whole.output], [0, 0, 1, 2, 0, 0]);
 * ```
 */
export function placeRows(
  spec: CellSpec,
  whole: SequenceOutput,
  B: number,
  T: number,
  [start, end]: [number, number],
  result: SequenceOutput,
): void {
  const { hiddenSize: H } = spec, k = stateRows(spec.variant);
  const rows: [number, number] = [start, end];
  putRows(whole.output, result.output, B, T * H, 1, rows);
  putRows(whole.hidden, result.hidden, B, H, 1, rows);
  putRows(whole.state, result.state, B, H, k, rows);
  if (whole.attention) putRows(whole.attention, result.attention!, B, T * H * k, 1, rows);
  if (whole.lanes) putRows(whole.lanes, result.lanes!, B, T * H, 1, rows);
}
