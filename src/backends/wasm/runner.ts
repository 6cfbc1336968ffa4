/**
 * The WASM backend's runner (`CompiledCell`): where each call runs (this thread, workers by rows,
 * or hidden units shared with one worker), the workers it holds, and the training and relevance
 * steps over them.
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
import type { WasmFlavor } from "./bindings.ts";
import { WasmKernel } from "./kernel.ts";
import { planWasmCall, type WasmMemoryLimits } from "./memory_plan.ts";
import {
  assembleGradients,
  assembleOutputs,
  batchSlices,
  namedGradients,
  placeRows,
  putRows,
  sliceGradients,
  sliceRows,
  takeRows,
  wholeOutput,
} from "./rows.ts";
import { IDLE_WORKER_MS, partsFor, sharesUnits, warmsWorkers } from "./scheduler.ts";
import { abortSharing, SharedUnits, sharedUnitsBuffer, unitsOf } from "./shared_units.ts";
import type { WasmThread, WorkerPool } from "./thread.ts";
import { WasmTrainingKernel } from "./train_kernel.ts";

/**
 * A compiled cell of the WASM backend: runs calls in the calling thread, split by rows over the
 * backend's pooled workers, or split by hidden units with one of them (`scheduler.ts` decides),
 * and trains and explains the same way. The weights live in this thread's training kernel and
 * in every worker; an optimizer step sends the new ones to the workers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WasmRunner } from "./runner.ts";
 * import { WorkerPool } from "./thread.ts";
 * import { WASM_MEMORY_LIMITS } from "./memory_plan.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const runner = new WasmRunner(spec, 1, "plain", WASM_MEMORY_LIMITS, new WorkerPool(1000));
 * const { output } = await runner.run({
 *   batch: 1, seqLen: 2, x: new Float32Array(2),
 *   hidden: new Float32Array(1), state: new Float32Array(1),
 * });
 * assert.equal(output.length, 2);
 * runner.dispose();
 * ```
 */
export class WasmRunner implements CompiledCell {
  readonly #threads: number;
  readonly #flavor: WasmFlavor;
  readonly #memory: WasmMemoryLimits;
  /**
   * A private copy of the spec: workers and the local kernel are created lazily from it. An
   * optimizer step replaces its weights by the stepped ones.
   */
  #spec: CellSpec;
  #kernel: WasmKernel | null = null;
  #trainer: WasmTrainingKernel | null = null;
  #trainingSteps = 0;
  /**
   * The training step whose forward the workers ran last, with no backward or weights since: its
   * backward need not send the input again (a copy of every slice).
   */
  #recordedOnWorkers: number | null = null;
  #workers: WasmThread[] | null = null;
  /** Whether a call ran (see `warmsWorkers` of `scheduler.ts`). */
  #called = false;
  /** Starts the workers after a first call that ran in this thread. */
  #warmTimer: ReturnType<typeof setTimeout> | null = null;
  /** The workers' acknowledgement of the last weights sent to them. */
  #weightsSent: Promise<unknown> = Promise.resolve();
  #running = 0;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;

  readonly #pool: WorkerPool;
  /** Present for one-lane cells (`lstm`, `array` with `k = 1`), which the Rust pass explains. */
  readonly runRelevance?: (input: SequenceInput) => Promise<RelevanceStep>;

  /**
   * A runner of `spec` (copied) with at most `threads` threads, kernels of `flavor`, calls cut to
   * fit `memory`, and workers taken from (and handed back to) `pool`.
   */
  constructor(
    spec: CellSpec,
    threads: number,
    flavor: WasmFlavor,
    memory: WasmMemoryLimits,
    pool: WorkerPool,
  ) {
    this.#pool = pool;
    this.#threads = threads;
    this.#memory = memory;
    this.#flavor = flavor;
    this.#spec = copySpec(spec);
    const { kind, k } = spec.variant;
    // The Rust relevance pass explains the ArrayLSTM equations with one lane (`Variant::EXPLAINS`).
    if (VARIANTS[kind].equations === "array" && k === 1) {
      this.runRelevance = (input) => this.#runRelevance(input);
    }
  }

