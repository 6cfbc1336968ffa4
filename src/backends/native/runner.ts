/**
 * The native backend's runner (`CompiledCell`): how many threads a call uses and whether they
 * split its batch rows or its hidden units, whether it runs on a thread of Deno's pool (large
 * calls, so the event loop stays free) or blocks (small ones), and the order of the calls on each
 * native object.
 *
 * @module
 */

import {
  type CellSpec,
  type CompiledCell,
  copyInput,
  copySpec,
  type RelevanceStep,
  requestedExtras,
  type ResidentWeights,
  type SequenceInput,
  type SequenceOutput,
  specWithParameters,
  type TrainingStep,
} from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import { forwardFlops } from "../flops.ts";
import { namedGradients } from "../wasm/rows.ts";
import { NativeKernel, type Split } from "./kernel.ts";
import type { NativeLibrary } from "./library.ts";
import { SplitChoice } from "./split_choice.ts";
import { NativeTrainingKernel } from "./train_kernel.ts";

/**
 * Floating-point operations per extra thread below which a call is not split: starting a thread
 * costs ~20–40 µs, what ~2·10⁶ FLOPs take on one core.
 */
const FLOPS_PER_THREAD = 2e6;

/**
 * Floating-point operations of one step per thread below which a call is not split by hidden
 * units: the threads meet after every step (a spin barrier and the exchange of `h_t`, ~1 µs), what
 * ~1·10⁵ FLOPs take.
 */
const UNIT_STEP_FLOPS = 2e5;

/** Hidden units per block of the kernels (`UNITS` of `wasm/src/pack.rs`). */
const UNITS = 4;

/** Calls above this many FLOPs (~0.5 ms) run on a thread of Deno's pool instead of blocking. */
const BACKGROUND_FLOPS = 3e7;

/**
 * A call split by hidden units runs on the calling thread up to this many FLOPs (~5–10 ms), above
 * {@linkcode BACKGROUND_FLOPS}: started from a thread of Deno's pool, its two threads shared one
 * core in about half the calls (batch-1 `ArrayLSTM`, I 64, H 256, T 100: 0.072 ms a step at the
 * 5th percentile, 0.12 at the median, 0.17 at the 95th), and from the calling thread they did not
 * (0.079, 0.083, 0.093). Such a call meets its partner after every step, so it runs at the slower
 * thread's pace; a batch-1 call this short is usually what the caller awaits anyway.
 */
const SPLIT_BLOCKING_FLOPS = 5e8;

/**
 * The threads a call of `flops` on `batch` rows uses, at most `threads`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { partsFor } from "./runner.ts";
 * assert.equal(partsFor(4, 1e5, 64), 1);
 * assert.equal(partsFor(4, 1e9, 64), 4);
 * assert.equal(partsFor(4, 1e9, 2), 2);
 * ```
 */
export function partsFor(threads: number, flops: number, batch: number): number {
  return Math.max(1, Math.min(threads, batch, Math.floor(flops / FLOPS_PER_THREAD)));
}

/**
 * How a forward of `input` on `spec`'s cell is split over at most `threads` threads: by batch
 * rows ({@linkcode partsFor}) where they give more than one part; else, for an LSTM-family cell,
 * by hidden units (`native/src/units.rs`: pairs of four-unit blocks per thread) where each thread
 * gets enough work per step to pay for meeting the others after it (and where such calls have
 * been faster split: `split_choice.ts`); else not at all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitFor } from "./runner.ts";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 64, hiddenSize: 256 } as const;
 * assert.deepEqual(splitFor(2, spec, { batch: 1, seqLen: 100 }), { parts: 2, byUnits: true });
 * assert.deepEqual(splitFor(2, spec, { batch: 64, seqLen: 100 }), { parts: 2, byUnits: false });
 * assert.deepEqual(splitFor(2, { ...spec, hiddenSize: 16 }, { batch: 1, seqLen: 100 }), { parts: 1, byUnits: false });
 * ```
 */
export function splitFor(
  threads: number,
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  input: Pick<SequenceInput, "batch" | "seqLen">,
): Split {
  const flops = forwardFlops(spec, input);
  const rows = partsFor(threads, flops, input.batch);
  if (rows > 1 || !VARIANTS[spec.variant.kind].cellStates) return { parts: rows, byUnits: false };
  const pairs = Math.floor(Math.ceil(spec.hiddenSize / UNITS) / 2);
  const perStep = flops / Math.max(1, input.seqLen);
  const parts = Math.max(
    1,
    Math.min(
      threads,
      pairs,
      Math.floor(flops / FLOPS_PER_THREAD),
      Math.floor(perStep / UNIT_STEP_FLOPS),
    ),
  );
  return { parts, byUnits: parts > 1 };
}

/**
 * Runs calls on one native object one at a time: a call finds it idle and runs at once, or waits
 * for the calls before it.
 */
class Queue {
  #tail: Promise<unknown> | null = null;

  /** Whether a call is running or waiting. */
  get busy(): boolean {
    return this.#tail !== null;
  }

