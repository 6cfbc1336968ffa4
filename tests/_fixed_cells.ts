/**
 * Cells and inputs with distinct, deterministic values, for the tests that drive a backend's
 * runner directly (below the models).
 *
 * @module
 */

import type { CellSpec, SequenceInput, VariantKind } from "../src/contract/mod.ts";

/**
 * A cell of `kind` with `k` lanes, `I` inputs and `H` units, with distinct weights (max pooling
 * only where `maxPooling` asks for it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixedCell } from "./_fixed_cells.ts";
 * const spec = fixedCell("array", 2, 3, 5);
 * assert.equal(spec.params.i2hWeight.length, 4 * 2 * 5 * 3);
 * assert.equal(spec.params.i2aWeight, null);
 * ```
 */
export function fixedCell(
  kind: VariantKind,
  k: number,
  I: number,
  H: number,
  maxPooling = false,
): CellSpec {
  const fill = (n: number, scale: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + scale) * scale);
  const attention = kind === "attention";
  return {
    variant: { kind, k, maxPooling },
    inputSize: I,
    hiddenSize: H,
    params: {
      i2hWeight: fill(4 * k * H * I, 0.4),
      i2hBias: fill(4 * k * H, 0.1),
      h2hWeight: fill(4 * k * H * H, 0.3),
      h2hBias: fill(4 * k * H, 0.2),
      i2aWeight: attention ? fill(k * H * I, 0.5) : null,
      i2aBias: attention ? fill(k * H, 0.3) : null,
    },
  };
}

/**
 * `batch` sequences of `seqLen` steps for `spec`, with a non-zero initial hidden and cell state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixedCell, fixedInput } from "./_fixed_cells.ts";
 * const input = fixedInput(fixedCell("lstm", 1, 3, 4), 2, 5);
 * assert.equal(input.x.length, 2 * 5 * 3);
 * assert.equal(input.state.length, 2 * 4);
 * ```
 */
export function fixedInput(spec: CellSpec, batch: number, seqLen: number): SequenceInput {
  const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
  const fill = (n: number, phase: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.9 + phase));
  return {
    batch,
    seqLen,
    x: fill(batch * seqLen * I, 0),
    hidden: fill(batch * H, 1),
    state: fill(k * batch * H, 2),
  };
}
