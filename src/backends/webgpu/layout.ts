/**
 * The memory layouts of the WebGPU kernels (see the comments at the top of
 * `kernels/recurrent_step.wgsl` and `kernels/projection.wgsl`), and the conversions from and to the
 * reference's PyTorch layouts. Hidden units are padded to a multiple of four (`paddedUnits`) so
 * that a `vec4` holds four units and a `mat4x4` the four gates of four units; inputs are padded
 * the same way. Padding is zero.
 *
 * @module
 */

/** Rows one invocation of the projection kernel covers: 8 batch lanes times a 16-row block. */
export const PROJECTION_ROWS = 128;

/** `n` rounded up to a multiple of `multiple`. */
export function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

/**
 * Calls `visit` for each row of a `(4kH, ·)` gate tensor, with its lane, gate and unit: the rows
 * are `(lane · 4 + gate) · H + unit`, lane-major.
 */
function eachGateRow(
  k: number,
  hiddenSize: number,
  visit: (row: number, lane: number, gate: number, unit: number) => void,
): void {
  for (let lane = 0; lane < k; lane++) {
    for (let gate = 0; gate < 4; gate++) {
      for (let unit = 0; unit < hiddenSize; unit++) {
        visit((lane * 4 + gate) * hiddenSize + unit, lane, gate, unit);
      }
    }
  }
}

/**
 * Packs `i2h.weight (4kH, inner)` or `h2h.weight (4kH, inner)` as `[lane][inner][unitVec]` 4×4
 * matrices whose column `g` holds gate `g` (forget, input, output, candidate) of four units.
 *
 * @example
 * ```ts
 * import { packGateWeights } from "./layout.ts";
 * const packed = packGateWeights(new Float32Array(4 * 3 * 2), 1, 3, 2);
 * packed.length; // 1 lane · 4 inner · 1 unitVec · 16
 * ```
 */
export function packGateWeights(
  weight: Float32Array,
  k: number,
  hiddenSize: number,
  inner: number,
): Float32Array<ArrayBuffer> {
  const paddedUnits = roundUp(hiddenSize, 4);
  const paddedInner = roundUp(inner, 4);
  const unitVecs = paddedUnits / 4;
  const packed = new Float32Array(k * paddedInner * unitVecs * 16);
  eachGateRow(k, hiddenSize, (row, lane, gate, unit) => {
    const column = gate * 4 + (unit & 3);
    for (let i = 0; i < inner; i++) {
      const mat = (lane * paddedInner + i) * unitVecs + (unit >> 2);
      packed[mat * 16 + column] = weight[row * inner + i];
    }
  });
  return packed;
}

/**
 * Packs `i2h.bias + h2h.bias (4kH)` as `[lane][unitVec]` 4×4 matrices (column = gate).
 *
 * @example
 * ```ts
 * import { packGateBias } from "./layout.ts";
 * const packed = packGateBias(new Float32Array(8), new Float32Array(8), 1, 2);
 * ```
 */
export function packGateBias(
  i2hBias: Float32Array,
  h2hBias: Float32Array,
  k: number,
  hiddenSize: number,
): Float32Array<ArrayBuffer> {
  const unitVecs = roundUp(hiddenSize, 4) / 4;
  const packed = new Float32Array(k * unitVecs * 16);
  eachGateRow(k, hiddenSize, (row, lane, gate, unit) => {
    packed[(lane * unitVecs + (unit >> 2)) * 16 + gate * 4 + (unit & 3)] = i2hBias[row] +
      h2hBias[row];
  });
  return packed;
}

/**
 * Packs `i2a.weight (kH, I)` as `[lane][inputVec][unitVec]` 4×4 matrices whose column `c` holds
 * input `4·inputVec + c` of four units.
 *
 * @example
 * ```ts
 * import { packAttentionWeights } from "./layout.ts";
 * const packed = packAttentionWeights(new Float32Array(2 * 3), 2, 1, 3);
 * ```
 */
export function packAttentionWeights(
  weight: Float32Array,
  k: number,
  hiddenSize: number,
  inputSize: number,
): Float32Array<ArrayBuffer> {
  const unitVecs = roundUp(hiddenSize, 4) / 4;
  const inputVecs = roundUp(inputSize, 4) / 4;
  const packed = new Float32Array(k * inputVecs * unitVecs * 16);
  for (let lane = 0; lane < k; lane++) {
    for (let unit = 0; unit < hiddenSize; unit++) {
      for (let i = 0; i < inputSize; i++) {
        const mat = (lane * inputVecs + (i >> 2)) * unitVecs + (unit >> 2);
        packed[mat * 16 + (i & 3) * 4 + (unit & 3)] =
          weight[(lane * hiddenSize + unit) * inputSize + i];
      }
    }
  }
  return packed;
}

/**
 * Packs a `(k, H)`-shaped vector (`i2a.bias`) as `[lane][paddedUnits]`.
 *
 * @example
 * ```ts
 * import { packLaneVector } from "./layout.ts";
 * packLaneVector(new Float32Array([1, 2]), 2, 1); // [1, 0, 0, 0, 2, 0, 0, 0]
 * ```
 */
