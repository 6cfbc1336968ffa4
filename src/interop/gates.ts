/**
 * Gate-block reordering: torch's LSTM (`i, f, g, o`) and Keras' (`i, f, c, o`) to this package's
 * `f, i, o, g`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";

/** This package's block `j` is the source's block `ORDER[j]`. */
const ORDER = [1, 0, 3, 2];

/**
 * The row blocks of `value` (`(4H, ...)`) reordered from `i, f, g, o` to `f, i, o, g`, as a
 * new tensor.
 */
export function permuteGates(value: Tensor): Tensor {
  const block = value.data.length / 4;
  const data = new Float32Array(value.data.length);
  ORDER.forEach((from, to) =>
    data.set(value.data.subarray(from * block, (from + 1) * block), to * block)
  );
  return { shape: [...value.shape], data };
}

/** The transpose of a matrix `(rows, cols)`, as a new tensor `(cols, rows)`. */
export function transpose(value: Tensor): Tensor {
  const [rows, cols] = value.shape;
  const data = new Float32Array(value.data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) data[c * rows + r] = value.data[r * cols + c];
  }
  return { shape: [cols, rows], data };
}
