/**
 * The WebAssembly backend: Rust kernels (`wasm/src`) built for `wasm32` with SIMD, shipped inside
 * the package as `wasm/arraylstm_wasm.generated.ts`, so using it needs no Rust and no network.
 *
 * A runner packs the weights once into wasm memory and runs whole sequences per call. Large
 * batches are split by rows over Workers, each with its own instance and copy of the weights; small
 * ones (and runtimes without `Worker`) run in the calling thread.
 *
 * Two builds of the kernels ship: one whose multiply-adds use relaxed SIMD's `f32x4.relaxed_madd`
 * (fused on CPUs with FMA), taken where the runtime validates it, and a plain SIMD one for the rest.
 *
 * @module
 */

import {
  type Backend,
  type CellSpec,
  copySpec,
  type SequenceInput,
  type SequenceOutput,
  type SequenceRunner,
} from "./backend.ts";
import { supportsRelaxedSimd, type WasmFlavor } from "./wasm/bindings.ts";
import { checkInput, checkSpec, WasmKernel } from "./wasm_kernel.ts";
import { WasmThread } from "./wasm_thread.ts";

/** Options of {@linkcode createWasmBackend}. */
export interface WasmBackendOptions {
  /**
   * Threads a large batch is split over: `1` never starts a Worker and runs in the calling thread.
   * Default: 2 where `Worker` exists and the machine has two or more cores, else 1.
   */
  readonly threads?: number;
  /**
   * Use the kernels built with relaxed SIMD (`f32x4.relaxed_madd`, about 1.5× the GEMM rate) where
   * the runtime supports them. Default `true`. A relaxed multiply-add is fused or not depending on
   * the CPU, so results can differ between machines in the last bits; `false` takes the plain
   * SIMD kernels, whose results are the same everywhere.
   */
  readonly relaxedSimd?: boolean;
}

/**
 * Below this much work per call (about 2 ms on one core) a worker round trip costs more than the
 * second core saves, so the call runs in the calling thread.
 */
const MIN_PARALLEL_FLOPS = 5e7;
/** Fewer rows per worker leave the kernel's two-row tiles half empty. */
const MIN_ROWS_PER_THREAD = 4;
/**
 * Workers stop after this long without a call (and start again on the next one): an idle Worker
 * keeps a Deno process alive, so a program that forgets `dispose()` still exits.
 */
const IDLE_WORKER_MS = 1000;

function defaultThreads(): number {
  if (typeof Worker !== "function") return 1;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(2, cores));
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

/** Copies rows `[start, end)` of `input` into fresh arrays (the worker receives them by transfer). */
function sliceRows(
  spec: CellSpec,
  input: SequenceInput,
  [start, end]: [number, number],
): SequenceInput {
  const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
  const { batch: B, seqLen: T } = input;
  const rows = end - start;
  const state = new Float32Array(k * rows * H);
  for (let lane = 0; lane < k; lane++) {
    state.set(
      input.state.subarray((lane * B + start) * H, (lane * B + end) * H),
      lane * rows * H,
    );
  }
  return {
    batch: rows,
    seqLen: T,
    x: input.x.slice(start * T * I, end * T * I),
    hidden: input.hidden.slice(start * H, end * H),
    state,
  };
}

class WasmRunner implements SequenceRunner {
  readonly backend = "wasm" as const;
  readonly #threads: number;
  readonly #flavor: WasmFlavor;
  /** A private copy of the spec: workers and the local kernel are created lazily from it. */
  #spec: CellSpec | null;
  #kernel: WasmKernel | null = null;
  #workers: WasmThread[] | null = null;
  #running = 0;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(spec: CellSpec, threads: number, flavor: WasmFlavor) {
    this.#threads = threads;
    this.#flavor = flavor;
    this.#spec = copySpec(spec);
  }

  run(input: SequenceInput): Promise<SequenceOutput> {
    const spec = this.#spec;
    if (spec === null) {
      return Promise.reject(
        new Error("this wasm runner was disposed; compile the cell again to run it"),
      );
    }
    try {
      checkInput(spec, input);
      const parts = this.#partsFor(spec, input);
      if (parts === 1) {
        this.#kernel ??= new WasmKernel(spec, this.#flavor);
        return Promise.resolve(this.#kernel.run(input));
      }
      return this.#runOnWorkers(spec, input, parts);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  dispose(): void {
    this.#spec = null;
    this.#kernel?.dispose();
    this.#kernel = null;
    this.#stopWorkers();
  }

  #partsFor(spec: CellSpec, input: SequenceInput): number {
    if (this.#threads === 1 || flopsOf(spec, input) < MIN_PARALLEL_FLOPS) return 1;
    return Math.max(1, Math.min(this.#threads, Math.floor(input.batch / MIN_ROWS_PER_THREAD)));
  }

  async #runOnWorkers(
    spec: CellSpec,
    input: SequenceInput,
    parts: number,
  ): Promise<SequenceOutput> {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const workers = this.#workers ??= Array.from(
      { length: this.#threads },
      () => new WasmThread(spec, this.#flavor),
    );
    this.#running++;
    try {
      const slices = Array.from({ length: parts }, (_, part) => rowsOf(input.batch, part, parts));
      const results = await Promise.all(
        slices.map((rows, part) => workers[part].run(sliceRows(spec, input, rows))),
      );
      return this.#assemble(spec, input, slices, results);
    } finally {
      if (--this.#running === 0 && this.#workers !== null) this.#armIdleTimer();
    }
  }

  #assemble(
    spec: CellSpec,
    input: SequenceInput,
    slices: [number, number][],
    results: SequenceOutput[],
  ): SequenceOutput {
    const { hiddenSize: H, variant: { k } } = spec;
    const { batch: B, seqLen: T } = input;
    const output = new Float32Array(B * T * H);
    const hidden = new Float32Array(B * H);
    const state = new Float32Array(k * B * H);
    slices.forEach(([start, end], part) => {
      const result = results[part];
      const rows = end - start;
      output.set(result.output, start * T * H);
      hidden.set(result.hidden, start * H);
      for (let lane = 0; lane < k; lane++) {
        state.set(
          result.state.subarray(lane * rows * H, (lane + 1) * rows * H),
          (lane * B + start) * H,
        );
      }
    });
    return { output, hidden, state };
  }

  #armIdleTimer(): void {
    const timer = setTimeout(() => this.#stopWorkers(), IDLE_WORKER_MS);
    // The timer itself must not keep the process alive: it only exists to let it exit.
    if (typeof Deno !== "undefined") Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #stopWorkers(): void {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    for (const worker of this.#workers ?? []) worker.terminate();
    this.#workers = null;
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
 * import { createWasmBackend } from "./wasm.ts";
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
  return {
    name: "wasm",
    compile(spec: CellSpec): Promise<SequenceRunner> {
      try {
        checkSpec(spec);
        const flavor = relaxedSimd && supportsRelaxedSimd() ? "relaxed" : "plain";
        return Promise.resolve(new WasmRunner(spec, threads, flavor));
      } catch (error) {
        return Promise.reject(error);
      }
    },
  };
}

/**
 * The WASM backend with the default threading: large batches split over two Workers where the
 * runtime has them, everything else in the calling thread.
 *
 * @example
 * ```ts
 * import { wasmBackend } from "./wasm.ts";
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
