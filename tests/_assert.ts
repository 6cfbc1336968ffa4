/**
 * Numeric comparison for the tests: one {@linkcode assertClose} and the named tolerances the suite
 * uses, each with where its value comes from. A tolerance is a rule for the bound on
 * `|actual[i] − expected[i]|`; the rules differ because the errors they bound scale differently
 * (float32 rounding of values near 1, gradients spanning decades, ...).
 *
 * @example
 * ```ts
 * import { assertClose, TOLERANCE } from "./_assert.ts";
 * assertClose([1, 2.000001], [1, 2], TOLERANCE.float32, "output");
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * How far `actual[i]` may be from `expected[i]`; `scale` below is the largest `|expected|` of the
 * array. Every comparison is `error ≤ bound`, so a NaN fails it.
 *
 * - `absolute`: `bound`.
 * - `mixed`: `bound · (1 + |expected[i]|)`: absolute near 0, relative for large values.
 * - `scaled`: `bound · max(1, |expected[i]|)`: the same idea, bounded by the larger term only.
 * - `largest`: `bound · max(scale, minScale)`: relative to the array's largest entry.
 * - `relative`: `bound · |expected[i]| + floor`: per entry, with a floor for the entries near 0.
 * - `relativeOfLargest`: `bound · |expected[i]| + floor · max(scale, minScale)`: per entry, with a
 *   floor relative to the largest entry.
 */
export type Tolerance =
  | { readonly mode: "absolute"; readonly bound: number }
  | { readonly mode: "mixed"; readonly bound: number }
  | { readonly mode: "scaled"; readonly bound: number }
  | { readonly mode: "largest"; readonly bound: number; readonly minScale: number }
  | { readonly mode: "relative"; readonly bound: number; readonly floor: number }
  | {
    readonly mode: "relativeOfLargest";
    readonly bound: number;
    readonly floor: number;
    readonly minScale: number;
  };

/**
 * `|actual − expected| ≤ bound`.
 *
 * @example
 * ```ts
 * import { absolute } from "./_assert.ts";
 * const tolerance = absolute(1e-6);
 * ```
 */
export function absolute(bound: number): Tolerance {
  return { mode: "absolute", bound };
}

/**
 * `|actual − expected| ≤ bound · (1 + |expected|)`.
 *
 * @example
 * ```ts
 * import { mixed } from "./_assert.ts";
 * const tolerance = mixed(1e-5);
 * ```
 */
export function mixed(bound: number): Tolerance {
  return { mode: "mixed", bound };
}

/**
 * `|actual − expected| ≤ bound · max(1, |expected|)`.
 *
 * @example
 * ```ts
 * import { scaled } from "./_assert.ts";
 * const tolerance = scaled(2e-3);
 * ```
 */
export function scaled(bound: number): Tolerance {
  return { mode: "scaled", bound };
}

/**
 * `|actual − expected| ≤ bound · max(largest |expected|, minScale)`.
 *
 * @example
 * ```ts
 * import { ofLargest } from "./_assert.ts";
 * const tolerance = ofLargest(1e-3);
 * ```
 */
export function ofLargest(bound: number, minScale = 0): Tolerance {
  return { mode: "largest", bound, minScale };
}

/**
 * `|actual − expected| ≤ bound · |expected| + floor`.
 *
 * @example
 * ```ts
 * import { relative } from "./_assert.ts";
 * const tolerance = relative(1e-5);
 * ```
 */
export function relative(bound: number, floor = 0): Tolerance {
  return { mode: "relative", bound, floor };
}

/**
 * `|actual − expected| ≤ bound · |expected| + floor · max(largest |expected|, minScale)`.
 *
 * @example
 * ```ts
 * import { relativeOfLargest } from "./_assert.ts";
 * const tolerance = relativeOfLargest(1e-4, 1e-6, 1e-3);
 * ```
 */
export function relativeOfLargest(bound: number, floor: number, minScale = 0): Tolerance {
  return { mode: "relativeOfLargest", bound, floor, minScale };
}

/** The tolerances that several tests share, named by what they compare. */
export const TOLERANCE = {
  /** Bit-identical results (the same arithmetic in the same order). */
  exact: absolute(0),
  /** The same float32 arithmetic in another order or split differently (max abs). */
  reordered: absolute(1e-6),
  /** Two float32 backends, or a batched and a lone run, on the same model (max abs). */
  backends: absolute(1e-5),
  /** A float32 backend against the float64 reference on random cells (max abs). */
  float32: absolute(3e-5),
  /**
   * A float32 forward against a golden file (max abs). tests/testdata/golden/README.md: the
   * reference's own float32 error is up to 3e-6 and grows with the sequence length.
   */
  golden: absolute(2e-5),
  /** {@linkcode TOLERANCE.golden} on the saturated cases (23-41 % of |gate inputs| > 10). */
  goldenSaturated: absolute(1e-4),
  /** Losses against a golden trajectory (tests/testdata/golden_train/README.md). */
  loss: relative(1e-5),
  /**
   * Float32 gradients against float64 ones: within 1e-3 of each tensor's largest entry
   * (tests/testdata/golden_train/README.md).
   */
  gradient: ofLargest(1e-3),
  /** Float64 gradients against the golden ones (float64 throughout; summation order differs). */
  referenceGradient: relativeOfLargest(1e-4, 1e-6, 1e-3),
  /** The tape's gradients against central differences of a float32 loss (step 1e-3 to 1e-2). */
  float32FiniteDifference: scaled(2e-3),
  /** Float64 gradients against float64 central finite differences (step 1e-3 · max(1, |w|)). */
  finiteDifference: relative(1e-4, 1e-6),
} as const;