  /** Runs `call` after the calls before it. */
  run<T>(call: () => Promise<T>): Promise<T> {
    // A call that throws before its promise (a kernel that cannot be made) rejects like one.
    const invoke = (): Promise<T> => {
      try {
        return call();
      } catch (error) {
        return Promise.reject(error);
      }
    };
    const result = this.#tail === null ? invoke() : this.#tail.then(invoke, invoke);
    const tail: Promise<unknown> = result.catch(() => {}).then(() => {
      if (this.#tail === tail) this.#tail = null;
    });
    this.#tail = tail;
    return result;
  }
}

/**
 * A compiled cell of the native backend: the inference kernel and (LSTM family) the trainer,
 * each made when first needed, with up to `threads` threads per call.
 *
 * @example
 * ```ts ignore
 * const runner = new NativeRunner(await openNativeLibrary(), spec, 2);
 * const { output } = await runner.run(input);
 * runner.dispose();
 * ```
 */
export class NativeRunner implements CompiledCell {
  readonly #library: NativeLibrary;
  readonly #threads: number;
  #spec: CellSpec;
  #kernel: NativeKernel | null = null;
  #trainer: NativeTrainingKernel | null = null;
  readonly #kernelCalls = new Queue();
  /** Whether calls that may split their hidden units do, by how long they took either way. */
  readonly #unitSplits = new SplitChoice();
  readonly #trainerCalls = new Queue();
  #trainingSteps = 0;
  /** Present for one-lane cells (`lstm`, `array` with `k = 1`), which the Rust pass explains. */
  readonly runRelevance?: (input: SequenceInput) => Promise<RelevanceStep>;

  /** A runner of `spec` (copied) on `library`, with at most `threads` threads a call. */
  constructor(library: NativeLibrary, spec: CellSpec, threads: number) {
    this.#library = library;
    this.#threads = threads;
    this.#spec = copySpec(spec);
    const { kind, k } = spec.variant;
    if ((kind === "lstm" || kind === "array") && k === 1) {
      this.runRelevance = (input) => this.#runRelevance(input);
    }
  }

  /**
   * The weights in place: the trainer holds them and the optimizer state; the inference kernel
   * is packed again from the stepped weights when it next runs.
   */
  readonly resident: ResidentWeights = {
    step: (update, grads) => {
      if (this.#trainer?.running) {
        throw new Error(
          "an optimizer step ran while a native training call of the same cell was running; " +
            "await the backward before stepping",
        );
      }
      const trainer = this.#trainingKernel();
      trainer.step(update, grads);
      this.#spec = specWithParameters(this.#spec, trainer.parameters());
      this.#retireKernel();
    },
    parameters: () => this.#trainingKernel().parameters(),
    readState: () => this.#trainingKernel().readState(),
    writeState: (state) => this.#trainingKernel().writeState(state),
  };

  run(input: SequenceInput): Promise<SequenceOutput> {
    const spec = this.#spec;
    const flops = forwardFlops(spec, input);
    const split = splitFor(this.#threads, spec, input);
    const background = flops >= (split.byUnits ? SPLIT_BLOCKING_FLOPS : BACKGROUND_FLOPS);
    const extras = requestedExtras(input);
    // The caller may change its arrays once this returns: a call that does not start now (or
    // runs in the background) works on a copy.
    const own = background || this.#kernelCalls.busy ? copyInput(input) : input;
    return this.#kernelCalls.run(async () => {
      this.#kernel ??= new NativeKernel(this.#library, this.#spec, this.#threads);
      if (!split.byUnits) return await this.#kernel.run(own, split, extras, background);
      const byUnits = this.#unitSplits.next();
      const start = performance.now();
      const output = await this.#kernel.run(
        own,
        byUnits ? split : { parts: 1, byUnits: false },
        extras,
        background,
      );
      this.#unitSplits.record(byUnits, performance.now() - start, flops);
      return output;
    });
  }

  runTraining(input: SequenceInput): Promise<TrainingStep> {
    const step = ++this.#trainingSteps;
    const own = copyInput(input);
    const spec = this.#spec;
    const flops = forwardFlops(spec, input);
    const parts = partsFor(this.#threads, flops, input.batch);
    // The backward costs about twice the forward.
    const background = flops >= BACKGROUND_FLOPS;
    return this.#trainerCalls.run(async () => {
      const output = await this.#trainingKernel().forward(own, step, parts, false, background);
      return {
        ...output,
        backward: (grads) => {
          const none = new Float32Array(0);
          const gradients = {
            output: grads.output as Float32Array,
            hidden: (grads.hidden as Float32Array | undefined) ?? none,
            state: (grads.state as Float32Array | undefined) ?? none,
            wanted: grads.wanted ?? { x: true, hidden: true, state: true },
          };
          return this.#trainerCalls.run(async () => {
            const result = await this.#trainingKernel().backward(
              step,
              own,
              parts,
              gradients,
              background,
            );
            return { ...result, params: namedGradients(spec, result.params) };
          });
        },
      };
    });
  }

  #runRelevance(input: SequenceInput): Promise<RelevanceStep> {
    const step = ++this.#trainingSteps;
    const own = copyInput(input);
    const flops = forwardFlops(this.#spec, input);
    const parts = partsFor(this.#threads, flops, input.batch);
    const background = flops >= BACKGROUND_FLOPS;
    return this.#trainerCalls.run(async () => ({
      ...await this.#trainingKernel().forward(own, step, parts, true, background),
      relevance: (outputRelevance, rule) =>
        this.#trainerCalls.run(() =>
          this.#trainingKernel().relevance(step, own, parts, outputRelevance, rule, background)
        ),
    }));
  }

  dispose(): void {
    this.#kernel?.dispose();
    this.#kernel = null;
    this.#trainer?.dispose();
    this.#trainer = null;
  }

  #trainingKernel(): NativeTrainingKernel {
    this.#trainer ??= new NativeTrainingKernel(this.#library, this.#spec, this.#threads);
    return this.#trainer;
  }

  /** Drops the inference kernel (its weights are old), once no call is using it. */
  #retireKernel(): void {
    const kernel = this.#kernel;
    this.#kernel = null;
    if (kernel === null) return;
    // A call of it may be running on a thread of Deno's pool: free it after that call.
    if (kernel.running) this.#kernelCalls.run(() => Promise.resolve(kernel.dispose()));
    else kernel.dispose();
  }
}
