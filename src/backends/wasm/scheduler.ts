/**
 * How the WASM backend spreads a call over threads: by batch rows over workers, by hidden units
 * between the calling thread and one worker (`shared_units.ts`), or not at all. The thresholds
 * are measured costs: a worker round trip, a Worker's start, the trade of `h_t` after every step.
 *
 * @module
 */

import { type CellSpec, requestedExtras, type SequenceInput } from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import { forwardFlops } from "../flops.ts";
import { workersPermitted } from "./thread.ts";
import { unitsOf } from "./shared_units.ts";

/**
 * Below this much work per call (about 2 ms on one core) a worker round trip costs more than the
 * second core saves, so the call runs in the calling thread; each further worker needs half as
 * much more.
 */
export const MIN_PARALLEL_FLOPS = 5e7;
/**
 * A runner's first call with less work than this (about 40 ms on one core) runs in the calling
 * thread while the workers start for the calls after it: starting Workers (their isolates and
 * modules) takes 30–100 ms, more than they save on such a call, and a fresh process's (or edge
 * function's) first answer should not wait for them.
 */
export const COLD_CALL_FLOPS = 1e9;
/**
 * Most Workers by default: each holds its own copy of the weights and buffers, so memory grows
 * with their number while the gain shrinks (only two cores measured so far).
 */
export const MAX_THREADS = 8;
/** Fewer rows per worker leave the kernel's two-row tiles half empty. */
export const MIN_ROWS_PER_THREAD = 4;
/**
 * Below this much work per step (about 5 µs on one core) trading the hidden state between two
 * threads after every step costs more than the second thread saves.
 */
export const MIN_SHARED_STEP_FLOPS = 2e5;
/**
 * A runner's workers go back to the pool after this long without a call (and start again on the
 * next one). An idle Worker keeps a Deno process alive (a web Worker cannot be unref'd, and
 * Deno's `node:worker_threads` ones, which can, copy every message: 55 ms per 1.6 MB round trip
 * against 0.4 ms), so this bounds how late a program that forgets `dispose()` exits, with
 * {@linkcode POOLED_WORKER_MS}: about 0.6 s after its last call.
 */
export const IDLE_WORKER_MS = 500;
/**
 * Workers in the pool stop after this long without a runner taking them: a runner replaced by
 * another (new weights) hands its workers over at once, so a short wait suffices.
 */
export const POOLED_WORKER_MS = 100;

/**
 * Threads by default: one per core (at most {@linkcode MAX_THREADS}) where `Worker` exists and
 * may load its modules without a permission prompt, else 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultThreads } from "./scheduler.ts";
 * assert.ok(defaultThreads() >= 1);
 * ```
 */
export function defaultThreads(): number {
  if (typeof Worker !== "function" || !workersPermitted()) return 1;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_THREADS, cores));
}

/**
 * How many parts (threads) a call is split into by batch rows, with `threads` available: 1 for
 * too little work, else one more for each {@linkcode MIN_PARALLEL_FLOPS} / 2 of work, with at
 * least {@linkcode MIN_ROWS_PER_THREAD} rows each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { partsFor } from "./scheduler.ts";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 64, hiddenSize: 256 } as const;
 * assert.equal(partsFor(4, spec, { batch: 1, seqLen: 1 }), 1);
 * assert.equal(partsFor(4, spec, { batch: 64, seqLen: 100 }), 4);
 * ```
 */
export function partsFor(
  threads: number,
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  input: Pick<SequenceInput, "batch" | "seqLen">,
): number {
  const flops = forwardFlops(spec, input);
  if (threads === 1 || flops < MIN_PARALLEL_FLOPS) return 1;
  const byWork = Math.floor((2 * flops) / MIN_PARALLEL_FLOPS);
  return Math.max(1, Math.min(threads, byWork, Math.floor(input.batch / MIN_ROWS_PER_THREAD)));
}

/**
 * Whether a call that rows cannot split (too few) is worth splitting by hidden units between the
 * calling thread and a worker (`shared_units.ts`): enough work in all and per step, an
 * LSTM-family cell without opt-in outputs, threads that can share memory, and no other call on
 * the workers (`running`: with one, the calling thread would block until the worker got to it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sharesUnits } from "./scheduler.ts";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 64, hiddenSize: 256 } as const;
 * const input = {
 *   batch: 1, seqLen: 100, x: new Float32Array(6400),
 *   hidden: new Float32Array(256), state: new Float32Array(256),
 * };
 * assert.equal(sharesUnits(1, 0, spec, input), false);
 * ```
 */
export function sharesUnits(
  threads: number,
  running: number,
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  input: SequenceInput,
): boolean {
  const wants = requestedExtras(input);
  const flops = forwardFlops(spec, input);
  return threads > 1 && running === 0 && typeof SharedArrayBuffer === "function" &&
    VARIANTS[spec.variant.kind].cellStates && !wants.attention && !wants.lanes &&
    flops >= MIN_PARALLEL_FLOPS && flops / input.seqLen >= MIN_SHARED_STEP_FLOPS &&
    unitsOf(spec.hiddenSize, 0, 2)[1] > 0;
}

/**
 * Whether a runner's first call is small enough to run in the calling thread while its workers
 * start ({@linkcode COLD_CALL_FLOPS}); a call worth no worker at all is not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { warmsWorkers } from "./scheduler.ts";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 64, hiddenSize: 256 } as const;
 * assert.equal(warmsWorkers(4, spec, { batch: 8, seqLen: 50 }), true);
 * assert.equal(warmsWorkers(1, spec, { batch: 8, seqLen: 50 }), false);
 * ```
 */
export function warmsWorkers(
  threads: number,
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  input: Pick<SequenceInput, "batch" | "seqLen">,
): boolean {
  const flops = forwardFlops(spec, input);
  return threads > 1 && flops >= MIN_PARALLEL_FLOPS && flops < COLD_CALL_FLOPS;
}
