/**
 * The WebAssembly backend: Rust kernels (`wasm/src`) built for `wasm32` with SIMD, shipped inside
 * the package as `wasm/arraylstm_wasm.generated.ts`, so using it needs no Rust and no network.
 *
 * A runner packs the weights once into wasm memory and runs whole sequences per call. Large
 * batches are split by rows over Workers, each with its own instance and copy of the weights; a
 * batch too small for that but with enough work per step (batch 1 at 256 units) shares its hidden
 * units between the calling thread and one Worker, step by step (`shared_units.ts`); small calls
 * (and runtimes without `Worker`) run in the calling thread. Training (`runTraining`) runs
 * the Rust `Trainer` the same way: each thread records and back-propagates its rows, and the
 * parameter gradients of the rows are summed here. LRP's relevance pass (`runRelevance`, one-lane
 * cells) runs on the same recording forward, split the same way. Workers are pooled per backend,
 * so a runner made after an optimizer step re-packs its weights in running workers instead of
 * starting new ones.
 *
 * Two builds of the kernels ship: one whose multiply-adds use relaxed SIMD's `f32x4.relaxed_madd`
 * (fused on CPUs with FMA), taken where the runtime validates it, and a plain SIMD one for the rest.
 *
 * @module
 */

import {
  type Backend,
  type CellSpec,
  type CompiledCell,
  copySpec,
  defineBackend,
  type InputGradients,
  type OutputGradients,
  parameterSizes,
  RECURRENT_ACTIVATIONS,
  type RelevanceStep,
  requestedExtras,
  type ResidentWeights,
  type SequenceInput,
  type SequenceOutput,
  specWithParameters,
  stateRows,
  type TrainingStep,
  type WantedGradients,
} from "../../contract/mod.ts";
import { supportsRelaxedSimd, type WasmFlavor } from "./bindings.ts";
import { WasmKernel } from "./kernel.ts";
import {
  checkWasmWeights,
  planWasmCall,
  WASM_MEMORY_LIMITS,
  type WasmMemoryLimits,
} from "./memory_plan.ts";

export { WASM_MEMORY_LIMITS, type WasmMemoryLimits };
import { type WasmThread, WorkerPool, workersPermitted } from "./thread.ts";
import { packedViews } from "./scratch.ts";
import { abortSharing, SharedUnits, sharedUnitsBuffer, unitsOf } from "./shared_units.ts";
import { VARIANTS } from "../../variants.ts";
import {
  type SliceGradients,
  type SliceInputGradients,
  WasmTrainingKernel,
} from "./train_kernel.ts";

/** Options of {@linkcode createWasmBackend}. */
export interface WasmBackendOptions {
  /**
   * Threads a large batch is split over: `1` never starts a Worker and runs in the calling thread.
   * Default: one per core (`navigator.hardwareConcurrency`, at most {@linkcode MAX_THREADS}) where
   * `Worker` exists and may load its modules without a permission prompt (see
   * `workersPermitted`), else 1.
   */
  readonly threads?: number;
  /**
   * Use the kernels built with relaxed SIMD (`f32x4.relaxed_madd`, about 1.5× the GEMM rate) where
   * the runtime supports them. Default `true`. A relaxed multiply-add is fused or not depending on
   * the CPU, so results can differ between machines in the last bits; `false` takes the plain
   * SIMD kernels, whose results are the same everywhere.
   */
  readonly relaxedSimd?: boolean;
  /**
   * The memory a wasm instance may use, and that one call may add to it before it is split into
   * chunks of batch rows. Default {@linkcode WASM_MEMORY_LIMITS}; mainly for tests.
   */
  readonly memory?: WasmMemoryLimits;
}

/**
 * Below this much work per call (about 2 ms on one core) a worker round trip costs more than the
 * second core saves, so the call runs in the calling thread; each further worker needs half as
 * much more.
 */
const MIN_PARALLEL_FLOPS = 5e7;
/**
 * A runner's first call with less work than this (about 40 ms on one core) runs in the calling
 * thread while the workers start for the calls after it: starting Workers (their isolates and
 * modules) takes 30–100 ms, more than they save on such a call, and a fresh process's (or edge
 * function's) first answer should not wait for them.
 */
const COLD_CALL_FLOPS = 1e9;
/**
 * Most Workers by default: each holds its own copy of the weights and buffers, so memory grows
 * with their number while the gain shrinks (only two cores measured so far).
 */
const MAX_THREADS = 8;
/** Fewer rows per worker leave the kernel's two-row tiles half empty. */
const MIN_ROWS_PER_THREAD = 4;
/**
 * Below this much work per step (about 5 µs on one core) trading the hidden state between two
 * threads after every step costs more than the second thread saves.
 */
