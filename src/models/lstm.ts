/**
 * The `LSTM` of the ArrayLSTM package, and the machinery every variant inherits: parameters with
 * PyTorch names, seeded initialisation, argument checks, backend dispatch and the reference's hooks.
 *
 * @module
 */

import type {
  BackendName,
  CellVariant,
  RecurrentActivation,
  RelevanceStep,
  ResolvedBackendName,
} from "../contract/mod.ts";
import { RECURRENT_ACTIVATIONS } from "../contract/mod.ts";
import { checkBackendName } from "../backends/select.ts";
import { checkOptions, checkShape, checkSize, describe } from "../errors.ts";
import { linearInit, resolveSeed } from "../nn/init.ts";
import { Module } from "../nn/module.ts";
import { hasHistory } from "../nn/tape.ts";
import { Random } from "../random.ts";
import { checkTensor, sizeOf, type Tensor, zeros } from "../tensor.ts";
import { registerBuiltin, STEP_HOOKS, usesBuiltinHooks } from "./builtin.ts";
import {
  type ForwardOptions,
  type ForwardResult,
  type RecurrentState,
  requestedOutputs,
} from "./forward_options.ts";
import { checkState, forwardByHooks } from "./hook_path.ts";
import { checkLengths } from "./packed.ts";
import { RunnerBinding } from "./runner_binding.ts";
import { disposedError } from "./runner_cache.ts";
import { laneStep, readLanes } from "./step_ops.ts";

/** Options every model takes. */
export interface LSTMOptions {
  /** Where to run: `"auto"` (default) picks WebGPU on a hardware GPU, else WASM. */
  backend?: BackendName;
  /** Seed of the weight initialisation; the same seed gives the same weights everywhere. */
  seed?: number;
  /**
   * The forget, input and output gates' activation (Keras' name): `"sigmoid"` (default, as torch
   * and tf.keras 2), `"hard_sigmoid"` (`clip(0.2x + 0.5, 0, 1)`, Keras 1/2) or
   * `"hard_sigmoid_keras3"` (`clip(x/6 + 0.5, 0, 1)`). Every backend runs all three, in its
   * kernels and its training.
   */
  recurrentActivation?: RecurrentActivation;
}

export type {
  ForwardOptions,
  ForwardResult,
  LaneIndices,
  RecurrentState,
} from "./forward_options.ts";

/**
 * Per-lane readout of the hidden state: `(k, B, H)` output gates and cells to `(1, B, H)`. In
 * training both carry history; build the result from them with the differentiable ops.
 */
export type Readout = (outputs: Tensor, states: Tensor) => Tensor;

// A model's private binding; set once by the class's static block, used by `setVariant`,
// `cellVariant` and `runForRelevance`.
let bindingOf: (model: LSTM) => RunnerBinding;
/**
 * A long short-term memory layer, batch first, as in the ArrayLSTM package: gates in the order
 * forget, input, output, candidate; `c = f·c + i·g`; `h = o·tanh(c)`.
 *
 * @example Run a batch of sequences and continue from the returned state
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, randn } from "../../mod.ts";
 * using lstm = new LSTM(3, 8, { backend: "js", seed: 1 });
 * const x = randn([2, 5, 3], { seed: 2 });
 * const { output, hidden, state } = await lstm.forward(x);
 * assert.deepEqual([output.shape, hidden.shape, state.shape], [[2, 5, 8], [1, 2, 8], [1, 2, 8]]);
 * const next = await lstm.forward(x, { hidden, state });
 * assert.notDeepEqual(next.output.data, output.data); // it went on from the state
 * ```
 *
 * @example Train it: `train()`, a loss, `backward()`, an optimizer step
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, LSTM, mseLoss, randn, zeros } from "../../mod.ts";
 * const lstm = new LSTM(3, 8, { backend: "js", seed: 1 }).train();
 * const opt = new Adam(lstm.parameters(), { lr: 1e-2 });
 * const x = randn([2, 5, 3], { seed: 2 });
 * const { hidden } = await lstm.forward(x);
 * const loss = mseLoss(hidden, zeros([1, 2, 8]));
 * await loss.backward();
 * opt.step();
 * assert.ok((await lstm.forward(x)).hidden.data.some((v, i) => v !== hidden.data[i]));
 * ```
 */
