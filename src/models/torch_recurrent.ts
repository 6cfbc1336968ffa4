/**
 * The shared body of `GRU` and `RNN`: torch's single-layer cells with torch's parameter names
 * (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, as `nn.GRUCell` / `nn.RNNCell` name them),
 * batch first. The forward runs on the model's backend through the backend contract (variant
 * kinds `"gru"`, `"rnn_tanh"`, `"rnn_relu"`) and records for training as the LSTM family does
 * (`record_sequence.ts`): the backward is the runner's, or the float64 oracle that recomputes the
 * forward trace from the same weights.
 *
 * @module
 */

import type { BackendName, CellSpec, ResolvedBackendName } from "../contract/mod.ts";
import { checkBackendName, selectBackend } from "../backends/select.ts";
import { checkOptions, checkShape, checkSize, describe } from "../errors.ts";
import { linearInit, resolveSeed } from "../nn/init.ts";
import { Module } from "../nn/module.ts";
import { hasHistory, untracked } from "../nn/tape.ts";
import { Random } from "../random.ts";
import { gateBlocks, type TorchCellKind } from "../reference/gru_rnn.ts";
import { checkTensor, type Tensor, zeros } from "../tensor.ts";
import type { RecurrentInit, RecurrentLayer, RecurrentResult } from "./recurrent.ts";
import { recordSequence } from "./record_sequence.ts";
import { RunnerCache } from "./runner_cache.ts";

/** Options of `GRU` and `RNN`. */
export interface TorchRecurrentOptions {
  /** Where to run: `"auto"` (default) picks WebGPU on a hardware GPU, else WASM. */
  backend?: BackendName;
  /** Seed of the initialisation, U(±1/√hiddenSize) as torch. */
  seed?: number;
}

/**
 * A torch-style recurrent layer without cell states: the base of `GRU` and `RNN`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GRU, TorchRecurrent } from "../../mod.ts";
 * assert.ok(new GRU(2, 3) instanceof TorchRecurrent);
 * ```
 */
