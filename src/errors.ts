/**
 * Argument checks shared by every public entry point. Each error names the argument, what was
 * expected and what was given, so the caller can fix the call without reading the source.
 *
 * @module
 */

/** Arrays nested deeper than this print as `[…]`: a message must not recurse without bound. */
const DESCRIBE_DEPTH = 4;
/** Arrays (and typed arrays) longer than this print their first items and their length. */
const DESCRIBE_ITEMS = 16;
/** How many items a longer array shows. */
const DESCRIBE_SHOWN = 8;
/** Strings longer than this print their start and their length. */
const DESCRIBE_CHARS = 200;

/**
 * Formats a value for an error message: shapes as `[a, b]`, strings quoted. Bounded whatever
 * the value: arrays nested more than 4 deep print `[…]` below that, arrays of more than 16 items
 * their first 8 and `… (N items)`, typed arrays and strings likewise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describe } from "./errors.ts";
 * assert.equal(describe([2, 3]), "[2, 3]");
 * assert.equal(describe("x"), '"x"');
 * assert.equal(describe([[[[[1]]]]]), "[[[[[…]]]]]");
 * assert.equal(describe(new Array(100).fill(0)), "[0, 0, 0, 0, 0, 0, 0, 0, … (100 items)]");
 * ```
 */
export function describe(value: unknown): string {
  return describeAt(value, 0);
}

function describeAt(value: unknown, depth: number): string {
  if (Array.isArray(value)) {
    if (depth >= DESCRIBE_DEPTH) return "[…]";
    if (value.length <= DESCRIBE_ITEMS) {
      return `[${value.map((item) => describeAt(item, depth + 1)).join(", ")}]`;
    }
    const shown = value.slice(0, DESCRIBE_SHOWN).map((item) => describeAt(item, depth + 1));
    return `[${shown.join(", ")}, … (${value.length} items)]`;
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const items = value as unknown as ArrayLike<number | bigint> & {
      constructor: { name: string };
    };
    if (items.length <= DESCRIBE_ITEMS) return String(value);
    const shown = Array.from({ length: DESCRIBE_SHOWN }, (_, i) => String(items[i]));
    return `${items.constructor.name} [${shown.join(", ")}, … (${items.length} items)]`;
  }
  if (typeof value === "string") {
    if (value.length <= DESCRIBE_CHARS) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, DESCRIBE_CHARS))}… (${value.length} characters)`;
  }
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
