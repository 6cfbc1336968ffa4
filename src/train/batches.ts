/**
 * Batches for `fit`: examples `{ inputs, targets }` cut into batches, shuffled with a seed, id
 * sequences of different lengths padded with their `lengths`.
 *
 * @module
 */

import { checkOptions, describe, describeKind } from "../errors.ts";
import type { TokenIds } from "../nn/embedding.ts";
import type { Targets } from "../nn/loss.ts";
import { Random, type RandomSource } from "../random.ts";
import { checkTensor, sizeOf, type Tensor } from "../tensor.ts";

/**
 * Training examples, as arrays indexed by example (Keras' `x`, `y`):
 * - `inputs`: token-id sequences (any lengths, for a model that starts with an `Embedding`), or a
 *   tensor of features `(N, T, F)` (or `(N, F)`);
 * - `targets`: per step, a sequence of class ids as long as its input (a language model's next
 *   tokens); per example, one class id (a classifier); or a tensor `(N, ...)` (regression).
 */
export interface SequenceData {
  /** `N` token-id sequences, or features `(N, ...)`. */
  readonly inputs: readonly (readonly number[])[] | Tensor;
  /** Per step `(N, T_n)` ids, per example `(N)` ids, or a tensor `(N, ...)`. */
  readonly targets: readonly (readonly number[])[] | readonly number[] | Int32Array | Tensor;
}

/** One batch, as a model's `forward` and a loss take it. */
export interface Batch {
  /** Token ids `(B, T)` padded with `padId`, or features `(B, ...)`. */
  readonly inputs: TokenIds;
  /**
   * Class ids, one per output row (`(B·T)` per step, padded steps `ignoreIndex`; `(B)` per
   * example), or a tensor `(B, ...)`.
   */
  readonly targets: Targets;
  /** Steps of each sequence; only for id sequences. */
  readonly lengths?: Int32Array;
}

/** Options of {@linkcode batches}. */
export interface BatchOptions {
  /** Examples per batch (default 32); the last batch may be smaller. */
  batchSize?: number;
  /** Whether to shuffle the examples first (default `false`). */
  shuffle?: boolean;
  /** The seed, or a generator to continue (one per run, so that each epoch differs). */
  seed?: RandomSource;
  /** The id that pads short input sequences (default 0). */
  padId?: number;
  /** The target that pads short target sequences, ignored by the losses (default -100). */
  ignoreIndex?: number;
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    (value as Tensor).data instanceof Float32Array;
}

/** Rows `indices` of a tensor `(N, ...)`. */
function rows(value: Tensor, indices: readonly number[]): Tensor {
  const width = sizeOf(value.shape.slice(1));
  const data = new Float32Array(indices.length * width);
  indices.forEach((n, i) => data.set(value.data.subarray(n * width, (n + 1) * width), i * width));
  return { shape: [indices.length, ...value.shape.slice(1)], data };
}

/**
 * The number of examples, after checking that inputs and targets agree (errors name `name`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkData } from "./batches.ts";
 * assert.equal(checkData("data", { inputs: [[1, 2], [3]], targets: [0, 1] }), 2);
 * assert.throws(() => checkData("data", { inputs: [[1]], targets: [] }), /data\.targets/);
 * ```
 */
export function checkData(name: string, data: SequenceData): number {
  if (typeof data !== "object" || data === null || !("inputs" in data) || !("targets" in data)) {
    throw new TypeError(
      `${name} must be { inputs, targets } (arrays with one entry per example) or an array of ` +
        `batches, got ${describeKind(data)}`,
    );
  }
  const { inputs, targets } = data;
  let count: number;
  if (isTensor(inputs)) {
    checkTensor(`${name}.inputs`, inputs);
    count = inputs.shape[0] ?? 0;
  } else if (Array.isArray(inputs)) {
    count = inputs.length;
    inputs.forEach((sequence, n) => {
      if (!Array.isArray(sequence) || sequence.length === 0) {
        throw new TypeError(
          `${name}.inputs[${n}] must be a non-empty array of token ids, got ${
            describeKind(sequence)
          }`,
        );
      }
    });
  } else {
    throw new TypeError(
      `${name}.inputs must be token-id sequences (number[][]) or a tensor of features, got ${
        describeKind(inputs)
      }`,
    );
  }
  if (count === 0) throw new RangeError(`${name}.inputs must hold at least one example, got 0`);
  const targetCount = isTensor(targets)
    ? (checkTensor(`${name}.targets`, targets), targets.shape[0])
    : Array.isArray(targets) || targets instanceof Int32Array
    ? targets.length
    : null;
  if (targetCount === null) {
    throw new TypeError(
      `${name}.targets must be arrays of ids, an array of ids or a tensor, got ${
        describeKind(targets)
      }`,
    );
  }
  if (targetCount !== count) {
    throw new RangeError(
      `${name}.targets must have one entry per example (${count} inputs), got ${targetCount}`,
    );
  }
  if (Array.isArray(targets) && Array.isArray(targets[0])) {
    if (!Array.isArray(inputs)) {
      throw new TypeError(
        `${name}.targets per step (arrays of ids) need inputs as token-id sequences`,
      );
    }
    (targets as readonly (readonly number[])[]).forEach((sequence, n) => {
      if (!Array.isArray(sequence) || sequence.length !== inputs[n].length) {
        throw new RangeError(
          `${name}.targets[${n}] must have one id per step of inputs[${n}] (${
            inputs[n].length
          }), got ${Array.isArray(sequence) ? sequence.length : describeKind(sequence)}`,
        );
      }
    });
  }
  return count;
}