export abstract class TorchRecurrent extends Module implements RecurrentLayer {
  /** Features per input step. */
  readonly inputSize: number;
  /** Hidden units. */
  readonly hiddenSize: number;
  /** The backend asked for; see {@linkcode TorchRecurrent.resolveBackend} for the one in use. */
  readonly backend: BackendName;
  /** The seed the weights were drawn from. */
  readonly seed: number;
  readonly #runner = new RunnerCache(
    () => this.#cellSpec(),
    (spec) => selectBackend(this.backend).then((backend) => backend.compile(spec)),
  );

  /**
   * Checks the sizes and options.
   *
   * @param inputSize Features per input step.
   * @param hiddenSize Hidden units.
   * @param options Backend and seed.
   *
   * @example A subclass names its equations; the base checks the sizes
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU } from "../../mod.ts";
   * assert.equal(new GRU(2, 3, { seed: 4 }).seed, 4);
   * assert.throws(() => new GRU(0, 3), /inputSize/);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, options: TorchRecurrentOptions) {
    super();
    this.inputSize = checkSize("inputSize", inputSize);
    this.hiddenSize = checkSize("hiddenSize", hiddenSize);
    checkOptions(options);
    this.backend = checkBackendName("options.backend", options.backend ?? "auto");
    this.seed = resolveSeed(options.seed);
  }

  /** The cell's equations. */
  protected abstract get kind(): TorchCellKind;

  /** Features per output step: `hiddenSize`. */
  get outputSize(): number {
    return this.hiddenSize;
  }

  /** Rows of `hidden`: 1. */
  get hiddenRows(): number {
    return 1;
  }

  /** No cell states. */
  get stateRows(): number {
    return 0;
  }

  /**
   * `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, drawn as torch: U(±1/√H).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU } from "../../mod.ts";
   * const weights = new GRU(2, 4, { seed: 1 }).stateDict();
   * assert.deepEqual(weights.weight_ih.shape, [12, 2]);
   * assert.ok(weights.weight_hh.data.every((v) => Math.abs(v) <= 0.5));
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    const random = new Random(this.seed);
    const I = this.inputSize, H = this.hiddenSize, G = gateBlocks(this.kind) * H;
    return {
      weight_ih: linearInit(random, [G, I], H),
      weight_hh: linearInit(random, [G, H], H),
      bias_ih: linearInit(random, [G], H),
      bias_hh: linearInit(random, [G], H),
    };
  }

  #cellSpec(): CellSpec {
    return {
      variant: { kind: this.kind, k: 1, maxPooling: false },
      inputSize: this.inputSize,
      hiddenSize: this.hiddenSize,
      params: {
        i2hWeight: this.parameter("weight_ih").data,
        i2hBias: this.parameter("bias_ih").data,
        h2hWeight: this.parameter("weight_hh").data,
        h2hBias: this.parameter("bias_hh").data,
        i2aWeight: null,
        i2aBias: null,
      },
    };
  }

  // Parameters are replaced, never written into: a new version (optimizer step, loadStateDict)
  // compiles the weights again; calls in flight finish on the runner they started with.
  #currentRunner(): RunnerCache {
    return this.#runner.at(this.parametersVersion());
  }

  /**
   * The backend this layer runs on (resolving `"auto"`), compiling the cell if needed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU } from "../../mod.ts";
   * using gru = new GRU(2, 3, { backend: "wasm" });
   * assert.equal(await gru.resolveBackend(), "wasm");
   * ```
   */
  async resolveBackend(): Promise<ResolvedBackendName> {
    return (await this.#currentRunner().runner()).backend;
  }

  /**
   * Runs a batch of sequences, recording for `backward()` in training mode (or when `x` or
   * `init.hidden` carries history).
   *
   * @param x Input `(batch, seqLen, inputSize)`.
   * @param init `{ hidden }` `(1, batch, hiddenSize)`; zeros when omitted.
   * @returns `output` `(batch, seqLen, hiddenSize)` and the final `hidden` `(1, batch, hiddenSize)`.
   *
   * @example The last output step is the final hidden state
   * ```ts
   * import assert from "node:assert/strict";
   * import { randn, RNN } from "../../mod.ts";
   * const { output, hidden } = await new RNN(3, 2, { seed: 1 }).forward(randn([1, 4, 3]));
   * assert.deepEqual([...output.data.slice(6)], [...hidden.data]);
   * ```
   */
  forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult> {
    // Checked and started now (errors reject): a call made before `dispose()` finishes.
    return this.#forward(x, init);
  }

  async #forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult> {
    checkTensor("x", x);
    checkShape("x", x.shape, [-1, -1, this.inputSize], "(batch, seqLen, inputSize)");
    const [B, T] = x.shape, H = this.hiddenSize;
    if (B === 0 || T === 0) {
      throw new RangeError(
        `x must have at least one sequence and one step, got ${describe(x.shape)}`,
      );
    }
    if (init !== undefined && (typeof init !== "object" || init === null)) {
      throw new TypeError(`init must be { hidden }, got ${describe(init)}`);
    }
    if (init?.state !== undefined) {
      throw new TypeError(
        `init.state must be absent: ${this.constructor.name} keeps no cell states (pass { hidden })`,
      );
    }
    const h0 = init?.hidden ?? zeros([1, B, H]);
    checkTensor("init.hidden", h0);
    checkShape("init.hidden", h0.shape, [1, B, H], "(1, batch, hiddenSize)");
    const input = { batch: B, seqLen: T, x: x.data, hidden: h0.data, state: new Float32Array(0) };
    const runners = this.#currentRunner();
    if (!this.training && !hasHistory(x) && !hasHistory(h0)) {
      const result = await runners.run(input);
      return {
        output: untracked({ shape: [B, T, H], data: result.output }),
        hidden: untracked({ shape: [1, B, H], data: result.hidden }),
      };
    }
    // The backward reads the input again later: it keeps its own copies.
    const own = { ...input, x: x.data.slice(), hidden: h0.data.slice() };
    const [output, hidden] = await recordSequence(
      await runners.runner(),
      own,
      {
        parameters: this.training ? this.parameters() : [],
        x,
        hidden: h0,
        state: zeros([0, B, H]),
      },
    );
    return { output, hidden };
  }

  /**
   * Frees the compiled cell (wasm or GPU memory) for good: a later `forward` throws (create a
   * new layer, and `loadStateDict` its weights, to run again). Disposing twice does nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GRU, randn } from "../../mod.ts";
   * const gru = new GRU(2, 3);
   * gru.dispose();
   * await assert.rejects(gru.forward(randn([1, 2, 2])), /this GRU was disposed/);
   * ```
   */
  dispose(): void {
    this.#runner.dispose(this.constructor.name);
  }

  /**
   * Same as {@linkcode TorchRecurrent.dispose}, for `using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { randn, RNN } from "../../mod.ts";
   * {
   *   using rnn = new RNN(2, 3, { backend: "wasm" });
   *   const { output } = await rnn.forward(randn([1, 2, 2]));
   *   assert.deepEqual(output.shape, [1, 2, 3]);
   * } // disposed here
   * ```
   */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
