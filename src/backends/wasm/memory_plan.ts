/**
 * How much WASM memory a cell and a call need, and how to split a call so that it fits: a wasm
 * instance's memory never shrinks, and one that cannot grow far enough fails deep in the kernel,
 * so the backend plans every call before it runs and refuses, with what fits, what never could.
 *
 * The sizes follow `wasm/src/sequence.rs` (`Workspace`) and `wasm/src/pack.rs` (`Layout`).
 *
 * @module
 */

import { type CellSpec, offersExtra, type SequenceExtras } from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";

/** The sizes of a cell a plan depends on. */
export type CellSizes = Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">;

/** Limits of one wasm instance, in bytes. */
export interface WasmMemoryLimits {
  /** Memory one instance may address: all of wasm32's 4 GiB (addresses are read unsigned). */
  readonly instanceBytes: number;
  /**
   * Memory one call should add to an instance at most: larger calls are split into chunks of
   * batch rows that run one after the other (the results are the same however a batch is split).
   */
  readonly chunkBytes: number;
}

/** The limits the WASM backend plans with. */
export const WASM_MEMORY_LIMITS: WasmMemoryLimits = {
  instanceBytes: 2 ** 32,
  chunkBytes: 256 * 2 ** 20,
};

/** What a call of `batch` rows runs as: chunks of at most `rowsPerChunk` rows per instance. */
export interface WasmCallPlan {
  /** Batch rows one instance runs at a time. */
  readonly rowsPerChunk: number;
  /** Bytes of one instance's memory a chunk needs, weights included. */
  readonly bytesPerChunk: number;
}

/** Floats are 4 bytes; each buffer is rounded up to whole 64-byte lines plus allocator overhead. */
function bytesOf(floats: number): number {
  return Math.ceil(floats / 16) * 64 + 64;
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

function layoutOf({ variant: { k }, inputSize: I, hiddenSize: H }: CellSizes) {
  const inputPad = roundUp(I, 4), hiddenPad = roundUp(H, 4);
  return {
    k,
    I,
    H,
    inputPad,
    hiddenPad,
    depth: inputPad + hiddenPad,
    attentionCols: roundUp(k * hiddenPad, 16),
  };
}

/**
 * Peak bytes of packing a cell's weights into an instance: the parameters as passed in, the packed
 * panels, and the copy they are packed from.
 *
 * @example
 * ```ts
 * import { wasmWeightBytes } from "./memory_plan.ts";
 * const bytes = wasmWeightBytes({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 10, hiddenSize: 128 });
 * ```
 */
export function wasmWeightBytes(cell: CellSizes): number {
  const { k, I, H, inputPad, hiddenPad, depth, attentionCols } = layoutOf(cell);
  const { attention } = VARIANTS[cell.variant.kind];
  const raw = bytesOf(4 * k * H * I) + bytesOf(4 * k * H * H) + 2 * bytesOf(4 * k * H) +
    (attention ? bytesOf(k * H * I) + bytesOf(k * H) : 0);
  const packed = bytesOf(4 * k * hiddenPad * depth) + bytesOf(4 * k * hiddenPad) +
    (attention ? bytesOf(attentionCols * inputPad) + bytesOf(attentionCols) : 0);
  return raw + 2 * packed;
}

/**
 * Bytes one call of `rows` batch rows and `seqLen` steps adds to an instance: the inputs copied in,
 * the workspace of `wasm/src/sequence.rs` and the results.
 *
 * @example
 * ```ts
 * import { wasmCallBytes } from "./memory_plan.ts";
 * const bytes = wasmCallBytes({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 10, hiddenSize: 128 }, 64, 100);
 * ```
 */
export function wasmCallBytes(
  cell: CellSizes,
  rows: number,
  seqLen: number,
  extras: SequenceExtras = {},
): number {
  const { k, I, H, hiddenPad, depth, attentionCols } = layoutOf(cell);
  const { attention, argmax } = VARIANTS[cell.variant.kind];
  const inputs = bytesOf(rows * seqLen * I) + bytesOf(rows * H) + bytesOf(k * rows * H);
  const workspace = 2 * bytesOf(rows * depth) + bytesOf(rows * k * hiddenPad) +
    (argmax ? bytesOf(rows * hiddenPad) : 0) +
    (attention ? bytesOf(rows * attentionCols) : 0);
  const results = bytesOf(rows * seqLen * H) + bytesOf(rows * H) + bytesOf(k * rows * H);
  // The opt-in outputs (a variant without the feature ignores its flag, as the kernel does).
  const offers = (output: "attention" | "lanes") =>
    extras[output] === true && offersExtra(cell.variant.kind, output);
  const asked = (offers("attention") ? bytesOf(rows * seqLen * H * k) : 0) +
    (offers("lanes") ? bytesOf(rows * hiddenPad) + bytesOf(rows * seqLen * H) : 0);
  return inputs + workspace + results + asked;
}

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30
    ? `${(bytes / 2 ** 30).toFixed(1)} GiB`
    : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Checks that a cell's weights fit one instance.
 *
 * @throws {RangeError} Saying how much the weights need and the largest `hiddenSize` that fits.
 *
 * @example
 * ```ts
 * import { checkWasmWeights } from "./memory_plan.ts";
 * checkWasmWeights({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 10, hiddenSize: 128 });
 * ```
 */
export function checkWasmWeights(cell: CellSizes, limits = WASM_MEMORY_LIMITS): void {
  const bytes = wasmWeightBytes(cell);
  if (bytes <= limits.instanceBytes) return;
  let low = 0, high = cell.hiddenSize;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (wasmWeightBytes({ ...cell, hiddenSize: middle }) <= limits.instanceBytes) low = middle;
    else high = middle;
  }
  throw new RangeError(
    `hiddenSize ${cell.hiddenSize} needs ${formatBytes(bytes)} of WASM memory to pack the ` +
      `weights (4·k·H·(I + H) floats, k = ${cell.variant.k}, I = ${cell.inputSize}), more than ` +
      `the ${formatBytes(limits.instanceBytes)} a WASM instance can use; at most hiddenSize ` +
      `${low} fits with this inputSize and k`,
  );
}

