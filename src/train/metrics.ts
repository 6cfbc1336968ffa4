/**
 * Metrics for `fit`: `accuracy()`, `topKAccuracy(k)` and `bitsPerToken()` of class scores against
 * class ids, averaged over the counted targets of an epoch.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Targets } from "../nn/loss.ts";
import { checkTensor, type Tensor } from "../tensor.ts";

/** A batch's contribution to a metric: its sum over the counted rows, and their number. */
export interface MetricTotal {
  /** The metric summed over the counted rows. */
  readonly total: number;
  /** Rows counted (targets equal to the ignore index are not). */
  readonly count: number;
}

/**
 * A metric of a model's output against the batch's targets. `fit` adds up `measure`'s totals and
 * counts over an epoch and reports `total / count` under `name` (`val_` + `name` on the
 * validation data).
 *
 * @example A metric of one's own: the mean of the outputs
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Metric, tensor } from "../../mod.ts";
 * const meanOutput: Metric = {
 *   name: "mean_output",
 *   measure: (output) => ({
 *     total: output.data.reduce((a, b) => a + b, 0),
 *     count: output.data.length,
 *   }),
 * };
 * assert.deepEqual(meanOutput.measure(tensor([1, 3], [2]), [], -100), { total: 4, count: 2 });
 * ```
 */
export interface Metric {
  /** The key in the epoch's metrics (`"accuracy"`, `"top5_accuracy"`, ...). */
  readonly name: string;
  /** Sums the metric over one batch. */
  measure(output: Tensor, targets: Targets, ignoreIndex: number): MetricTotal;
}

/** The class scores' rows and the target of each, checked. */
function scoredRows(
  output: Tensor,
  targets: Targets,
): { classes: number; ids: ArrayLike<number> } {
  checkTensor("output", output);
  const classes = output.shape[output.shape.length - 1];
  const ids = Array.isArray(targets) || targets instanceof Int32Array
    ? targets as ArrayLike<number>
    : (targets as Tensor).data;
  if (output.shape.length < 2 || ids.length * classes !== output.data.length) {
    throw new RangeError(
      `a class metric needs scores (..., classes) with one target id per row, got output ${
        describe(output.shape)
      } and ${ids.length} targets`,
    );
  }
  return { classes, ids };
}

/** Sums `score(row, target)` over the rows whose target is not `ignoreIndex`. */
function overRows(
  output: Tensor,
  targets: Targets,
  ignoreIndex: number,
  score: (row: Float32Array, target: number) => number,
): MetricTotal {
  const { classes, ids } = scoredRows(output, targets);
  let total = 0, count = 0;
  for (let r = 0; r < ids.length; r++) {
    if (ids[r] === ignoreIndex) continue;
    total += score(output.data.subarray(r * classes, (r + 1) * classes), ids[r]);
    count++;
  }
  return { total, count };
}

/**
 * The share of rows whose highest score is the target class, as Keras' `"accuracy"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracy, tensor } from "../../mod.ts";
 * const scores = tensor([0.9, 0.1, 0.2, 0.8, 0.6, 0.4], [3, 2]);
 * assert.deepEqual(accuracy().measure(scores, [0, 1, 1], -100), { total: 2, count: 3 });
 * ```
 */
export function accuracy(): Metric {
  return topKAccuracy(1, "accuracy");
}

/**
 * The share of rows whose target class is among the `k` highest scores (ties counted against).
 *
 * @param k How many of the best classes count, an integer ≥ 1.
 * @param name The metric's key; `top${k}_accuracy` by default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, topKAccuracy } from "../../mod.ts";
 * const metric = topKAccuracy(2);
 * assert.equal(metric.name, "top2_accuracy");
 * const scores = tensor([3, 2, 1, 1, 2, 3], [2, 3]);
 * assert.deepEqual(metric.measure(scores, [1, 0], -100), { total: 1, count: 2 });
 * ```
 */
export function topKAccuracy(k: number, name = `top${k}_accuracy`): Metric {
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(`k must be an integer ≥ 1, got ${describe(k)}`);
  }
  return {
    name,
    measure: (output, targets, ignoreIndex) =>
      overRows(output, targets, ignoreIndex, (row, target) => {
        let higher = 0;
        for (let c = 0; c < row.length; c++) {
          if (row[c] > row[target] || (row[c] === row[target] && c < target)) higher++;
        }
        return higher < k ? 1 : 0;
      }),
  };
}

/**
 * Bits per token: `−log2 softmax(output)[target]` averaged over the rows, the compression view
 * of a language model's cross entropy (`bits = nats / ln 2`). Takes logits or log-probabilities
 * (a `LogSoftmax` output), not probabilities.
 *
 * @example Uniform scores over 4 classes cost 2 bits
 * ```ts
 * import assert from "node:assert/strict";
 * import { bitsPerToken, zeros } from "../../mod.ts";
 * const { total, count } = bitsPerToken().measure(zeros([3, 4]), [0, 1, 2], -100);
 * assert.ok(Math.abs(total / count - 2) < 1e-9);
 * ```
 */
export function bitsPerToken(): Metric {
  return {
    name: "bits_per_token",
    measure: (output, targets, ignoreIndex) =>
      overRows(output, targets, ignoreIndex, (row, target) => {
        let largest = -Infinity;
        for (const value of row) largest = Math.max(largest, value);
        let sum = 0;
        for (const value of row) sum += Math.exp(value - largest);
        return (largest + Math.log(sum) - row[target]) / Math.LN2;
      }),
  };
}