  /**
   * The weights in place: the optimizer steps the trainer of this thread (which holds the
   * optimizer state) and sends the new weights to the workers, whose messages run in order, so
   * the next call on any of them sees them. The inference kernel is packed again when it next runs.
   */
  readonly resident: ResidentWeights = {
    step: (update, grads) => {
      const trainer = this.#trainingKernel(this.#spec);
      trainer.step(update, grads);
      const params = trainer.parameters();
      this.#spec = specWithParameters(this.#spec, params);
      this.#kernel?.dispose();
      this.#kernel = null;
      this.#recordedOnWorkers = null;
      if (this.#workers !== null) {
        // `params` is this call's own copy (the spec took slices of it): the last worker takes it.
        const last = this.#workers.length - 1;
        const sent = Promise.all(
          this.#workers.map((worker, index) =>
            worker.setWeights(index === last ? params : params.slice())
          ),
        );
        sent.catch(() => {}); // reported by the next call on the workers
        this.#weightsSent = sent;
      }
    },
    parameters: () => this.#trainingKernel(this.#spec).parameters(),
    readState: () => this.#trainingKernel(this.#spec).readState(),
    writeState: (state) => this.#trainingKernel(this.#spec).writeState(state),
  };

  run(input: SequenceInput): Promise<SequenceOutput> {
    const spec = this.#spec;
    try {
      const { rowsPerChunk } = planWasmCall(
        spec,
        input.batch,
        input.seqLen,
        this.#memory,
        requestedExtras(input),
      );
      const warming = this.#warmsWorkers(spec, input);
      const parts = warming ? 1 : partsFor(this.#threads, spec, input);
      if (
        !warming && parts === 1 && input.batch <= rowsPerChunk &&
        sharesUnits(this.#threads, this.#running, spec, input)
      ) {
        return this.#runSharingUnits(spec, input);
      }
      const rowsPerRound = rowsPerChunk * parts;
      if (input.batch <= rowsPerRound) return this.#runRound(spec, input, parts);
      return this.#runInRounds(spec, input, rowsPerChunk, rowsPerRound);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  dispose(): void {
    this.#kernel?.dispose();
    this.#kernel = null;
    this.#trainer?.dispose();
    this.#trainer = null;
    this.#stopWorkers();
  }

  /**
   * Runs `input` with its hidden units split between this thread (the first part) and a worker
   * (the second), which trade `h_t` after every step; this thread blocks in its part meanwhile.
   */
  #runSharingUnits(spec: CellSpec, input: SequenceInput): Promise<SequenceOutput> {
    return this.#onWorkers(async ([worker]) => {
      // A worker that failed to start would leave this thread's part waiting: see it run first.
      await worker.ready();
      if (!worker.healthy) {
        throw new Error(
          "the wasm worker of this runner failed; dispose the model and make it again",
        );
      }
      const B = input.batch;
      const H = spec.hiddenSize;
      const buffer = sharedUnitsBuffer(B, H, 2);
      const theirs = worker.runSharing(input, buffer, 1, 2);
      if (!this.#kernel?.usable) this.#kernel = new WasmKernel(spec, this.#flavor);
      let mine: SequenceOutput;
      try {
        mine = this.#kernel.runSharing(input, new SharedUnits(buffer, B, H, 0, 2));
      } catch (error) {
        abortSharing(buffer, 2);
        await theirs.catch(() => {});
        throw error;
      }
      const other = await theirs;
      // The second part's units of the output (B·T rows) and cells (lanes·B rows).
      const [start, end] = unitsOf(H, 1, 2);
      for (const [whole, part] of [[mine.output, other.output], [mine.state, other.state]]) {
        for (let row = 0; row < whole.length / H; row++) {
          whole.set(part.subarray(row * H + start, row * H + end), row * H + start);
        }
      }
      return { output: mine.output, hidden: mine.hidden, state: mine.state };
    }, 1);
  }

  /** Runs `input` in this thread (`parts = 1`) or split evenly over `parts` workers. */
  #runRound(spec: CellSpec, input: SequenceInput, parts: number): Promise<SequenceOutput> {
    if (parts > 1) return this.#runOnWorkers(spec, input, parts);
    if (!this.#kernel?.usable) this.#kernel = new WasmKernel(spec, this.#flavor);
    return Promise.resolve(this.#kernel.run(input));
  }

  /**
   * Runs a batch too large for one call in rounds of `rowsPerRound` rows, one after the other,
   * each instance taking at most `rowsPerChunk` rows at a time, so no instance outgrows the plan.
   */
  async #runInRounds(
    spec: CellSpec,
    input: SequenceInput,
    rowsPerChunk: number,
    rowsPerRound: number,
  ): Promise<SequenceOutput> {
    const { batch: B, seqLen: T } = input;
    const rounds: [number, number][] = [];
    for (let start = 0; start < B; start += rowsPerRound) {
      rounds.push([start, Math.min(B, start + rowsPerRound)]);
    }
    // Cut every round now, before the first await: the caller may reuse its arrays at once.
    const inputs: (SequenceInput | null)[] = rounds.map((rows) => sliceRows(spec, input, rows));
    const whole = wholeOutput(spec, input);
    for (let round = 0; round < rounds.length; round++) {
      const part = inputs[round]!;
      inputs[round] = null; // let each round's copy go once it has run
      const parts = Math.ceil(part.batch / rowsPerChunk);
      placeRows(spec, whole, B, T, rounds[round], await this.#runRound(spec, part, parts));
    }
    return whole;
  }

  #runOnWorkers(spec: CellSpec, input: SequenceInput, parts: number): Promise<SequenceOutput> {
    const slices = batchSlices(input.batch, parts);
    return this.#onWorkers(async (workers) => {
      const results = await Promise.all(
        slices.map((rows, part) => workers[part].run(sliceRows(spec, input, rows))),
      );
      return assembleOutputs(spec, input, slices, results);
    });
  }

  /**
   * Runs `call` on the runner's workers, at least `count` of them (started if need be), which
   * stop when idle afterwards.
   */
  async #onWorkers<T>(
    call: (workers: WasmThread[]) => Promise<T>,
    count = this.#threads,
  ): Promise<T> {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const workers = this.#takeWorkers(count);
    this.#running++;
    try {
      await this.#weightsSent;
      return await call(workers);
    } finally {
      if (--this.#running === 0 && this.#workers !== null) this.#armIdleTimer();
    }
  }

  /**
   * The recording forward, in this thread or split by rows over the workers like `run` (not
   * cut into rounds: a training batch keeps all its activations anyway). The step keeps its input
   * (or the workers' slices of it), so its backward can run the forward again if the trainer has
   * recorded another step since.
   */
  runTraining(input: SequenceInput): Promise<TrainingStep> {
    const spec = this.#spec;
    const step = ++this.#trainingSteps;
    try {
      const parts = partsFor(this.#threads, spec, input);
      if (parts === 1) return Promise.resolve(this.#trainHere(spec, copyInput(input), step));
      const slices = batchSlices(input.batch, parts);
      return this.#trainOnWorkers(spec, input, slices, step);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #trainingKernel(spec: CellSpec): WasmTrainingKernel {
    if (!this.#trainer?.usable) this.#trainer = new WasmTrainingKernel(spec, this.#flavor);
    return this.#trainer;
  }

  #trainHere(spec: CellSpec, input: SequenceInput, step: number): TrainingStep {
    return {
      ...this.#trainingKernel(spec).forward(input, step),
      backward: (grads) => {
        const none = new Float32Array(0);
        const result = this.#trainingKernel(spec).backward(input, step, {
          output: grads.output as Float32Array,
          hidden: (grads.hidden as Float32Array | undefined) ?? none,
          state: (grads.state as Float32Array | undefined) ?? none,
          ...(grads.wanted === undefined ? {} : { wanted: grads.wanted }),
        });
        return Promise.resolve({ ...result, params: namedGradients(spec, result.params) });
      },
    };
  }

  async #trainOnWorkers(
    spec: CellSpec,
    input: SequenceInput,
    slices: [number, number][],
    step: number,
  ): Promise<TrainingStep> {
    const inputs = slices.map((rows) => sliceRows(spec, input, rows));
    this.#recordedOnWorkers = null;
    const output = await this.#onWorkers(async (workers) => {
      const results = await Promise.all(
        inputs.map((part, index) => workers[index].forward(part, step)),
      );
      // Another forward may have started meanwhile: this one is the workers' last only if not.
      if (step === this.#trainingSteps) this.#recordedOnWorkers = step;
      return assembleOutputs(spec, input, slices, results, workers);
    });
    return {
      ...output,
      backward: (grads) => {
        const recorded = this.#recordedOnWorkers === step;
        // The backward consumes the workers' activations.
        this.#recordedOnWorkers = null;
        return this.#onWorkers(async (workers) => {
          const parts = await Promise.all(slices.map((rows, index) =>
            workers[index].backward(
              recorded ? null : inputs[index],
              step,
              sliceGradients(spec, input, grads, rows, workers[index].spare()),
            )
          ));
          const { wanted } = grads;
          return assembleGradients(spec, input, slices, parts, workers, wanted);
        });
      },
    };
  }

  /**
   * The recording forward that keeps what LRP needs, in this thread or split by rows over the
   * workers like `runTraining`; the relevance pass runs where the forward did, on the same rows.
   */
  #runRelevance(input: SequenceInput): Promise<RelevanceStep> {
    const spec = this.#spec;
    const step = ++this.#trainingSteps;
    try {
      const parts = partsFor(this.#threads, spec, input);
      if (parts === 1) {
        const own = copyInput(input);
        return Promise.resolve({
          ...this.#trainingKernel(spec).forward(own, step, true),
          relevance: (outputRelevance, rule) =>
            Promise.resolve(
              this.#trainingKernel(spec).relevance(own, step, outputRelevance, rule),
            ),
        });
      }
      const slices = batchSlices(input.batch, parts);
      return this.#relevanceOnWorkers(spec, input, slices, step);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #relevanceOnWorkers(
    spec: CellSpec,
    input: SequenceInput,
    slices: [number, number][],
    step: number,
  ): Promise<RelevanceStep> {
    const { inputSize: I, hiddenSize: H } = spec;
    const { batch: B, seqLen: T } = input;
    const inputs = slices.map((rows) => sliceRows(spec, input, rows));
    const output = await this.#onWorkers(async (workers) => {
      const results = await Promise.all(
        inputs.map((part, index) => workers[index].forward(part, step, true)),
      );
      return assembleOutputs(spec, input, slices, results, workers);
    });
    return {
      ...output,
      relevance: async (outputRelevance, rule) => {
        const parts = await this.#onWorkers((workers) =>
          Promise.all(slices.map((rows, index) =>
            workers[index].relevance(
              inputs[index],
              step,
              takeRows(outputRelevance, B, T * H, 1, rows),
              rule,
            )
          ))
        );
        const relevance = new Float32Array(B * T * I);
        const rest = new Float32Array(B);
        slices.forEach((rows, index) => {
          putRows(relevance, parts[index].input, B, T * I, 1, rows);
          putRows(rest, parts[index].rest, B, 1, 1, rows);
        });
        return { input: relevance, rest };
      },
    };
  }

  /**
   * The runner's workers, at least `count` of them (started if need be). A call sharing hidden
   * units needs one worker: the others start when a call needs them.
   */
  #takeWorkers(count: number): WasmThread[] {
    const workers = this.#workers ??= [];
    if (workers.length < count) {
      workers.push(...this.#pool.take(count - workers.length, this.#spec, this.#flavor));
    }
    return workers;
  }

  /**
   * Whether `input` is the runner's first call and small enough to run in this thread while the
   * workers start (`warmsWorkers` of `scheduler.ts`); it starts them then.
   */
  #warmsWorkers(spec: CellSpec, input: SequenceInput): boolean {
    if (this.#called) return false;
    this.#called = true;
    if (!warmsWorkers(this.#threads, spec, input)) return false;
    // After this call's result: starting a Worker blocks this thread too (~15 ms each).
    const timer = setTimeout(() => {
      this.#warmTimer = null;
      if (this.#workers !== null) return;
      this.#takeWorkers(this.#threads);
      if (this.#running === 0) this.#armIdleTimer();
    }, 0);
    // Nor should it keep a process alive that has nothing else to do.
    if (typeof Deno !== "undefined") Deno.unrefTimer(timer);
    this.#warmTimer = timer;
    return true;
  }

  #armIdleTimer(): void {
    const timer = setTimeout(() => this.#stopWorkers(), IDLE_WORKER_MS);
    // The timer itself must not keep the process alive: it only exists to let it exit.
    if (typeof Deno !== "undefined") Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  /** Hands the workers back to the backend's pool (which stops them if no runner takes them). */
  #stopWorkers(): void {
    if (this.#warmTimer !== null) clearTimeout(this.#warmTimer);
    this.#warmTimer = null;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#workers !== null) this.#pool.give(this.#workers);
    this.#workers = null;
    this.#recordedOnWorkers = null;
    this.#weightsSent = Promise.resolve();
  }
}
