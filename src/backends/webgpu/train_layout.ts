/**
 * The training kernels' layouts (see `kernels/train_cell.wgsl`): all parameters of a cell in one
 * flat buffer, in PyTorch's layouts one after the other, so that one optimizer dispatch and one
 * norm reduction cover them all; and inputs time-major, so that the rows of all steps line up with
 * the recorded gates for the weight-gradient GEMMs.
 *
 * @module
 */

import type { CellParameters, CellSpec } from "../../contract/mod.ts";

/** Where one parameter lies in the flat buffer. */
export interface ParameterSlot {
  /** Its PyTorch name: `i2h.weight`, `i2h.bias`, `h2h.weight`, `h2h.bias`, `i2a.weight`, `i2a.bias`. */
  readonly name: string;
  /** Its field in {@linkcode CellParameters}. */
  readonly field: keyof CellParameters;
  /** First float. */
  readonly offset: number;
  /** Floats. */
  readonly length: number;
}

/** The flat parameter buffer of a cell: its slots by name and its length. */
export interface ParameterLayout {
  /** In buffer order. */
  readonly slots: readonly ParameterSlot[];
  /** Slots by PyTorch name. */
  readonly byName: Readonly<Record<string, ParameterSlot>>;
  /** Floats in all. */
  readonly length: number;
}

/**
 * The flat layout of a cell's parameters: `i2h.weight (4kH, I)`, `i2h.bias`, `h2h.weight (4kH,
 * H)`, `h2h.bias`, then for attention `i2a.weight (kH, I)`, `i2a.bias`.
 *
 * @example
 * ```ts
 * import { parameterLayout } from "./train_layout.ts";
 * const layout = parameterLayout({ kind: "lstm", k: 1, maxPooling: false }, 3, 2);
 * layout.byName["h2h.weight"].offset; // 8 · 3 + 8
 * ```
 */
export function parameterLayout(
  variant: CellSpec["variant"],
  inputSize: number,
  hiddenSize: number,
): ParameterLayout {
  const rows = 4 * variant.k * hiddenSize;
  const sizes: Array<[string, keyof CellParameters, number]> = [
    ["i2h.weight", "i2hWeight", rows * inputSize],
    ["i2h.bias", "i2hBias", rows],
    ["h2h.weight", "h2hWeight", rows * hiddenSize],
    ["h2h.bias", "h2hBias", rows],
  ];
  if (variant.kind === "attention") {
    sizes.push(
      ["i2a.weight", "i2aWeight", variant.k * hiddenSize * inputSize],
      ["i2a.bias", "i2aBias", variant.k * hiddenSize],
    );
  }
  const slots: ParameterSlot[] = [];
  let offset = 0;
  for (const [name, field, length] of sizes) {
    slots.push({ name, field, offset, length });
    offset += length;
  }
  return {
    slots,
    byName: Object.fromEntries(slots.map((slot) => [slot.name, slot])),
    length: offset,
  };
}

/**
 * The parameters of a cell in one flat array laid out by `layout`.
 *
 * @example
 * ```ts
 * import { flattenParameters, parameterLayout } from "./train_layout.ts";
 * const z = (n: number) => new Float32Array(n);
 * const layout = parameterLayout({ kind: "lstm", k: 1, maxPooling: false }, 1, 1);
 * const flat = flattenParameters(layout, {
 *   i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null,
 * });
 * ```
 */
export function flattenParameters(
  layout: ParameterLayout,
  params: CellParameters,
): Float32Array<ArrayBuffer> {
  const flat = new Float32Array(layout.length);
  for (const slot of layout.slots) flat.set(params[slot.field]!, slot.offset);
  return flat;
}

/**
 * Splits a flat array laid out by `layout` into fresh arrays by PyTorch name.
 *
 * @example
 * ```ts
 * import { parameterLayout, splitParameters } from "./train_layout.ts";
 * const layout = parameterLayout({ kind: "lstm", k: 1, maxPooling: false }, 1, 1);
 * const record = splitParameters(layout, new Float32Array(layout.length));
 * record["h2h.bias"].length; // 4
 * ```
 */
export function splitParameters(
  layout: ParameterLayout,
  flat: Float32Array,
): Record<string, Float32Array> {
  return Object.fromEntries(
    layout.slots.map((slot) => [slot.name, flat.slice(slot.offset, slot.offset + slot.length)]),
  );
}

/**
 * Swaps the first two axes of a `(rows, columns, width)` array: `(B, T, I)` to `(T, B, I)` and
 * back.
 *
 * @example
 * ```ts
 * import { swapLeadingAxes } from "./train_layout.ts";
 * swapLeadingAxes(new Float32Array([1, 2, 3, 4, 5, 6]), 1, 3, 2); // (3, 1, 2): the same order
 * ```
 */
export function swapLeadingAxes(
  data: ArrayLike<number>,
  rows: number,
  columns: number,
  width: number,
): Float32Array<ArrayBuffer> {
  const swapped = new Float32Array(rows * columns * width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const from = (r * columns + c) * width, to = (c * rows + r) * width;
      for (let i = 0; i < width; i++) swapped[to + i] = data[from + i];
    }
  }
  return swapped;
}