/** An array, or a tensor-like value whose shape is compared too. */
export type Numbers = ArrayLike<number> | {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
};

function dataOf(value: Numbers): ArrayLike<number> {
  return "data" in value ? value.data : value;
}

/** The largest `|expected|` of the array (0 when empty). */
function largest(expected: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  return scale;
}

/** The bound on entry `i` under `tolerance`; `scale` is the largest `|expected|`. */
function boundOf(tolerance: Tolerance, expected: number, scale: number): number {
  switch (tolerance.mode) {
    case "absolute":
      return tolerance.bound;
    case "mixed":
      return tolerance.bound * (1 + Math.abs(expected));
    case "scaled":
      return tolerance.bound * Math.max(1, Math.abs(expected));
    case "largest":
      return tolerance.bound * Math.max(scale, tolerance.minScale);
    case "relative":
      return tolerance.bound * Math.abs(expected) + tolerance.floor;
    case "relativeOfLargest":
      return tolerance.bound * Math.abs(expected) +
        tolerance.floor * Math.max(scale, tolerance.minScale);
  }
}

/** The first entry out of tolerance, or `null`; NaN where `expected` is NaN matches when `nan`. */
function firstMismatch(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance,
  nan: boolean,
): { index: number; error: number; bound: number } | null {
  const scale = tolerance.mode === "largest" || tolerance.mode === "relativeOfLargest"
    ? largest(expected)
    : 0;
  for (let i = 0; i < expected.length; i++) {
    if (nan && Number.isNaN(expected[i]) && Number.isNaN(actual[i])) continue;
    const error = Math.abs(actual[i] - expected[i]);
    const bound = boundOf(tolerance, expected[i], scale);
    if (!(error <= bound)) return { index: i, error, bound };
  }
  return null;
}

/** Options of {@linkcode assertClose}. */
export interface CloseOptions {
  /** A NaN in `actual` matches a NaN in `expected` (default: every NaN fails). */
  readonly nanMatches?: boolean;
}

/**
 * Fails unless `actual` and `expected` have the same length (and shape, for tensors) and every
 * entry is within `tolerance`; the message names `label`, the first entry out of tolerance and
 * its bound.
 *
 * @example
 * ```ts
 * import { absolute, assertClose } from "./_assert.ts";
 * assertClose(new Float32Array([0.5]), [0.5], absolute(0), "hidden");
 * ```
 */
export function assertClose(
  actual: Numbers,
  expected: Numbers,
  tolerance: Tolerance,
  label: string,
  options: CloseOptions = {},
): void {
  if ("shape" in actual && "shape" in expected) {
    assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  }
  const [a, e] = [dataOf(actual), dataOf(expected)];
  assert.equal(a.length, e.length, `${label}: length`);
  const miss = firstMismatch(a, e, tolerance, options.nanMatches ?? false);
  if (miss !== null) {
    const { index, error, bound } = miss;
    assert.fail(
      `${label}[${index}]: got ${a[index]}, expected ${
        e[index]
      } (error ${error} > ${bound}, ${tolerance.mode} ${tolerance.bound})`,
    );
  }
}

/** The three results of a sequence run, as arrays or tensors. */
export interface SequenceResult {
  readonly output: Numbers;
  readonly hidden: Numbers;
  readonly state: Numbers;
}

/**
 * {@linkcode assertClose} on the output, the final hidden and the final state of two runs.
 *
 * @example
 * ```ts
 * import { assertCloseSequence, TOLERANCE } from "./_assert.ts";
 * const run = { output: [0.1, 0.2], hidden: [0.2], state: [0.3] };
 * assertCloseSequence(run, run, TOLERANCE.exact, "same run");
 * ```
 */
export function assertCloseSequence(
  actual: SequenceResult,
  expected: SequenceResult,
  tolerance: Tolerance,
  label: string,
): void {
  for (const key of ["output", "hidden", "state"] as const) {
    assertClose(actual[key], expected[key], tolerance, `${label}: ${key}`);
  }
}

/**
 * Whether `actual` is within `tolerance` of `expected` (same length, and shape for tensors): for
 * tests that accept one of several results.
 *
 * @example
 * ```ts
 * import { isClose, TOLERANCE } from "./_assert.ts";
 * const either = isClose([1], [1], TOLERANCE.backends) || isClose([1], [2], TOLERANCE.backends);
 * ```
 */
export function isClose(actual: Numbers, expected: Numbers, tolerance: Tolerance): boolean {
  if ("shape" in actual && "shape" in expected && actual.shape.join() !== expected.shape.join()) {
    return false;
  }
  const [a, e] = [dataOf(actual), dataOf(expected)];
  return a.length === e.length && firstMismatch(a, e, tolerance, false) === null;
}

/**
 * The largest absolute difference between two arrays of the same length (Infinity for a NaN),
 * for tests that record or print the error rather than assert it.
 *
 * @example
 * ```ts
 * import { maxAbsDiff } from "./_assert.ts";
 * const worst = maxAbsDiff([1, 2], [1, 2.5]); // 0.5
 * ```
 */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new RangeError(`lengths differ: ${actual.length} vs ${expected.length}`);
  }
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= worst)) worst = Number.isNaN(diff) ? Infinity : diff;
  }
  return worst;
}