function checkInteger(name: string, value: unknown, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${describe(value)}`);
  }
  return value as number;
}

/**
 * Cuts examples into batches (one epoch's worth), in order or shuffled with a seed. Token-id
 * sequences are padded to the longest of their batch with `padId`, and the batch carries their
 * `lengths`; per-step targets are padded with `ignoreIndex`, which the losses skip.
 *
 * @param data `{ inputs, targets }`, one entry per example.
 * @param options Batch size, shuffling and its seed, padding.
 * @returns The batches, each `{ inputs, targets, lengths? }`.
 *
 * @example Sequences of different lengths
 * ```ts
 * import assert from "node:assert/strict";
 * import { batches } from "../../mod.ts";
 * const [first, second] = batches(
 *   { inputs: [[1, 2, 3], [4], [5, 6]], targets: [[2, 3, 0], [0], [6, 0]] },
 *   { batchSize: 2 },
 * );
 * assert.deepEqual(first.inputs, [[1, 2, 3], [4, 0, 0]]);
 * assert.deepEqual([...first.lengths!], [3, 1]);
 * assert.deepEqual(first.targets, [2, 3, 0, 0, -100, -100]);
 * assert.deepEqual(second.inputs, [[5, 6]]);
 * ```
 *
 * @example Shuffled with a seed: the same order on every run
 * ```ts
 * import assert from "node:assert/strict";
 * import { batches } from "../../mod.ts";
 * const data = { inputs: [[0], [1], [2], [3]], targets: [0, 1, 2, 3] };
 * const once = batches(data, { batchSize: 4, shuffle: true, seed: 7 });
 * assert.deepEqual(batches(data, { batchSize: 4, shuffle: true, seed: 7 }), once);
 * assert.deepEqual([...once[0].targets as number[]].sort(), [0, 1, 2, 3]);
 * ```
 */
export function batches(data: SequenceData, options: BatchOptions = {}): Batch[] {
  checkOptions(options);
  const count = checkData("data", data);
  const batchSize = checkInteger("options.batchSize", options.batchSize ?? 32, 1);
  const padId = checkInteger("options.padId", options.padId ?? 0, 0);
  const ignoreIndex = options.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) {
    throw new TypeError(`options.ignoreIndex must be an integer, got ${describe(ignoreIndex)}`);
  }
  const order = Array.from({ length: count }, (_, n) => n);
  if (options.shuffle ?? false) {
    const seed = options.seed ?? 0;
    const random = seed instanceof Random ? seed : new Random(seed);
    for (let i = count - 1; i > 0; i--) {
      const j = Math.floor(random.uniform() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  const result: Batch[] = [];
  for (let start = 0; start < count; start += batchSize) {
    result.push(batchOf(data, order.slice(start, start + batchSize), padId, ignoreIndex));
  }
  return result;
}

function batchOf(
  { inputs, targets }: SequenceData,
  indices: readonly number[],
  padId: number,
  ignoreIndex: number,
): Batch {
  const targetsOf = (steps: number): Targets => {
    if (isTensor(targets)) return rows(targets, indices);
    const perStep = Array.isArray(targets) && Array.isArray(targets[0]);
    if (!perStep) return indices.map((n) => (targets as ArrayLike<number>)[n]);
    return indices.flatMap((n) => {
      const sequence = (targets as readonly (readonly number[])[])[n];
      return [...sequence, ...new Array(steps - sequence.length).fill(ignoreIndex)];
    });
  };
  if (isTensor(inputs)) return { inputs: rows(inputs, indices), targets: targetsOf(0) };
  const lengths = Int32Array.from(indices, (n) => inputs[n].length);
  const steps = Math.max(...lengths);
  const padded = indices.map((n) => [
    ...inputs[n],
    ...new Array(steps - inputs[n].length).fill(padId),
  ]);
  return { inputs: padded, targets: targetsOf(steps), lengths };
}