const MIN_SHARED_STEP_FLOPS = 2e5;
/**
 * Workers stop after this long without a call (and start again on the next one): an idle Worker
 * keeps a Deno process alive, so a program that forgets `dispose()` still exits.
 */
const IDLE_WORKER_MS = 1000;

function defaultThreads(): number {
  if (typeof Worker !== "function" || !workersPermitted()) return 1;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_THREADS, cores));
}

/** Multiply-adds ×2 of one call: the gate GEMM of every step (and the attention projection). */
function flopsOf(spec: CellSpec, input: SequenceInput): number {
  const { inputSize: I, hiddenSize: H, variant: { k, kind } } = spec;
  const attention = kind === "attention" ? I * k * H : 0;
  return 2 * input.batch * input.seqLen * ((I + H) * 4 * k * H + attention);
}

/** Rows `[start, end)` of batch slice `part` of `parts`, as even as possible. */
function rowsOf(batch: number, part: number, parts: number): [number, number] {
  return [Math.floor((batch * part) / parts), Math.floor((batch * (part + 1)) / parts)];
}

/**
 * Rows `[start, end)` of an array shaped `(lanes, B, rowSize)`, as a `(lanes, rows, rowSize)`
 * array: `part` (of that size), or a fresh one.
 */
function takeRows(
  array: Float32Array,
  B: number,
  rowSize: number,
  lanes: number,
  [start, end]: [number, number],
  part: Float32Array = new Float32Array(lanes * (end - start) * rowSize),
): Float32Array {
  const rows = end - start;
  for (let lane = 0; lane < lanes; lane++) {
    part.set(
      array.subarray((lane * B + start) * rowSize, (lane * B + end) * rowSize),
      lane * rows * rowSize,
    );
  }
  return part;
}

/** Writes `part`, rows `[start, end)` shaped `(lanes, rows, rowSize)`, into `whole` `(lanes, B, rowSize)`. */
function putRows<A extends Float32Array | Int32Array>(
  whole: A,
  part: A,
  B: number,
  rowSize: number,
  lanes: number,
  [start, end]: [number, number],
): void {
  const rows = end - start;
  for (let lane = 0; lane < lanes; lane++) {
    whole.set(
      part.subarray(lane * rows * rowSize, (lane + 1) * rows * rowSize),
      (lane * B + start) * rowSize,
    );
  }
}

/** Copies rows `[start, end)` of `input` into fresh arrays (the worker receives them by transfer). */
function sliceRows(
  spec: CellSpec,
  input: SequenceInput,
  rows: [number, number],
): SequenceInput {
  const { inputSize: I, hiddenSize: H } = spec, k = stateRows(spec.variant);
  const { batch: B, seqLen: T } = input;
  return {
    batch: rows[1] - rows[0],
    seqLen: T,
    x: takeRows(input.x, B, T * I, 1, rows),
    hidden: takeRows(input.hidden, B, H, 1, rows),
    state: takeRows(input.state, B, H, k, rows),
    ...(input.outputs === undefined ? {} : { outputs: { ...input.outputs } }),
  };
}

/** The result arrays of all `B` rows of `input`, for the parts to be placed into. */
function wholeOutput(spec: CellSpec, input: SequenceInput): SequenceOutput {
  const { hiddenSize: H, variant: { k } } = spec;
  const { batch: B, seqLen: T } = input;
  const wants = requestedExtras(input);
  const cellStates = stateRows(spec.variant);
  return {
    output: new Float32Array(B * T * H),
    hidden: new Float32Array(B * H),
    state: new Float32Array(cellStates * B * H),
    ...(wants.attention ? { attention: new Float32Array(B * T * H * k) } : {}),
    ...(wants.lanes ? { lanes: new Int32Array(B * T * H) } : {}),
  };
}

/** A copy of `input`, kept by a training step to run its forward again. */
function copyInput(input: SequenceInput): SequenceInput {
  const { batch, seqLen } = input;
  return {
    batch,
    seqLen,
    x: input.x.slice(),
    hidden: input.hidden.slice(),
    state: input.state.slice(),
  };
}

/**
 * Rows `[start, end)` of checked output gradients, in `f32` (absent final ones empty), as views of
 * `scratch` (of a new buffer where it is `null` or too small; see `scratch.ts`).
 */
