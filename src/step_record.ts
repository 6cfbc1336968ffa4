/**
 * The per-step uniform record of the WebGPU kernels, written once: `kernels/generate.ts` writes
 * it as `struct Step` in front of every kernel, and the runner fills records with
 * {@linkcode stepRecord}, so the two layouts cannot drift apart. Every field is a `u32`.
 *
 * @module
 */

/** The fields of `struct Step`, in memory order, with what each holds. */
export const STEP_FIELDS = [
  ["batch", "Rows of this batch chunk, padded to whole workgroups of the entry point."],
  ["time", "The time step."],
  ["chunkStep", "The time step's index inside the projected time chunk."],
  ["chunkStart", "The first time step of the projected time chunk."],
  ["seqLen", "Time steps of the whole call."],
  [
    "validBatch",
    "Rows that hold real sequences; the others are padding, never written to `output`.",
  ],
  ["inputRows", "Rows of one plane of the projection's input (read by the projection only)."],
  ["lanes", "k: memory cells (lanes) per hidden unit."],
  ["hiddenSize", "H."],
  ["paddedUnits", "H rounded up to a multiple of four (zero-padded)."],
  ["paddedInputs", "I rounded up to a multiple of four (zero-padded)."],
] as const;

/** The name of one field of the step record. */
export type StepField = typeof STEP_FIELDS[number][0];

/** 32-bit words of one step record. */
export const STEP_WORDS: number = STEP_FIELDS.length;

/**
 * The words of one step record, in the order of `struct Step`.
 *
 * @example
 * ```ts
 * import { STEP_WORDS, stepRecord } from "./step_record.ts";
 * import assert from "node:assert/strict";
 * const words = stepRecord({
 *   batch: 8, time: 3, chunkStep: 1, chunkStart: 2, seqLen: 10, validBatch: 5, inputRows: 88,
 *   lanes: 4, hiddenSize: 6, paddedUnits: 8, paddedInputs: 4,
 * });
 * assert.equal(words.length, STEP_WORDS);
 * assert.equal(words[1], 3);
 * ```
 */
export function stepRecord(values: Readonly<Record<StepField, number>>): number[] {
  return STEP_FIELDS.map(([name]) => values[name]);
}
