/**
 * Losses with PyTorch's semantics: `nllLoss`, `crossEntropy` (class indices on the last axis of
 * `(B, C)` or `(B, T, V)` inputs, `ignoreIndex`) and `mseLoss`; reductions `"mean"`, `"sum"` and
 * `"none"`.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { logSoftmax } from "./functional.ts";
import { record, type TrackedTensor } from "./tape.ts";

/** How a loss reduces its per-element values. */
export type Reduction = "mean" | "sum" | "none";

/** Options of {@linkcode nllLoss} and {@linkcode crossEntropy}. */
export interface ClassificationLossOptions {
  /** `"mean"` (default: over the targets that are not ignored), `"sum"` or `"none"`. */
  reduction?: Reduction;
  /** A target id that contributes nothing (PyTorch's `ignore_index`); default `-100`. */
  ignoreIndex?: number;
}

/** Options of {@linkcode mseLoss}. */
export interface MseLossOptions {
  /** `"mean"` (default), `"sum"` or `"none"`. */
  reduction?: Reduction;
}

/** Class indices: one per row of the input (all axes but the last). */
export type Targets = readonly number[] | Int32Array | Tensor;

function checkReduction(value: unknown): Reduction {
  const reduction = value ?? "mean";
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new TypeError(
      `options.reduction must be "mean", "sum" or "none", got ${describe(reduction)}`,
    );
  }
  return reduction;
}

function checkTargets(
  targets: Targets,
  input: Tensor,
  classes: number,
  ignoreIndex: number,
): ArrayLike<number> {
  const rows = input.data.length / classes;
  const rowShape = input.shape.slice(0, -1);
  let ids: ArrayLike<number>;
  if (Array.isArray(targets) || targets instanceof Int32Array) {
    ids = targets as ArrayLike<number>;
  } else {
    checkTensor("targets", targets);
    const shape = (targets as Tensor).shape;
    if (shape.length !== rowShape.length || shape.some((size, i) => size !== rowShape[i])) {
      throw new RangeError(
        `targets must have the shape of input without its last axis, ${describe(rowShape)}, got ${
          describe(shape)
        }`,
      );
    }
    ids = (targets as Tensor).data;
  }
  if (ids.length !== rows) {
    throw new RangeError(
      `targets must hold one class id per row of input (${rows} for input shape ${
        describe(input.shape)
      }), got ${ids.length}`,
    );
  }
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id !== ignoreIndex && !(Number.isInteger(id) && id >= 0 && id < classes)) {
      throw new RangeError(
        `targets[${i}] must be a class id in [0, ${classes}) or ignoreIndex ${ignoreIndex}, got ${
          describe(id)
        }`,
      );
    }
  }
  return ids;
}

/** Reduces per-row losses and records the backward that spreads the gradient back over them. */
function reduce(
  name: string,
  values: Float32Array,
  shape: readonly number[],
  reduction: Reduction,
  divisor: number,
  input: Tensor,
  backward: (rowGrad: (i: number) => number) => Float32Array,
): TrackedTensor {
  if (reduction === "none") {
    return record(name, [{ shape, data: values }], [input], ([grad]) => [
      backward((i) => grad![i]),
    ])[0];
  }
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  const scale = reduction === "mean" ? 1 / divisor : 1;
  return record(name, [{ shape: [], data: new Float32Array([total * scale]) }], [input], ([g]) => [
    backward(() => g![0] * scale),
  ])[0];
}

/**
 * The negative log likelihood of class indices, as `F.nll_loss`, with the classes on the last
 * axis: `input` `(B, C)` with `(B)` targets, or `(B, T, V)` with `(B, T)` targets (the per-step
 * outputs of a sequence model). With `"mean"`, the mean over the targets that are not
 * `ignoreIndex`.
 *
 * @param input Log-probabilities, e.g. from {@linkcode logSoftmax}.
 * @param targets Class ids as `number[]`, `Int32Array` or a tensor.
 * @throws {RangeError} If a class id is out of range or the targets do not match the rows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logSoftmax, nllLoss, tensor } from "../../mod.ts";
 * const loss = nllLoss(logSoftmax(tensor([0, 0, 0, 0], [2, 2])), [0, 1]);
 * assert.ok(Math.abs(loss.data[0] - Math.log(2)) < 1e-7);
 * ```
 */
export function nllLoss(
  input: Tensor,
  targets: Targets,
  options: ClassificationLossOptions = {},
): TrackedTensor {
  checkTensor("input", input);
  if (input.shape.length < 2 || input.shape[input.shape.length - 1] === 0) {
    throw new RangeError(
      `input must be (batch, classes) or (batch, seqLen, classes), got shape ${
        describe(input.shape)
      }`,
    );
  }
  const reduction = checkReduction(options.reduction);
  const ignoreIndex = options.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) {
    throw new TypeError(`options.ignoreIndex must be an integer, got ${describe(ignoreIndex)}`);
  }
  const classes = input.shape[input.shape.length - 1];
  const ids = checkTargets(targets, input, classes, ignoreIndex);
  const values = new Float32Array(ids.length);
  let counted = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === ignoreIndex) continue;
    values[i] = -input.data[i * classes + ids[i]];
    counted++;
  }
  return reduce("nllLoss", values, input.shape.slice(0, -1), reduction, counted, input, (row) => {
    const dx = new Float32Array(input.data.length);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== ignoreIndex) dx[i * classes + ids[i]] = -row(i);
    }
    return dx;
  });
}

/**
 * Cross entropy of logits and class indices: `nllLoss(logSoftmax(input), targets, options)`, as
 * `F.cross_entropy` with the classes on the last axis.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crossEntropy, tensor } from "../../mod.ts";
 * const loss = crossEntropy(tensor([5, 0, 0, 5], [2, 2]), new Int32Array([0, 1]));
 * assert.ok(loss.data[0] < 0.01);
 * ```
 */
export function crossEntropy(
  input: Tensor,
  targets: Targets,
  options: ClassificationLossOptions = {},
): TrackedTensor {
  checkTensor("input", input);
  return nllLoss(logSoftmax(input), targets, options);
}

/**
 * The mean squared error `(input − target)²`, as `F.mse_loss`. The gradient flows to `input`
 * (and to `target` when it carries history).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mseLoss, tensor } from "../../mod.ts";
 * assert.equal(mseLoss(tensor([1, 3], [2]), tensor([0, 0], [2])).data[0], 5);
 * ```
 */
export function mseLoss(
  input: Tensor,
  target: Tensor,
  options: MseLossOptions = {},
): TrackedTensor {
  checkTensor("input", input);
  checkTensor("target", target);
  if (
    input.shape.length !== target.shape.length ||
    input.shape.some((size, i) => size !== target.shape[i])
  ) {
    throw new RangeError(
      `target must have the shape of input, ${describe(input.shape)}, got ${
        describe(target.shape)
      }`,
    );
  }
  const reduction = checkReduction(options.reduction);
  const n = input.data.length;
  const values = input.data.map((value, i) => (value - target.data[i]) ** 2);
  let total = 0;
  for (let i = 0; i < n; i++) total += values[i];
  const scale = reduction === "mean" ? 1 / n : 1;
  const out = reduction === "none"
    ? { shape: [...input.shape], data: values }
    : { shape: [], data: new Float32Array([total * scale]) };
  return record("mseLoss", [out], [input, target], ([grad]) => {
    const dInput = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const g = reduction === "none" ? grad![i] : grad![0] * scale;
      dInput[i] = 2 * g * (input.data[i] - target.data[i]);
    }
    return [dInput, dInput.map((value) => -value)];
  })[0];
}
