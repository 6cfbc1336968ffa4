/**
 * `Embedding`: PyTorch's `nn.Embedding`, a lookup table of token vectors.
 *
 * @module
 */

import { checkOptions, checkSize, describe } from "../errors.ts";
import { Random } from "../random.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { resolveSeed } from "./init.ts";
import { Module } from "./module.ts";
import { parameterEdge, record, type TrackedTensor } from "./tape.ts";

/** Options of {@linkcode Embedding}. */
export interface EmbeddingOptions {
  /** Seed of the initialisation (N(0, 1), as `nn.Embedding`). */
  seed?: number;
  /** A token id whose row is zero and never trained (PyTorch's `padding_idx`); may be negative. */
  paddingIdx?: number;
}

/** Token ids: a `(B, T)` grid of rows, a flat list, an `Int32Array`, or a tensor of ids. */
export type TokenIds = readonly (readonly number[])[] | readonly number[] | Int32Array | Tensor;

/**
 * A table of `numEmbeddings` vectors of `embeddingDim` floats, as `nn.Embedding`: token ids in,
 * their rows out (a lookup, no one-hot product). The gradient of a row is the sum of the output
 * gradients of its occurrences; the `paddingIdx` row gets none.
 *
 * @example Embedding -> LSTM, as sequence models are trained
 * ```ts
 * import assert from "node:assert/strict";
 * import { Embedding, LSTM } from "../../mod.ts";
 * const embedding = new Embedding(100, 8, { seed: 1, paddingIdx: 0 });
 * const lstm = new LSTM(8, 16, { backend: "js", seed: 2 });
 * const x = await embedding.forward([[5, 7, 0], [9, 0, 0]]); // (2, 3, 8)
 * const { output } = await lstm.forward(x);
 * assert.deepEqual(output.shape, [2, 3, 16]);
 * ```
 */
export class Embedding extends Module {
  /** Size of the vocabulary. */
  readonly numEmbeddings: number;
  /** Floats per vector. */
  readonly embeddingDim: number;
  /** The row that stays zero, as a non-negative id; `null` when none. */
  readonly paddingIdx: number | null;
  /** The seed the table was drawn from. */
  readonly seed: number;

  /**
   * Makes a table drawn from N(0, 1) with `options.seed`.
   *
   * @param numEmbeddings Size of the vocabulary.
   * @param embeddingDim Floats per vector.
   * @param options Seed and `paddingIdx`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Embedding } from "../../mod.ts";
   * const embedding = new Embedding(10, 4, { seed: 1, paddingIdx: -1 });
   * assert.equal(embedding.paddingIdx, 9); // as a non-negative id
   * assert.ok(embedding.stateDict().weight.data.subarray(36).every((v) => v === 0));
   * ```
   */
  constructor(numEmbeddings: number, embeddingDim: number, options: EmbeddingOptions = {}) {
    super();
    this.numEmbeddings = checkSize("numEmbeddings", numEmbeddings);
    this.embeddingDim = checkSize("embeddingDim", embeddingDim);
    checkOptions(options);
    const padding = options.paddingIdx;
    if (
      padding !== undefined &&
      !(Number.isInteger(padding) && padding >= -numEmbeddings && padding < numEmbeddings)
    ) {
      throw new RangeError(
        `options.paddingIdx must be an integer in [-${numEmbeddings}, ${numEmbeddings}), got ${
          describe(padding)
        }`,
      );
    }
    this.paddingIdx = padding === undefined
      ? null
      : padding < 0
      ? padding + numEmbeddings
      : padding;
    this.seed = resolveSeed(options.seed);
  }

  /**
   * `weight` `(numEmbeddings, embeddingDim)` ~ N(0, 1), the padding row zero.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Embedding } from "../../mod.ts";
   * const { weight } = new Embedding(5, 3, { seed: 1, paddingIdx: 0 }).stateDict();
   * assert.deepEqual(weight.shape, [5, 3]);
   * assert.deepEqual([...weight.data.subarray(0, 3)], [0, 0, 0]);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    const random = new Random(this.seed);
    const D = this.embeddingDim;
    const data = new Float32Array(this.numEmbeddings * D);
    for (let i = 0; i < data.length; i++) data[i] = random.normal();
    if (this.paddingIdx !== null) data.fill(0, this.paddingIdx * D, (this.paddingIdx + 1) * D);
    return { weight: { shape: [this.numEmbeddings, D], data } };
  }

  /**
   * The rows of `ids`.
   *
   * @param ids Token ids in `[0, numEmbeddings)`: rows `(B, T)`, a flat list `(N)`, an
   *   `Int32Array` `(N)` or a tensor of any shape.
   * @returns `(...ids shape, embeddingDim)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Embedding } from "../../mod.ts";
   * const embedding = new Embedding(10, 4, { seed: 1 });
   * const rows = await embedding.forward([[3, 3], [0, 1]]);
   * assert.deepEqual(rows.shape, [2, 2, 4]);
   * assert.deepEqual(rows.data.subarray(0, 4), embedding.stateDict().weight.data.subarray(12, 16));
   * ```
   */
  forward(ids: TokenIds): Promise<TrackedTensor> {
    return Promise.resolve().then(() => this.#forward(ids));
  }

  #forward(ids: TokenIds): TrackedTensor {
    const { shape, flat } = this.#checkIds(ids);
    const D = this.embeddingDim;
    const weight = this.parameter("weight").data;
    const out = new Float32Array(flat.length * D);
    flat.forEach((id, n) => out.set(weight.subarray(id * D, (id + 1) * D), n * D));
    const parents = this.training ? [parameterEdge(this.parameters()[0])] : [null];
    return record("Embedding", [{ shape: [...shape, D], data: out }], parents, ([grad]) => {
      const dWeight = new Float32Array(weight.length);
      flat.forEach((id, n) => {
        if (id === this.paddingIdx) return;
        for (let d = 0; d < D; d++) dWeight[id * D + d] += grad![n * D + d];
      });
      return [dWeight];
    })[0];
  }

  #checkIds(ids: TokenIds): { shape: number[]; flat: number[] } {
    let shape: number[], flat: number[];
    if (ids instanceof Int32Array) {
      shape = [ids.length];
      flat = [...ids];
    } else if (Array.isArray(ids)) {
      const rows = ids.length > 0 && Array.isArray(ids[0]);
      if (rows) {
        const grid = ids as readonly (readonly number[])[];
        grid.forEach((row, r) => {
          if (!Array.isArray(row) || row.length !== grid[0].length) {
            throw new RangeError(
              `ids must be rows of equal length: row 0 has ${grid[0].length}, row ${r} has ${
                describe(row?.length)
              }`,
            );
          }
        });
        shape = [grid.length, grid[0].length];
        flat = grid.flat();
      } else {
        shape = [ids.length];
        flat = [...(ids as readonly number[])];
      }
    } else {
      checkTensor("ids", ids);
      shape = [...(ids as Tensor).shape];
      flat = [...(ids as Tensor).data];
    }
    flat.forEach((id, n) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.numEmbeddings) {
        throw new RangeError(
          `ids[${n}] (flat index) must be an integer in [0, ${this.numEmbeddings}), got ${
            describe(id)
          }`,
        );
      }
    });
    return { shape, flat };
  }
}