export function packLaneVector(
  vector: Float32Array,
  k: number,
  hiddenSize: number,
): Float32Array<ArrayBuffer> {
  const paddedUnits = roundUp(hiddenSize, 4);
  const packed = new Float32Array(k * paddedUnits);
  for (let lane = 0; lane < k; lane++) {
    packed.set(vector.subarray(lane * hiddenSize, (lane + 1) * hiddenSize), lane * paddedUnits);
  }
  return packed;
}

/**
 * Packs batch rows `[start, start + size)` of `x (B, T, I)` K-major for the projection kernel:
 * `[inputVec][t · paddedBatch + row]` vec4s, each plane `planeRows` rows long.
 *
 * @example
 * ```ts
 * import { packInput } from "./layout.ts";
 * const packed = packInput(new Float32Array(2 * 3 * 5), 3, 5, 0, 2, 8, 3 * 8 + 128);
 * ```
 */
export function packInput(
  x: Float32Array,
  seqLen: number,
  inputSize: number,
  start: number,
  size: number,
  paddedBatch: number,
  planeRows: number,
): Float32Array<ArrayBuffer> {
  const inputVecs = roundUp(inputSize, 4) / 4;
  const packed = new Float32Array(inputVecs * planeRows * 4);
  for (let b = 0; b < size; b++) {
    for (let t = 0; t < seqLen; t++) {
      const from = ((start + b) * seqLen + t) * inputSize;
      const row = t * paddedBatch + b;
      for (let i = 0; i < inputSize; i++) {
        packed[((i >> 2) * planeRows + row) * 4 + (i & 3)] = x[from + i];
      }
    }
  }
  return packed;
}

/**
 * Packs batch rows `[start, start + size)` of a hidden state `(B, H)` as `[unitVec][row]` vec4s:
 * {@linkcode packInput} of one step, each plane `paddedBatch` rows long.
 *
 * @example
 * ```ts
 * import { packHidden } from "./layout.ts";
 * const packed = packHidden(new Float32Array(3 * 5), 5, 0, 3, 8);
 * ```
 */
export function packHidden(
  hidden: Float32Array,
  hiddenSize: number,
  start: number,
  size: number,
  paddedBatch: number,
): Float32Array<ArrayBuffer> {
  return packInput(hidden, 1, hiddenSize, start, size, paddedBatch, paddedBatch);
}

/**
 * For each lane and each of the `size` rows from `start`: where the row starts in cell states
 * `(k, B, H)` and where it starts packed as `(k, paddedBatch, paddedUnits)`.
 */
function cellRows(
  k: number,
  batch: number,
  hiddenSize: number,
  start: number,
  size: number,
  paddedBatch: number,
): Array<[state: number, packed: number]> {
  const paddedUnits = roundUp(hiddenSize, 4);
  const rows: Array<[number, number]> = [];
  for (let lane = 0; lane < k; lane++) {
    for (let b = 0; b < size; b++) {
      rows.push([(lane * batch + start + b) * hiddenSize, (lane * paddedBatch + b) * paddedUnits]);
    }
  }
  return rows;
}

/**
 * Packs batch rows `[start, start + size)` of cell states `(k, B, H)` as `(k, paddedBatch,
 * paddedUnits)`.
 *
 * @example
 * ```ts
 * import { packCells } from "./layout.ts";
 * const packed = packCells(new Float32Array(2 * 3 * 5), 2, 3, 5, 0, 3, 8);
 * ```
 */
export function packCells(
  state: Float32Array,
  k: number,
  batch: number,
  hiddenSize: number,
  start: number,
  size: number,
  paddedBatch: number,
): Float32Array<ArrayBuffer> {
  const packed = new Float32Array(k * paddedBatch * roundUp(hiddenSize, 4));
  for (const [from, to] of cellRows(k, batch, hiddenSize, start, size, paddedBatch)) {
    packed.set(state.subarray(from, from + hiddenSize), to);
  }
  return packed;
}

/**
 * The inverse of {@linkcode packCells}: writes the `size` real rows of `packed` into rows
 * `[start, start + size)` of `state (k, B, H)`.
 *
 * @example
 * ```ts
 * import { packCells, unpackCells } from "./layout.ts";
 * const state = new Float32Array(2 * 3 * 5).map((_, i) => i);
 * const copy = new Float32Array(state.length);
 * unpackCells(packCells(state, 2, 3, 5, 0, 3, 8), 2, 3, 5, 0, 3, 8, copy);
 * ```
 */
export function unpackCells(
  packed: Float32Array,
  k: number,
  batch: number,
  hiddenSize: number,
  start: number,
  size: number,
  paddedBatch: number,
  state: Float32Array,
): void {
  for (const [to, from] of cellRows(k, batch, hiddenSize, start, size, paddedBatch)) {
    state.set(packed.subarray(from, from + hiddenSize), to);
  }
}