function sliceGradients(
  spec: CellSpec,
  input: SequenceInput,
  grads: OutputGradients,
  rows: [number, number],
  scratch: ArrayBuffer | null,
): SliceGradients {
  const { hiddenSize: H, variant: { k } } = spec;
  const { batch: B, seqLen: T } = input;
  const n = rows[1] - rows[0];
  const [output, hidden, state] = packedViews(scratch, [
    n * T * H,
    grads.hidden ? n * H : 0,
    grads.state ? k * n * H : 0,
  ]);
  const f32 = (array: Float32Array | Float64Array) => array as Float32Array;
  takeRows(f32(grads.output), B, T * H, 1, rows, output);
  if (grads.hidden) takeRows(f32(grads.hidden), B, H, 1, rows, hidden);
  if (grads.state) takeRows(f32(grads.state), B, H, k, rows, state);
  return {
    output,
    hidden,
    state,
    ...(grads.wanted === undefined ? {} : { wanted: grads.wanted }),
  };
}

/**
 * Names the flat parameter gradients of a trainer (`parameterSizes` order): views of `flat`,
 * which must be an array nobody else holds.
 */
function namedGradients(spec: CellSpec, flat: Float32Array): Record<string, Float32Array> {
  let start = 0;
  return Object.fromEntries(
    parameterSizes(spec).map(([name, size]) => [name, flat.subarray(start, start += size)]),
  );
}

class WasmRunner implements CompiledCell {
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
  /** Whether a call ran (see {@linkcode COLD_CALL_FLOPS}). */
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
    if ((kind === "lstm" || kind === "array") && k === 1) {
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
      const parts = warming ? 1 : this.#partsFor(spec, input);
      if (
        !warming && parts === 1 && input.batch <= rowsPerChunk && this.#sharesUnits(spec, input)
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

  #partsFor(spec: CellSpec, input: SequenceInput): number {
    const flops = flopsOf(spec, input);
    if (this.#threads === 1 || flops < MIN_PARALLEL_FLOPS) return 1;
    const byWork = Math.floor((2 * flops) / MIN_PARALLEL_FLOPS);
    return Math.max(
      1,
      Math.min(this.#threads, byWork, Math.floor(input.batch / MIN_ROWS_PER_THREAD)),
    );
  }

  /**
   * Whether a call that rows cannot split (too few) is worth splitting by hidden units between
   * this thread and a worker (`shared_units.ts`): enough work in all and per step, an LSTM-family
   * cell without opt-in outputs, threads that can share memory, and no other call on the workers.
   */
  #sharesUnits(spec: CellSpec, input: SequenceInput): boolean {
    const wants = requestedExtras(input);
    const flops = flopsOf(spec, input);
    // With another call on the workers, this thread would block until the worker got to it.
    return this.#threads > 1 && this.#running === 0 && typeof SharedArrayBuffer === "function" &&
      VARIANTS[spec.variant.kind].cellStates && !wants.attention && !wants.lanes &&
      flops >= MIN_PARALLEL_FLOPS && flops / input.seqLen >= MIN_SHARED_STEP_FLOPS &&
      unitsOf(spec.hiddenSize, 0, 2)[1] > 0;
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
      this.#place(spec, whole, B, T, rounds[round], await this.#runRound(spec, part, parts));
    }
    return whole;
  }

  #runOnWorkers(spec: CellSpec, input: SequenceInput, parts: number): Promise<SequenceOutput> {
    const slices = Array.from({ length: parts }, (_, part) => rowsOf(input.batch, part, parts));
    return this.#onWorkers(async (workers) => {
      const results = await Promise.all(
        slices.map((rows, part) => workers[part].run(sliceRows(spec, input, rows))),
      );
      return this.#assemble(spec, input, slices, results);
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
      const parts = this.#partsFor(spec, input);
      if (parts === 1) return Promise.resolve(this.#trainHere(spec, copyInput(input), step));
      const slices = Array.from({ length: parts }, (_, part) => rowsOf(input.batch, part, parts));
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
      return this.#assemble(spec, input, slices, results, workers);
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
          return this.#assembleGradients(spec, input, slices, parts, workers, wanted);
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
      const parts = this.#partsFor(spec, input);
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
      const slices = Array.from({ length: parts }, (_, part) => rowsOf(input.batch, part, parts));
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
      return this.#assemble(spec, input, slices, results, workers);
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
   * The whole batch's input gradients (the wanted ones; the others empty), and the parameter
   * gradients summed over the slices, in arrays of their own; the slices' buffers go back to
   * their `workers`.
   */
  #assembleGradients(
    spec: CellSpec,
    input: SequenceInput,
    slices: [number, number][],
    parts: SliceInputGradients[],
    workers: readonly WasmThread[],
    wanted: WantedGradients = { x: true, hidden: true, state: true },
  ): InputGradients {
    const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
    const { batch: B, seqLen: T } = input;
    const params = parts[0].params.slice();
    for (const part of parts.slice(1)) {
      const add = part.params;
      for (let i = 0; i < params.length; i++) params[i] += add[i];
    }
    const whole = (size: number, want: boolean) => new Float32Array(want ? size : 0);
    const x = whole(B * T * I, wanted.x);
    const hidden = whole(B * H, wanted.hidden);
    const state = whole(k * B * H, wanted.state);
    slices.forEach((rows, index) => {
      const part = parts[index];
      if (wanted.x) putRows(x, part.x, B, T * I, 1, rows);
      if (wanted.hidden) putRows(hidden, part.hidden, B, H, 1, rows);
      if (wanted.state) putRows(state, part.state, B, H, k, rows);
      workers[index].recycle(part.params.buffer);
    });
    return { params: namedGradients(spec, params), x, hidden, state };
  }

  /**
   * The results of the slices placed into arrays of all the rows; with `workers`, the slices were
   * theirs, in their spare buffers, which go back to them.
   */
  #assemble(
    spec: CellSpec,
    input: SequenceInput,
    slices: [number, number][],
    results: SequenceOutput[],
    workers?: readonly WasmThread[],
  ): SequenceOutput {
    const { batch: B, seqLen: T } = input;
    const whole = wholeOutput(spec, input);
    slices.forEach((rows, part) => {
      this.#place(spec, whole, B, T, rows, results[part]);
      workers?.[part].recycle(results[part].output.buffer);
    });
    return whole;
  }

