/**
 * A model's compiled runner and its life cycle. The cell is compiled on first use from a snapshot
 * of the parameters; `invalidate()` (after new weights, or `dispose()`) drops it, and a dropped
 * runner frees its memory only once every call that was given it has settled (see
 * `SequenceRunner.dispose`). So a hot reload never fails a call in flight: calls made before it
 * finish with the old weights, calls made after it compile and use the new ones.
 *
 * @module
 */

import {
  type CellSpec,
  copyInput,
  copySpec,
  type SequenceInput,
  type SequenceOutput,
  type SequenceRunner,
} from "../contract/mod.ts";

/**
 * The error of a call on a model after its `dispose()`, which is final.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { disposedError } from "./runner_cache.ts";
 * assert.match(disposedError("LSTM").message, /^this LSTM was disposed: .*create a new one/);
 * ```
 */
export function disposedError(owner: string): Error {
  return new Error(
    `this ${owner} was disposed: dispose() freed its backend memory for good, so it runs no ` +
      "more; create a new one (loadStateDict gives it saved weights) to run again",
  );
}

/** One compile: its runner once ready, the calls waiting for (or pinning) it, whether dropped. */
interface Compile {
  readonly runner: Promise<SequenceRunner>;
  ready: SequenceRunner | null;
  waiting: number;
  dropped: boolean;
}

/**
 * Compiles a cell once and runs calls on it.
 *
 * @example
 * ```ts
 * import { RunnerCache } from "./runner_cache.ts";
 * import { jsBackend } from "../backends/js/mod.ts";
 * const z = (n: number) => new Float32Array(n);
 * const cache = new RunnerCache(
 *   () => ({
 *     variant: { kind: "lstm", k: 1, maxPooling: false },
 *     inputSize: 1,
 *     hiddenSize: 1,
 *     params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 *   }),
 *   (spec) => jsBackend.compile(spec),
 * );
 * const { output } = await cache.run({ batch: 1, seqLen: 2, x: z(2), hidden: z(1), state: z(1) });
 * cache.invalidate();
 * ```
 */
export class RunnerCache {
  readonly #spec: () => CellSpec;
  readonly #compile: (spec: CellSpec) => Promise<SequenceRunner>;
  #current: Compile | null = null;
  // The weights' version the current runner was compiled from (or updated to in place).
  #version = -1;
  /** The class name of the model that disposed this cache for good, or `null`. */
  #disposedBy: string | null = null;

  /**
   * @param spec The cell to compile, read (and copied) when a compile starts.
   * @param compile Compiles a spec on the model's backend.
   */
  constructor(spec: () => CellSpec, compile: (spec: CellSpec) => Promise<SequenceRunner>) {
    this.#spec = spec;
    this.#compile = compile;
  }

  /** The runner, compiling it unless it is ready or on its way. */
  runner(): Promise<SequenceRunner> {
    return this.#start().runner;
  }

  /**
   * Runs `input` on the runner. The input arrays are read (or, while the cell is still
   * compiling, copied) before this returns, so the caller may reuse them at once.
   */
  run(input: SequenceInput): Promise<SequenceOutput> {
    const entry = this.#start();
    if (entry.ready !== null) return entry.ready.run(input);
    return this.#runWhenCompiled(entry, copyInput(input));
  }

  /**
   * Runs `body` with the runner, which is not freed before `body` settles even when it is
   * dropped meanwhile: a call made of several runs (variable-length chunks) uses one set of
   * weights from start to end.
   */
  async pinned<T>(body: (runner: SequenceRunner) => Promise<T>): Promise<T> {
    const entry = this.#start();
    entry.waiting++;
    try {
      return await body(await entry.runner);
    } finally {
      entry.waiting--;
      if (entry.dropped && entry.waiting === 0) entry.ready?.dispose();
    }
  }

