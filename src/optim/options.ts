/**
 * The option checks of the optimizers: numbers in range, known names, and the `nonfinite` policy.
 *
 * @module
 */

import { describe } from "../errors.ts";

/**
 * Checks that `options[name]` (or its default) is a finite number ≥ `min` (and < `below`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberOption } from "./options.ts";
 * assert.equal(numberOption({}, "lr", 1e-3), 1e-3);
 * assert.throws(() => numberOption({ lr: -1 }, "lr", 1e-3), /options\.lr must be a number ≥ 0/);
 * ```
 */
export function numberOption(
  options: Record<string, unknown>,
  name: string,
  fallback: number,
  { min = 0, below = Infinity }: { min?: number; below?: number } = {},
): number {
  const value = options[name] ?? fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value >= below) {
    const range = below === Infinity ? `≥ ${min}` : `in [${min}, ${below})`;
    throw new RangeError(`options.${name} must be a number ${range}, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks that `options` is an object whose keys are all among `known`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOptionNames } from "./options.ts";
 * assert.throws(() => checkOptionNames("SGD", { rate: 1 }, ["lr"]), /unknown option "rate" for SGD/);
 * ```
 */
export function checkOptionNames(owner: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new TypeError(
        `unknown option ${describe(name)} for ${owner}; expected some of ${known.join(", ")}`,
      );
    }
  }
}

/**
 * Checks an optimizer's `nonfinite` option (default `"error"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nonfiniteOption } from "./options.ts";
 * assert.equal(nonfiniteOption({}), "error");
 * assert.throws(() => nonfiniteOption({ nonfinite: "ignore" }), /"error" or "skip"/);
 * ```
 */
export function nonfiniteOption(options: { nonfinite?: unknown }): "error" | "skip" {
  const value = options.nonfinite ?? "error";
  if (value !== "error" && value !== "skip") {
    throw new TypeError(`options.nonfinite must be "error" or "skip", got ${describe(value)}`);
  }
  return value;
}