  /** Copies the result of batch rows `[start, end)` into the result `whole` of all `B` rows. */
  #place(
    spec: CellSpec,
    whole: SequenceOutput,
    B: number,
    T: number,
    [start, end]: [number, number],
    result: SequenceOutput,
  ): void {
    const { hiddenSize: H } = spec, k = stateRows(spec.variant);
    const rows: [number, number] = [start, end];
    putRows(whole.output, result.output, B, T * H, 1, rows);
    putRows(whole.hidden, result.hidden, B, H, 1, rows);
    putRows(whole.state, result.state, B, H, k, rows);
    if (whole.attention) putRows(whole.attention, result.attention!, B, T * H * k, 1, rows);
    if (whole.lanes) putRows(whole.lanes, result.lanes!, B, T * H, 1, rows);
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
   * workers start ({@linkcode COLD_CALL_FLOPS}); it starts them then.
   */
  #warmsWorkers(spec: CellSpec, input: SequenceInput): boolean {
    if (this.#called) return false;
    this.#called = true;
    const flops = flopsOf(spec, input);
    if (this.#threads === 1 || flops < MIN_PARALLEL_FLOPS || flops >= COLD_CALL_FLOPS) {
      return false;
    }
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

/**
 * Creates a WASM backend that splits large batches over `options.threads` Workers.
 *
 * @throws {RangeError} If `threads` is not a positive integer.
 * @throws {Error} If `threads > 1` and this runtime has no `Worker`.
 *
 * @example Run in the calling thread only (no Workers)
 * ```ts
 * import { createWasmBackend } from "./mod.ts";
 * const backend = createWasmBackend({ threads: 1 });
 * const runner = await backend.compile({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * const { output } = await runner.run({
 *   batch: 1, seqLen: 2, x: new Float32Array(2),
 *   hidden: new Float32Array(1), state: new Float32Array(1),
 * });
 * runner.dispose();
 * ```
 */
export function createWasmBackend(options: WasmBackendOptions = {}): Backend {
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be a positive integer, got ${threads}`);
  }
  if (threads > 1 && typeof Worker !== "function") {
    throw new Error(
      `threads: ${threads} needs Web Workers, which this runtime does not have; use threads: 1`,
    );
  }
  const relaxedSimd = options.relaxedSimd ?? true;
  const memory = options.memory ?? WASM_MEMORY_LIMITS;
  const pool = new WorkerPool(IDLE_WORKER_MS);
  return defineBackend("wasm", (spec) => {
    checkWasmWeights(spec, memory);
    const flavor = relaxedSimd && supportsRelaxedSimd() ? "relaxed" : "plain";
    const runner = new WasmRunner(spec, threads, flavor, memory, pool);
    if (VARIANTS[spec.variant.kind].cellStates) return Promise.resolve(runner);
    // GRU and RNN have no fused training kernel: without runTraining they train with the oracle.
    return Promise.resolve({ run: (input) => runner.run(input), dispose: () => runner.dispose() });
  }, RECURRENT_ACTIVATIONS);
}

/**
 * The WASM backend with the default threading: large batches split over one Worker per core
 * (at most 8) where the runtime has them, everything else in the calling thread.
 *
 * @example
 * ```ts
 * import { wasmBackend } from "./mod.ts";
 * const runner = await wasmBackend.compile({
 *   variant: { kind: "array", k: 2, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(8), i2hBias: new Float32Array(8),
 *     h2hWeight: new Float32Array(8), h2hBias: new Float32Array(8),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * runner.dispose();
 * ```
 */
export const wasmBackend: Backend = createWasmBackend();