  /**
   * Whether `runner` is the cached one (not dropped).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { jsBackend } from "../backends/js/mod.ts";
   * import { RunnerCache } from "./runner_cache.ts";
   * const z = (n: number) => new Float32Array(n);
   * const cache = new RunnerCache(
   *   () => ({
   *     variant: { kind: "lstm", k: 1, maxPooling: false },
   *     inputSize: 1,
   *     hiddenSize: 1,
   *     params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
   *   }),
   *   (spec) => jsBackend.compile(spec),
   * );
   * const runner = await cache.runner();
   * assert.ok(cache.holds(runner));
   * cache.invalidate();
   * assert.ok(!cache.holds(runner));
   * ```
   */
  holds(runner: SequenceRunner): boolean {
    return this.#current !== null && this.#current.ready === runner;
  }

  /**
   * This cache for the weights at `version`: a runner compiled from other weights is dropped
   * first (calls in flight finish on it), so the next call compiles the new ones.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RunnerCache } from "./runner_cache.ts";
   * import { jsBackend } from "../backends/js/mod.ts";
   * const z = (n: number) => new Float32Array(n);
   * const cache = new RunnerCache(
   *   () => ({
   *     variant: { kind: "lstm", k: 1, maxPooling: false },
   *     inputSize: 1,
   *     hiddenSize: 1,
   *     params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
   *   }),
   *   (spec) => jsBackend.compile(spec),
   * );
   * const runner = await cache.at(0).runner();
   * assert.ok(cache.current(runner, 0));
   * assert.ok(!cache.at(1).holds(runner));
   * ```
   */
  at(version: number): this {
    if (version !== this.#version) {
      this.invalidate();
      this.#version = version;
    }
    return this;
  }

  /** Whether `runner` is this cache's and holds the weights at `version`. */
  current(runner: SequenceRunner, version: number): boolean {
    return this.holds(runner) && this.#version === version;
  }

  /** Records that the runner's weights were updated in place to `version`: no new compile. */
  adopt(version: number): void {
    this.#version = version;
  }

  /** Drops the runner; it frees its memory when the calls given it have settled. */
  invalidate(): void {
    const entry = this.#current;
    this.#current = null;
    if (entry === null) return;
    entry.dropped = true;
    // Calls still waiting for the compile dispose the runner once the last of them has started.
    if (entry.waiting === 0) entry.ready?.dispose();
  }

  /**
   * Drops the runner for good (it frees its memory when the calls given it have settled): every
   * later call throws {@linkcode disposedError} of `owner`. Idempotent.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { jsBackend } from "../backends/js/mod.ts";
   * import { RunnerCache } from "./runner_cache.ts";
   * const z = (n: number) => new Float32Array(n);
   * const cache = new RunnerCache(
   *   () => ({
   *     variant: { kind: "lstm", k: 1, maxPooling: false },
   *     inputSize: 1,
   *     hiddenSize: 1,
   *     params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
   *   }),
   *   (spec) => jsBackend.compile(spec),
   * );
   * cache.dispose("LSTM");
   * assert.throws(() => cache.runner(), /this LSTM was disposed/);
   * ```
   */
  dispose(owner: string): void {
    this.#disposedBy ??= owner;
    this.invalidate();
  }

  #start(): Compile {
    if (this.#disposedBy !== null) throw disposedError(this.#disposedBy);
    if (this.#current !== null) return this.#current;
    const spec = copySpec(this.#spec());
    const entry: Compile = {
      runner: Promise.resolve().then(() => this.#compile(spec)),
      ready: null,
      waiting: 0,
      dropped: false,
    };
    entry.runner.then(
      (runner) => {
        entry.ready = runner;
        if (entry.dropped && entry.waiting === 0) runner.dispose();
      },
      () => {
        // A failed compile is not kept: the next call tries again (and gets the error itself).
        if (this.#current === entry) this.#current = null;
      },
    );
    this.#current = entry;
    return entry;
  }

  async #runWhenCompiled(entry: Compile, input: SequenceInput): Promise<SequenceOutput> {
    entry.waiting++;
    let runner: SequenceRunner;
    try {
      runner = await entry.runner;
    } finally {
      entry.waiting--;
    }
    // `run` counts the call before `dispose` is asked for, so dropping the runner waits for it.
    const result = runner.run(input);
    if (entry.dropped && entry.waiting === 0) runner.dispose();
    return await result;
  }
}
