/**
 * Argument checks shared by every public entry point. Each error names the argument, what was
 * expected and what was given, so the caller can fix the call without reading the source.
 *
 * @module
 */

/** Formats a value for an error message: shapes as `[a, b]`, strings quoted. */
export function describe(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(describe).join(", ")}]`;
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  return String(value);
}

/**
 * Names the kind of a value where {@linkcode describe} would print `[object Object]`: `a Linear`,
 * `a plain object`, `the class LSTM (not an instance: new LSTM(...))`, `number 3`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeKind } from "./errors.ts";
 * assert.equal(describeKind(new Map()), "a Map");
 * assert.equal(describeKind({}), "a plain object");
 * assert.equal(describeKind(3), "number 3");
 * ```
 */
export function describeKind(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "function") {
    const name = value.name || "(anonymous)";
    return /^class\b/.test(Function.prototype.toString.call(value))
      ? `the class ${name} (not an instance: new ${name}(...))`
      : `the function ${name}`;
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object") {
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    if (typeof name !== "string" || name === "" || name === "Object") return "a plain object";
    return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
  }
  return `${typeof value} ${describe(value)}`;
}

/**
 * Checks that `value` is a positive integer (a size), and returns it.
 *
 * @example
 * ```ts
 * import { checkSize } from "./errors.ts";
 * const hiddenSize = checkSize("hiddenSize", 128);
 * ```
 */
export function checkSize(name: string, value: unknown): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${name} must be a positive integer, got ${typeof value} ${describe(value)}`,
    );
  }
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks that an options argument is an object (so its fields can be read), and returns it.
 *
 * @example
 * ```ts
 * import { checkOptions } from "./errors.ts";
 * const { seed = 0 } = checkOptions({ seed: 1 } as { seed?: number });
 * ```
 */
export function checkOptions<T>(options: T): T {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  return options;
}

/**
 * Checks that a shape matches the expected one; `-1` in `expected` accepts any size there.
 *
 * @example
 * ```ts
 * import { checkShape } from "./errors.ts";
 * checkShape("x", [4, 10, 3], [-1, -1, 3], "(batch, seq_len, input_size)");
 * ```
 */
export function checkShape(
  name: string,
  actual: readonly number[],
  expected: readonly number[],
  meaning: string,
): void {
  const matches = actual.length === expected.length &&
    expected.every((size, axis) => size === -1 || size === actual[axis]);
  if (matches) return;
  const wanted = expected.map((size) => (size === -1 ? "*" : String(size))).join(", ");
  const problem = actual.length === expected.length
    ? "shape"
    : `rank (expected ${expected.length}, got ${actual.length})`;
  throw new RangeError(
    `${name} has the wrong ${problem}: expected ${meaning} = [${wanted}], got ${describe(actual)}`,
  );
}
