/**
 * The arithmetic of a forward, which the compiled backends split their calls by.
 *
 * @module
 */

import type { CellSpec, SequenceInput } from "../contract/mod.ts";
import { VARIANTS } from "../variants.ts";

/**
 * The floating-point operations of one forward of `input` on `spec`'s cell (a multiply-add is
 * two): the gate GEMM (input and recurrent rows in one: `4k` gates for the LSTM family, 3 for a
 * GRU, 1 for an RNN), plus the attention projection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forwardFlops } from "./flops.ts";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 10, hiddenSize: 128 } as const;
 * assert.equal(forwardFlops(spec, { batch: 1, seqLen: 1 }), 2 * 4 * 128 * 138);
 * ```
 */
export function forwardFlops(
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  input: Pick<SequenceInput, "batch" | "seqLen">,
): number {
  const { variant, inputSize: I, hiddenSize: H } = spec;
  const { cellStates, attention } = VARIANTS[variant.kind];
  const gates = cellStates ? 4 * variant.k : variant.kind === "gru" ? 3 : 1;
  const perRow = 2 * gates * H * (I + H) + (attention ? 2 * variant.k * H * I : 0);
  return input.batch * input.seqLen * perRow;
}
