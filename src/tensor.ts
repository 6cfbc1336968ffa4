/**
 * The tensor type of the package: a row-major `Float32Array` with a shape, immutable by
 * convention. Nothing in the package writes into a tensor it was given.
 *
 * @module
 */

import { checkSize, describe } from "./errors.ts";

/**
 * A dense, row-major float32 tensor.
 *
 * @example
 * ```ts
 * import type { Tensor } from "./tensor.ts";
 * const t: Tensor = { shape: [2, 3], data: new Float32Array(6) };
 * ```
 */
export interface Tensor {
  /** Sizes of the axes, outermost first. */
  readonly shape: readonly number[];
  /** The elements, row-major; `data.length` is the product of `shape`. */
  readonly data: Float32Array;
}

/** The number of elements of a tensor of `shape`. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

function checkShapeArgument(shape: unknown): readonly number[] {
  if (!Array.isArray(shape)) {
    throw new TypeError(`shape must be an array of sizes, got ${describe(shape)}`);
  }
  shape.forEach((size, axis) => {
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw new RangeError(
        `shape[${axis}] must be a non-negative integer, got ${describe(size)} in ${
          describe(shape)
        }`,
      );
    }
  });
  return [...shape];
}

/**
 * Makes a tensor. A `Float32Array` is used as is (not copied); any other array of numbers is
 * converted to float32.
 *
 * @param data The elements, row-major.
 * @param shape The sizes of the axes; their product must equal `data.length`.
 * @returns A tensor viewing `data` with `shape`.
 * @throws {RangeError} If the shape is invalid or does not fit the data.
 *
 * @example Make a batch of one sequence of two steps with three features
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor } from "./tensor.ts";
 * const x = tensor([1, 0, 0, 0, 1, 0], [1, 2, 3]);
 * assert.deepEqual(x.shape, [1, 2, 3]);
 * assert.deepEqual(x.data, new Float32Array([1, 0, 0, 0, 1, 0]));
 * assert.throws(() => tensor([1, 2, 3], [2, 2]), RangeError); // 3 values for 4 places
 * ```
 */
export function tensor(data: Float32Array | ArrayLike<number>, shape: readonly number[]): Tensor {
  const checked = checkShapeArgument(shape);
  const elements = data instanceof Float32Array ? data : Float32Array.from(data);
  if (elements.length !== sizeOf(checked)) {
    throw new RangeError(
      `data has ${elements.length} elements but shape ${describe(checked)} needs ${
        sizeOf(checked)
      }`,
    );
  }
  return { shape: checked, data: elements };
}

/**
 * Makes a tensor of zeros.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zeros } from "./tensor.ts";
 * const hidden = zeros([1, 4, 128]);
 * assert.equal(hidden.data.length, 512);
 * assert.ok(hidden.data.every((v) => v === 0));
 * ```
 */
export function zeros(shape: readonly number[]): Tensor {
  const checked = checkShapeArgument(shape);
  return { shape: checked, data: new Float32Array(sizeOf(checked)) };
}

/**
 * One-hot encodes integer tokens: a `(batch, seq_len)` grid of token ids becomes a
 * `(batch, seq_len, classes)` tensor, the input the ArrayLSTM documentation uses.
 *
 * @param tokens Token ids, as rows of equal length (or one flat row, giving `(n, classes)`).
 * @param classes How many distinct tokens there are; every id must lie in `[0, classes)`.
 * @returns The encoded tensor.
 * @throws {RangeError} On ragged rows, ids that are not integers or out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { oneHot } from "./tensor.ts";
 * const x = oneHot([[0, 2], [1, 1]], 3);
 * assert.deepEqual(x.shape, [2, 2, 3]);
 * assert.deepEqual([...x.data], [1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0]);
 * ```
 */
export function oneHot(
  tokens: ArrayLike<number> | readonly ArrayLike<number>[],
  classes: number,
): Tensor {
  checkSize("classes", classes);
  const rows = Array.isArray(tokens) && tokens.length > 0 && typeof tokens[0] !== "number"
    ? tokens as readonly ArrayLike<number>[]
    : null;
  const flat = rows === null ? [tokens as ArrayLike<number>] : rows;
  const length = flat[0]?.length ?? 0;
  const data = new Float32Array(flat.length * length * classes);
  flat.forEach((row, r) => {
    if (row.length !== length) {
      throw new RangeError(
        `tokens must be rows of equal length: row 0 has ${length}, row ${r} has ${row.length}`,
      );
    }
    for (let t = 0; t < length; t++) {
      const id = row[t];
      if (!Number.isInteger(id) || id < 0 || id >= classes) {
        const where = rows === null ? `tokens[${t}]` : `tokens[${r}][${t}]`;
        throw new RangeError(`${where} must be an integer in [0, ${classes}), got ${describe(id)}`);
      }
      data[(r * length + t) * classes + id] = 1;
    }
  });
  const shape = rows === null ? [length, classes] : [flat.length, length, classes];
  return { shape, data };
}

/**
 * Checks that `value` looks like a tensor whose data fits its shape; `name` is the argument's name
 * for the error message.
 *
 * @example
 * ```ts
 * import { checkTensor, zeros } from "./tensor.ts";
 * checkTensor("x", zeros([2, 3]));
 * ```
 */
export function checkTensor(name: string, value: unknown): asserts value is Tensor {
  const candidate = value as Partial<Tensor> | null;
  if (typeof value !== "object" || candidate === null || !Array.isArray(candidate.shape)) {
    throw new TypeError(`${name} must be a tensor { shape, data }, got ${describe(value)}`);
  }
  if (!(candidate.data instanceof Float32Array)) {
    throw new TypeError(
      `${name}.data must be a Float32Array, got ${Object.prototype.toString.call(candidate.data)}`,
    );
  }
  candidate.shape.forEach((size, axis) => {
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw new RangeError(
        `${name}.shape[${axis}] must be a non-negative integer, got ${describe(size)} in ${
          describe(candidate.shape)
        }`,
      );
    }
  });
  if (candidate.data.length !== sizeOf(candidate.shape)) {
    throw new RangeError(
      `${name} has ${candidate.data.length} elements but its shape ${
        describe(candidate.shape)
      } needs ${sizeOf(candidate.shape)}`,
    );
  }
}