/**
 * Plans a call of `batch` rows and `seqLen` steps: the most rows per chunk that keep the call
 * within `limits.chunkBytes` (at least one row, as long as that row fits the instance at all).
 *
 * @throws {RangeError} If even one sequence does not fit an instance, saying how many steps do.
 *
 * @example
 * ```ts
 * import { planWasmCall } from "./memory_plan.ts";
 * const cell = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 64 } as const;
 * const plan = planWasmCall(cell, 10_000_000, 1); // 10 million sequences run in chunks
 * if (plan.rowsPerChunk >= 10_000_000) throw new Error("expected chunks");
 * ```
 */
export function planWasmCall(
  cell: CellSizes,
  batch: number,
  seqLen: number,
  limits = WASM_MEMORY_LIMITS,
  extras: SequenceExtras = {},
): WasmCallPlan {
  const weights = wasmWeightBytes(cell);
  // Per row over many rows, so the rounding of each buffer to whole lines is not lost.
  const fixed = wasmCallBytes(cell, 0, seqLen, extras);
  const perRow = Math.ceil((wasmCallBytes(cell, 64, seqLen, extras) - fixed) / 64);
  const budget = Math.max(limits.chunkBytes, fixed + perRow);
  const rowsPerChunk = Math.max(1, Math.min(batch, Math.floor((budget - fixed) / perRow)));
  const bytesPerChunk = weights + wasmCallBytes(cell, rowsPerChunk, seqLen, extras);
  if (bytesPerChunk > limits.instanceBytes) {
    const perStep = wasmCallBytes(cell, 1, 2, extras) - wasmCallBytes(cell, 1, 1, extras);
    const steps = Math.max(0, Math.floor((limits.instanceBytes - weights - fixed) / perStep));
    throw new RangeError(
      `x: one sequence of seqLen ${seqLen} needs ${formatBytes(bytesPerChunk)} of WASM memory ` +
        `(inputs, workspace and outputs of hiddenSize ${cell.hiddenSize}, plus the weights), ` +
        `more than the ${formatBytes(limits.instanceBytes)} a WASM instance can use; at most ` +
        `about ${steps} steps fit per call: split the sequence in time and continue from the ` +
        "returned { hidden, state }",
    );
  }
  return { rowsPerChunk, bytesPerChunk };
}

/**
 * Checks, before a kernel runs, that one call fits a wasm32 memory at all (the backend's plan
 * splits batches well below this; a direct kernel call may not).
 *
 * @throws {RangeError} Naming the call's sizes, the bytes it needs and the limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFitsWasm32 } from "./memory_plan.ts";
 * const cell = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 256 } as const;
 * checkFitsWasm32(cell, 64, 100);
 * assert.throws(() => checkFitsWasm32(cell, 2 ** 14, 2 ** 10), RangeError);
 * ```
 */
export function checkFitsWasm32(
  cell: CellSizes,
  batch: number,
  seqLen: number,
  extras: SequenceExtras = {},
): void {
  const bytes = wasmCallBytes(cell, batch, seqLen, extras);
  if (bytes > 2 ** 32) {
    throw new RangeError(
      `a wasm call of batch ${batch} × seqLen ${seqLen} with hiddenSize ${cell.hiddenSize} needs ` +
        `${formatBytes(bytes)}, more than a wasm32 memory holds (4 GiB): run fewer or shorter ` +
        "sequences per call, or use the webgpu backend",
    );
  }
}