export class LSTM extends Module {
  /** `I`: features per input step. */
  readonly inputSize: number;
  /** `H`: hidden units. */
  readonly hiddenSize: number;
  /** The backend asked for; see {@linkcode LSTM.resolveBackend} for the one in use. */
  readonly backend: BackendName;
  /** The seed the weights were drawn from. */
  readonly seed: number;
  /** The gates' activation. */
  readonly recurrentActivation: RecurrentActivation;
  // The runner and the cell as the backends see it (the built-in subclasses set their variant
  // with `setVariant`).
  readonly #binding = new RunnerBinding(this, () => this.parametersVersion());
  /** Whether `dispose()` was called: final, every later forward throws. */
  #disposed = false;

  /**
   * Makes an LSTM with weights drawn like PyTorch's `nn.Linear` from `options.seed`.
   *
   * @param inputSize `I`, features per input step.
   * @param hiddenSize `H`, hidden units.
   * @param options Backend and seed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * const lstm = new LSTM(3, 8, { seed: 1 });
   * assert.deepEqual([lstm.inputSize, lstm.hiddenSize, lstm.k, lstm.backend], [3, 8, 1, "auto"]);
   * assert.deepEqual(lstm.stateDict()["i2h.weight"].shape, [32, 3]); // gates f, i, o, g
   * assert.throws(() => new LSTM(3, 0), RangeError);
   * ```
   */
  constructor(inputSize: number, hiddenSize: number, options: LSTMOptions = {}) {
    super();
    this.inputSize = checkSize("inputSize", inputSize);
    this.hiddenSize = checkSize("hiddenSize", hiddenSize);
    checkOptions(options);
    this.backend = checkBackendName(
      "options.backend",
      options.backend === undefined ? "auto" : options.backend,
    );
    this.seed = resolveSeed(options.seed);
    const activation = options.recurrentActivation ?? "sigmoid";
    if (!RECURRENT_ACTIVATIONS.includes(activation)) {
      throw new TypeError(
        `options.recurrentActivation must be one of ${
          RECURRENT_ACTIVATIONS.map(describe).join(", ")
        }, got ${describe(activation)}`,
      );
    }
    this.recurrentActivation = activation;
  }

  static {
    bindingOf = (model) => model.#binding;
  }

  /** Memory cells per hidden unit: 1 for `LSTM`. */
  get k(): number {
    return this.#binding.variant.k;
  }

  /** Features per output step: `hiddenSize`. */
  get outputSize(): number {
    return this.hiddenSize;
  }

  /** Rows of `hidden`: 1. */
  get hiddenRows(): number {
    return 1;
  }

  /** Rows of `state`: `k`. */
  get stateRows(): number {
    return this.k;
  }

  /**
   * Parameter names (PyTorch's) with their shapes and `nn.Linear` fan-in, in drawing order.
   *
   * @example A subclass sees the shapes its weights are drawn with
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * class Shapes extends LSTM {
   *   shapes() {
   *     return this.parameterShapes();
   *   }
   * }
   * assert.deepEqual(new Shapes(3, 2).shapes()["h2h.weight"], { shape: [8, 2], fanIn: 2 });
   * ```
   */
  protected parameterShapes(): Record<string, { shape: number[]; fanIn: number }> {
    const I = this.inputSize, H = this.hiddenSize, rows = 4 * this.k * H;
    return {
      "i2h.weight": { shape: [rows, I], fanIn: I },
      "i2h.bias": { shape: [rows], fanIn: I },
      "h2h.weight": { shape: [rows, H], fanIn: H },
      "h2h.bias": { shape: [rows], fanIn: H },
    };
  }

  /**
   * The parameters drawn like `nn.Linear` from the seed, in the order of `parameterShapes`.
   *
   * @example The same seed draws the same weights
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * const a = new LSTM(3, 2, { seed: 7 }), b = new LSTM(3, 2, { seed: 7 });
   * assert.deepEqual(a.stateDict(), b.stateDict());
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    const random = new Random(this.seed);
    const shapes = this.parameterShapes();
    return Object.fromEntries(
      Object.entries(shapes).map(([name, { shape, fanIn }]) => {
        try {
          return [name, linearInit(random, shape, fanIn)];
        } catch (error) {
          throw tooLarge(name, shape, shapes, error);
        }
      }),
    );
  }

  /**
   * The parameters live where this model runs: optimizers refuse to mix parameters of models on
   * two backends.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * assert.equal(new LSTM(3, 2, { backend: "js" }).parameters()[0].backend, "js");
   * ```
   */
  protected override parameterBackend(): BackendName {
    return this.backend;
  }

  /**
   * The backend this model runs on (resolving `"auto"`), compiling the cell if needed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * using lstm = new LSTM(2, 3, { backend: "js" });
   * assert.equal(await lstm.resolveBackend(), "js");
   * ```
   */
  async resolveBackend(): Promise<ResolvedBackendName> {
    return (await this.#binding.current().runner()).backend;
  }

  /**
   * Runs a batch of sequences. Built-in models run all steps in the backend's fused kernels; a
   * subclass that overrides a hook runs step by step through its hooks in TypeScript, recorded
   * op by op in training (its hooks must build their results from the differentiable ops).
   *
   * In training mode the run is recorded: a loss computed from the results back-propagates into
   * the parameters' `grad`, and into `x`, `init.hidden` and `init.state` when they carry history
   * (from `requiresGrad` or an earlier recording layer). In evaluation mode only an
   * input with history is recorded, and the parameters get no gradient.
   *
   * With `init.lengths`, sequences of different lengths share one batch (padded to `seqLen`) and
   * each stops at its own length, as with PyTorch's `pack_padded_sequence`.
   *
   * @example Sequences of lengths 5 and 2 in one batch
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, randn } from "../../mod.ts";
   * const lstm = new LSTM(3, 4, { backend: "js", seed: 1 });
   * const x = randn([2, 5, 3], { seed: 2 });
   * const { output, hidden } = await lstm.forward(x, { lengths: [5, 2] });
   * assert.deepEqual([...output.data.subarray(28, 40)], new Array(12).fill(0)); // row 1, steps 2-4
   * assert.deepEqual(hidden.data.subarray(4, 8), output.data.subarray(24, 28)); // row 1, step 1
   * ```
   *
   * With `init.returnAttention` (`AttentionArrayLSTM`) or `init.returnLanes`
   * (`StochasticArrayLSTM`), the result also holds the attention weights `(B, T, H, k)` or the
   * chosen lanes `(B, T, H)` of every step, written by the backend's kernels (with `lengths`: zero,
   * or -1 for lanes, past each sequence's end). They are plain tensors without history. A
   * subclass that overrides a hook cannot return them (its kernels do not run).
   *
   * @example Which lane each unit read, and how the attention spread over the lanes
   * ```ts
   * import assert from "node:assert/strict";
   * import { AttentionArrayLSTM, randn, StochasticArrayLSTM } from "../../mod.ts";
   * const x = randn([2, 5, 3], { seed: 1 });
   * using stochastic = new StochasticArrayLSTM(3, 4, 2, { backend: "js", seed: 2 });
   * const { lanes } = await stochastic.forward(x, { returnLanes: true });
   * assert.deepEqual(lanes!.shape, [2, 5, 4]); // (batch, seqLen, hiddenSize)
   * assert.ok(lanes!.data.every((lane) => lane === 0 || lane === 1));
   * using attentive = new AttentionArrayLSTM(3, 4, 2, { backend: "js", seed: 2 });
   * const { attention } = await attentive.forward(x, { returnAttention: true, lengths: [5, 3] });
   * assert.deepEqual(attention!.shape, [2, 5, 4, 2]); // (batch, seqLen, hiddenSize, k)
   * const [s0, s1] = attention!.data; // step 0, unit 0 of sequence 0: the two lanes' weights
   * assert.ok(Math.abs(s0 + s1 - 1) < 1e-6);
   * assert.ok(attention!.data.subarray((5 + 3) * 8).every((s) => s === 0)); // past length 3
   * ```
   *
   * @param x Input, shape `(batch, seqLen, inputSize)`.
   * @param init Initial state (zeros from `initHidden` when omitted), sequence lengths and the
   *   opt-in outputs. Never modified.
   * @returns Outputs of every step, the final hidden and cell states, and the opt-in outputs.
   * @throws {RangeError} If a shape does not fit the model, or a length is not in `[1, seqLen]`.
   * @throws {TypeError} If `returnAttention` or `returnLanes` is asked of a class without them.
   * @throws {Error} When recording a subclass whose hook returns a tensor without history
   *   (computed on raw arrays, which the backward cannot follow).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, zeros } from "../../mod.ts";
   * using lstm = new LSTM(4, 3, { backend: "js", seed: 1 });
   * const x = zeros([2, 5, 4]); // (batch, seqLen, inputSize)
   * const { output, hidden, state } = await lstm.forward(x);
   * assert.deepEqual(output.shape, [2, 5, 3]);
   * assert.deepEqual(hidden.data.subarray(0, 3), output.data.subarray(4 * 3, 5 * 3)); // last step
   * assert.deepEqual(state.shape, [1, 2, 3]);
   * await assert.rejects(lstm.forward(zeros([2, 5, 3])), RangeError); // wrong inputSize
   * ```
   */
  async forward(x: Tensor, init?: ForwardOptions): Promise<ForwardResult> {
    if (this.#disposed) throw disposedError(this.constructor.name);
    checkTensor("x", x);
    checkShape("x", x.shape, [-1, -1, this.inputSize], "(batch, seqLen, inputSize)");
    const [batch, seqLen] = x.shape;
    if (batch === 0 || seqLen === 0) {
      throw new RangeError(
        `x must have at least one sequence and one step, got ${describe(x.shape)}`,
      );
    }
    if (init !== undefined && init !== null && typeof init !== "object") {
      throw new TypeError(
        `init must be { hidden, state, lengths, returnAttention, returnLanes }, got ${
          describe(init)
        }`,
      );
    }
    const outputs = requestedOutputs(init, this.#binding.variant.kind, this.constructor.name);
    const given = init?.hidden !== undefined || init?.state !== undefined;
    const start = given ? init as RecurrentState : this.initHidden(x);
    checkState(this, given ? "init" : "initHidden(x)", start, batch);
    const lengths = init?.lengths === undefined ? null : checkLengths(init.lengths, batch, seqLen);
    const recording = this.training || [x, start.hidden, start.state].some(hasHistory);
    const byHooks = !usesBuiltinHooks(this, STEP_HOOKS);
    if (byHooks && outputs !== undefined) {
      throw new Error(
        `${this.constructor.name} overrides a hook of the time loop (forwardCell or updateHidden), so ` +
          "its kernels do not run and cannot return attention or lanes: compute them in your " +
          "hook, or use the built-in class",
      );
    }
    const settled = this.#binding.settling({ x, init, start: given ? start : null, lengths });
    if (settled !== null) {
      const { x: copy, init: copies } = await settled;
      return await this.forward(copy, copies);
    }
    if (byHooks) return forwardByHooks(this, x, start, lengths);
    // Zeros from the built-in `initHidden` are this call's own: nobody else can change them.
    const ownStart = !given && usesBuiltinHooks(this, ["initHidden"]);
    return await this.#binding.forward(x, start, lengths, recording, outputs, ownStart);
  }

  /**
   * One step of the cell (the reference's `forward_cell`).
   *
   * @param x This step's input, shape `(batch, inputSize)`.
   * @param hidden Hidden state, shape `(1, batch, hiddenSize)`.
   * @param state Cell states, shape `(k, batch, hiddenSize)`.
   * @returns The next hidden and cell states (new tensors).
   *
   * @example One step by hand agrees with `forward` over one step
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, randn, zeros } from "../../mod.ts";
   * using lstm = new LSTM(3, 2, { backend: "js", seed: 1 });
   * const x = randn([4, 3], { seed: 2 }); // (batch, inputSize)
   * const { hidden, state } = lstm.forwardCell(x, zeros([1, 4, 2]), zeros([1, 4, 2]));
   * const fused = await lstm.forward({ shape: [4, 1, 3], data: x.data });
   * assert.deepEqual(hidden.shape, [1, 4, 2]);
   * fused.hidden.data.forEach((v, i) => assert.ok(Math.abs(v - hidden.data[i]) < 1e-6));
   * assert.deepEqual(state.shape, [1, 4, 2]);
   * ```
   */
  forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return this.stepCells(
      x,
      hidden,
      state,
      null,
      (outputs, states) => readLanes(outputs, states, false),
    );
  }

  /**
   * The shared body of `forwardCell`: pre-activations, every lane's cell update (scaled by the
   * attention `laneWeights` `(B, k, H)` when given), then `readout` for the hidden state.
   * Recorded when the layer is training or an input carries history: `readout` gets the output
   * gates and cells with history, and what it builds from them with the differentiable ops
   * (`add`, `mul`, `tanh`, `split`, ...) trains.
   *
   * @example A subclass whose hidden state is the cell state itself
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, type RecurrentState, randn, sum, type Tensor } from "../../mod.ts";
   * class CellOut extends LSTM {
   *   override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
   *     return this.stepCells(x, hidden, state, null, (_outputs, states) => states);
   *   }
   * }
   * const model = new CellOut(3, 2, { backend: "js", seed: 1 });
   * const { hidden, state } = await model.forward(randn([1, 4, 3], { seed: 2 }));
   * assert.deepEqual(hidden.data, state.data);
   * model.train(); // it trains through its hook
   * await sum((await model.forward(randn([1, 4, 3], { seed: 2 }))).hidden).backward();
   * assert.ok(model.parameters().every((p) => p.grad !== null));
   * ```
   */
  protected stepCells(
    x: Tensor,
    hidden: Tensor,
    state: Tensor,
    laneWeights: Tensor | null,
    readout: Readout,
  ): RecurrentState {
    const { kind, k } = this.#binding.variant;
    const weights = {
      i2hWeight: this.parameterTensor("i2h.weight"),
      i2hBias: this.parameterTensor("i2h.bias"),
      h2hWeight: this.parameterTensor("h2h.weight"),
      h2hBias: this.parameterTensor("h2h.bias"),
    };
    const cell = { kind, k, activation: this.recurrentActivation };
    const { outputGates, states } = laneStep(cell, weights, x, hidden, state, laneWeights);
    return { hidden: readout(outputGates, states), state: states };
  }

  /**
   * The initial state when `forward` gets none: zeros (the reference's `initHidden`).
   *
   * @param x The input, shape `(batch, seqLen, inputSize)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM, zeros } from "../../mod.ts";
   * const { hidden, state } = new ArrayLSTM(3, 2, 4).initHidden(zeros([5, 7, 3]));
   * assert.deepEqual([hidden.shape, state.shape], [[1, 5, 2], [4, 5, 2]]);
   * assert.ok(state.data.every((v) => v === 0));
   * ```
   */
  initHidden(x: Tensor): RecurrentState {
    const batch = x.shape[0];
    return {
      hidden: zeros([1, batch, this.hiddenSize]),
      state: zeros([this.k, batch, this.hiddenSize]),
    };
  }

  /**
   * Frees the backend's memory (GPU buffers, wasm instances) for good: a later `forward` throws
   * (create a new model, and `loadStateDict` its weights, to run again). Calls already made
   * finish. Disposing twice does nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, zeros } from "../../mod.ts";
   * const lstm = new LSTM(3, 2, { backend: "js", seed: 1 });
   * await lstm.forward(zeros([1, 2, 3]));
   * lstm.dispose();
   * await assert.rejects(lstm.forward(zeros([1, 2, 3])), /this LSTM was disposed/);
   * ```
   */
  dispose(): void {
    this.#disposed = true;
    this.#binding.dispose(this.constructor.name);
  }

  /**
   * Same as {@linkcode LSTM.dispose}, for `using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, zeros } from "../../mod.ts";
   * {
   *   using lstm = new LSTM(3, 2, { backend: "js" });
   *   assert.deepEqual((await lstm.forward(zeros([1, 2, 3]))).output.shape, [1, 2, 2]);
   * } // disposed here
   * ```
   */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
registerBuiltin(LSTM);

/**
 * Sets the cell a model runs, as the backends see it: how the built-in subclasses of
 * {@linkcode LSTM} choose their variant from their constructor. Internal (not exported from
 * `mod.ts`): the variant is a contract type, and the public extension points are the hooks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, setVariant } from "./lstm.ts";
 * const model = new LSTM(2, 3);
 * setVariant(model, { kind: "array", k: 2, maxPooling: false });
 * assert.equal(model.k, 2);
 * ```
 */
export function setVariant(model: LSTM, variant: CellVariant): void {
  bindingOf(model).variant = variant;
}

/**
 * The cell a model runs, as its constructor set it (with {@linkcode setVariant}): exact for a
 * subclass too, which runs its built-in class's variant. Internal (not exported from `mod.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellVariant } from "./lstm.ts";
 * import { AttentionArrayLSTM } from "../../mod.ts";
 * const model = new (class extends AttentionArrayLSTM {})(2, 3, 2, { maxPooling: true });
 * assert.deepEqual(cellVariant(model), { kind: "attention", k: 2, maxPooling: true });
 * ```
 */
export function cellVariant(model: LSTM): CellVariant {
  return bindingOf(model).variant;
}

/**
 * The forward of `model` on `x` `(B, T, I)` from `initHidden(x)` that keeps what LRP's relevance
 * pass needs, on the model's runner, with that pass (`src/explain/lrp.ts` calls it); `null` when
 * the backend has no relevance pass for this cell (then the float64 pass of `src/explain/` runs).
 * Internal (not exported from `mod.ts`): the step is a contract type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, runForRelevance } from "./lstm.ts";
 * import { zeros } from "../../mod.ts";
 * assert.equal(await runForRelevance(new LSTM(2, 3, { backend: "js" }), zeros([1, 4, 2])), null);
 * const step = await runForRelevance(new LSTM(2, 3, { backend: "wasm" }), zeros([1, 4, 2]));
 * const rule = { eps: 1e-3, biasFactor: 1 };
 * const { input, rest } = await step!.relevance(new Float32Array(12), rule);
 * assert.deepEqual([input.length, rest.length], [8, 1]);
 * ```
 */
export function runForRelevance(model: LSTM, x: Tensor): Promise<RelevanceStep | null> {
  return bindingOf(model).relevance(x, model.initHidden(x));
}

export { cellParameters } from "./runner_binding.ts";

/** The error for parameters too large to allocate: how large the weights are, and what to do. */
function tooLarge(
  name: string,
  shape: readonly number[],
  all: Record<string, { shape: number[] }>,
  cause: unknown,
): RangeError {
  const floats = Object.values(all).reduce((sum, entry) => sum + sizeOf(entry.shape), 0);
  return new RangeError(
    `the weights need ${floats} floats (${(floats * 4 / 2 ** 30).toFixed(1)} GiB; ${name} ` +
      `alone is ${describe(shape)}), which could not be allocated: use a smaller hiddenSize ` +
      "(the weights grow with 4·k·hiddenSize·(inputSize + hiddenSize); the wasm backend fits " +
      "up to 2 GiB of them)",
    { cause },
  );
}
