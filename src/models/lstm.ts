/**
 * The `LSTM` of the ArrayLSTM package, and the machinery every variant inherits: parameters with
 * PyTorch names, seeded initialisation, argument checks, backend dispatch and the reference's hooks.
 *
 * @module
 */

import type {
  BackendName,
  CellParameters,
  CellSpec,
  CellVariant,
  RecurrentActivation,
  RelevanceStep,
  ResolvedBackendName,
  SequenceExtras,
  SequenceOutput,
  SequenceRunner,
} from "../contract/mod.ts";
import { parameterSizes, RECURRENT_ACTIVATIONS } from "../contract/mod.ts";
import { checkBackendName, selectBackend } from "../backends/select.ts";
import { checkOptions, checkShape, checkSize, describe } from "../errors.ts";
import { linearInit, resolveSeed } from "../nn/init.ts";
import { Module } from "../nn/module.ts";
import { DeviceGroup } from "../nn/device_group.ts";
import { ResidentGroup } from "../nn/resident.ts";
import { concat, split } from "../nn/layout.ts";
import { reshape } from "../nn/functional.ts";
import { hasHistory, record, type TrackedTensor, untracked } from "../nn/tape.ts";
import { Random } from "../random.ts";
import { checkTensor, sizeOf, type Tensor, zeros } from "../tensor.ts";
import { registerBuiltin, STEP_HOOKS, usesBuiltinHooks } from "./builtin.ts";
import { checkLengths, type ChunkExtras, type PackedResult, PackedRun } from "./packed.ts";
import { recordSequence } from "./record_sequence.ts";
import { laneStep, readLanes } from "./step_ops.ts";
import { RunnerCache } from "./runner_cache.ts";

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

/** A recurrent state: the hidden state `(1, B, H)` and the cell states `(k, B, H)`. */
export interface RecurrentState {
  /** Hidden state, shape `(1, batch, hiddenSize)`. */
  readonly hidden: Tensor;
  /** Cell states, shape `(k, batch, hiddenSize)` (`k = 1` for `LSTM`). */
  readonly state: Tensor;
}

/**
 * The second argument of `forward`: an initial state (both tensors, or neither for zeros) and
 * the length of each sequence.
 */
export interface ForwardOptions {
  /** Initial hidden state, shape `(1, batch, hiddenSize)`; give it with `state`. */
  readonly hidden?: Tensor;
  /** Initial cell states, shape `(k, batch, hiddenSize)`; give it with `hidden`. */
  readonly state?: Tensor;
  /**
   * Steps of each sequence (integers in `[1, seqLen]`), as PyTorch's packed sequences: a sequence
   * stops at its length, its outputs past it are zero and its final `hidden`/`state` are those
   * at its length. Omitted: every sequence runs all `seqLen` steps.
   */
  readonly lengths?: readonly number[] | Int32Array;
  /**
   * `AttentionArrayLSTM` only: also return `attention`, the lane weights of every step, written
   * by the backend's kernels (nothing is computed or copied when `false`, the default).
   */
  readonly returnAttention?: boolean;
  /**
   * `StochasticArrayLSTM` only: also return `lanes`, the lane read out at every step and unit,
   * written by the backend's kernels (nothing is computed or copied when `false`, the default).
   */
  readonly returnLanes?: boolean;
}

/** Lane indices: integers in `[0, k)`, or -1 for a step past a sequence's length. */
export interface LaneIndices {
  /** `(batch, seqLen, hiddenSize)`. */
  readonly shape: readonly number[];
  /** The indices, row-major. */
  readonly data: Int32Array;
}

/**
 * What `forward` returns. In training mode (or when `x` or the initial state carries history) the
 * three tensors carry history: a loss computed from any of them back-propagates through all steps.
 */
export interface ForwardResult extends RecurrentState {
  /** The hidden state after every step, shape `(batch, seqLen, hiddenSize)`. */
  readonly output: TrackedTensor;
  /** Final hidden state, shape `(1, batch, hiddenSize)`. */
  readonly hidden: TrackedTensor;
  /** Final cell states, shape `(k, batch, hiddenSize)`. */
  readonly state: TrackedTensor;
  /**
   * With `returnAttention`: the attention weights `s` of every step, unit and lane, shape
   * `(batch, seqLen, hiddenSize, k)` (max-pooled when the model pools), summing to 1 over the
   * lanes without pooling; zero past a sequence's `lengths`. A plain tensor: it carries no
   * gradient, in training mode too.
   */
  readonly attention?: Tensor;
  /**
   * With `returnLanes`: the lane (`0..k-1`) whose output was read out at every step and unit,
   * shape `(batch, seqLen, hiddenSize)` (the largest output gate, the first lane winning a tie);
   * -1 past a sequence's `lengths`. Carries no gradient.
   */
  readonly lanes?: LaneIndices;
}

/**
 * Per-lane readout of the hidden state: `(k, B, H)` output gates and cells to `(1, B, H)`. In
 * training both carry history; build the result from them with the differentiable ops.
 */
export type Readout = (outputs: Tensor, states: Tensor) => Tensor;

// Writes a model's private variant; set once by the class's static block, used by `setVariant`.
let assignVariant: (model: LSTM, variant: CellVariant) => void;
// Runs a model's LRP forward on its runner; set by the class's static block, used by
// `runForRelevance`.
let relevanceRun: (model: LSTM, x: Tensor) => Promise<RelevanceStep | null>;

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
  // The cell as the backends see it; the built-in subclasses set theirs with `setVariant`.
  #variant: CellVariant = { kind: "lstm", k: 1, maxPooling: false };
  /** The gates' activation. */
  readonly recurrentActivation: RecurrentActivation;
  readonly #runner = new RunnerCache(
    () => this.#cellSpec(),
    (spec) => selectBackend(this.backend).then((backend) => backend.compile(spec)),
  );
  /** The parameters bound to the weights of the runner that holds them in place, if any. */
  #resident: {
    readonly runner: SequenceRunner;
    readonly group: ResidentGroup | DeviceGroup;
  } | null = null;

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
    assignVariant = (model, variant) => {
      model.#variant = variant;
    };
    relevanceRun = async (model, x) => {
      const runner = await model.#currentRunner().runner();
      if (runner.runRelevance === undefined) return null;
      const [batch, seqLen] = x.shape;
      const { hidden, state } = model.initHidden(x);
      return await runner.runRelevance({
        batch,
        seqLen,
        x: x.data,
        hidden: hidden.data,
        state: state.data,
      });
    };
  }

  /** Memory cells per hidden unit: 1 for `LSTM`. */
  get k(): number {
    return this.#variant.k;
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

  /** The parameters in the layout the backends take. */
  #cellSpec(): CellSpec {
    return {
      variant: { ...this.#variant, recurrentActivation: this.recurrentActivation },
      inputSize: this.inputSize,
      hiddenSize: this.hiddenSize,
      params: cellParameters(this.#values()),
    };
  }

  /**
   * The cell spec, read on first call only: a backend with its own backward never needs the
   * values (on webgpu they may be on the device, newer than here).
   */
  #cellSpecOnce(): () => CellSpec {
    let spec: CellSpec | null = null;
    return () => spec ??= this.#cellSpec();
  }

  #values(): Record<string, Tensor> {
    return Object.fromEntries(this.parameters().map(({ name, value }) => [name, value]));
  }

  // Parameters are replaced, never written into: a new version (optimizer step, loadStateDict)
  // compiles the weights again; calls in flight finish on the runner they started with.
  #currentRunner(): RunnerCache {
    return this.#runner.at(this.parametersVersion());
  }

  #invalidate(): void {
    this.#runner.invalidate();
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
    return (await this.#currentRunner().runner()).backend;
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
    const outputs = this.#requestedExtras(init);
    const given = init?.hidden !== undefined || init?.state !== undefined;
    const start = given ? init as RecurrentState : this.initHidden(x);
    this.#checkState(given ? "init" : "initHidden(x)", start, batch);
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
    const settling = this.#settlingDevice();
    if (settling !== null) {
      // Read before waiting, as every forward reads its inputs before it returns.
      const own = (value: Tensor): Tensor => {
        const data = { shape: [...value.shape], data: value.data.slice() };
        return hasHistory(value) ? record("copy", [data], [value], (grads) => grads)[0] : data;
      };
      const copies = {
        ...init,
        ...(given ? { hidden: own(start.hidden), state: own(start.state) } : {}),
        ...(lengths === null ? {} : { lengths: [...lengths] }),
      };
      const copy = own(x);
      await settling;
      return await this.forward(copy, copies);
    }
    if (lengths !== null && lengths.some((length) => length < seqLen)) {
      // The plan copies x and the state now; one runner (one set of weights) runs every chunk.
      const packed = new PackedRun(x, start, lengths);
      if (byHooks) {
        for (let chunk = packed.next(); chunk !== null; chunk = packed.next()) {
          packed.accept(this.#forwardByHooks(chunk.x, chunk.start));
        }
        return packed.result();
      }
      const spec = this.#cellSpecOnce();
      return await this.#currentRunner().pinned(async (runner) => {
        for (let chunk = packed.next(); chunk !== null; chunk = packed.next()) {
          packed.accept(
            await this.#runSequence(runner, spec, chunk.x, chunk.start, recording, outputs),
          );
        }
        return packed.result();
      });
    }
    if (byHooks) return this.#forwardByHooks(x, start);
    const runners = this.#currentRunner();
    if (recording) {
      // The backward reads the input again later: it keeps its own copy.
      const copy = (value: Tensor): Tensor => ({ shape: value.shape, data: value.data.slice() });
      const own = { hidden: copy(start.hidden), state: copy(start.state) };
      const spec = this.#cellSpecOnce();
      return await this.#runSequence(await runners.runner(), spec, copy(x), own, true, outputs, {
        x,
        hidden: start.hidden,
        state: start.state,
      });
    }
    const result = await runners.run({
      batch,
      seqLen,
      x: x.data,
      hidden: start.hidden.data,
      state: start.state.data,
      ...(outputs === undefined ? {} : { outputs }),
    });
    return this.#results(batch, seqLen, result);
  }

  /**
   * The opt-in outputs `init` asks for (`undefined` for none), checked against this model: each
   * flag a boolean, `returnAttention` only for the attention variant and `returnLanes` only for
   * the stochastic one.
   */
  #requestedExtras(init: ForwardOptions | undefined | null): SequenceExtras | undefined {
    const asked = { attention: false, lanes: false };
    const flags = [
      ["returnAttention", "attention", "AttentionArrayLSTM"],
      ["returnLanes", "lanes", "StochasticArrayLSTM"],
    ] as const;
    for (const [option, output, owner] of flags) {
      const value = init?.[option];
      if (value === undefined) continue;
      if (typeof value !== "boolean") {
        throw new TypeError(`init.${option} must be a boolean, got ${describe(value)}`);
      }
      const kind = output === "attention" ? "attention" : "stochastic";
      if (value && this.#variant.kind !== kind) {
        throw new TypeError(
          `init.${option} is only for ${owner} (no other class has ${output} to return), got ` +
            `a ${this.constructor.name}: leave the option out`,
        );
      }
      asked[output] = value;
    }
    return asked.attention || asked.lanes ? asked : undefined;
  }

  /**
   * Runs `x` from `start` on `runner`, recorded when `recording` (with `sources` as the
   * history's parents: the caller's tensors when `x` and `start` are copies of them), with the
   * opt-in `outputs` when given.
   */
  async #runSequence(
    runner: SequenceRunner,
    spec: () => CellSpec,
    x: Tensor,
    start: RecurrentState,
    recording: boolean,
    outputs: SequenceExtras | undefined,
    sources: { x: Tensor; hidden: Tensor; state: Tensor } = { x, ...start },
  ): Promise<ForwardResult> {
    const [batch, seqLen] = x.shape;
    const input = { batch, seqLen, x: x.data, hidden: start.hidden.data, state: start.state.data };
    const asked = outputs === undefined ? input : { ...input, outputs };
    if (!recording) return this.#results(batch, seqLen, await runner.run(asked));
    const [output, hidden, state] = await recordSequence(runner, spec, input, {
      parameters: this.training ? this.parameters() : [],
      ...sources,
    });
    if (this.training) this.#bindResident(runner);
    // A training step records no opt-in outputs: one more inference run gives them.
    const extras = outputs === undefined
      ? {}
      : this.#extras(batch, seqLen, await runner.run(asked));
    return { output, hidden, state, ...extras };
  }

  /**
   * The read-back of the weights a webgpu runner holds when that runner is about to be replaced
   * (a parameter was assigned since): the new one is compiled from the others' values, which are
   * newer on the device. `null` when there is nothing to wait for.
   */
  #settlingDevice(): Promise<void> | null {
    const group = this.#resident?.group;
    if (!(group instanceof DeviceGroup) || group.usable) return null;
    this.#resident = null;
    return group.sync();
  }

  /**
   * Binds the parameters to `runner`'s weights when it updates them in place, so that an
   * optimizer steps them there: the runner stays this layer's, and `p.value` reads them back.
   */
  #bindResident(runner: SequenceRunner): void {
    const { resident, device } = runner;
    if ((resident ?? device) === undefined || this.#resident?.runner === runner) return;
    if (!this.#runner.current(runner, this.parametersVersion())) return;
    const byName = new Map(this.parameters().map((parameter) => [parameter.name, parameter]));
    const sizes = {
      variant: this.#variant,
      inputSize: this.inputSize,
      hiddenSize: this.hiddenSize,
    };
    const parameters = parameterSizes(sizes).map(([name]) => byName.get(name)!);
    const current = () => this.#runner.current(runner, this.parametersVersion());
    const stepped = () => this.#runner.adopt(this.parametersVersion());
    const group = resident === undefined
      ? new DeviceGroup(parameters, device!, current, stepped)
      : new ResidentGroup(parameters, resident, current, stepped);
    this.#resident = { runner, group };
  }

  #results(batch: number, seqLen: number, result: SequenceOutput): ForwardResult {
    const H = this.hiddenSize;
    return {
      output: untracked({ shape: [batch, seqLen, H], data: result.output }),
      hidden: untracked({ shape: [1, batch, H], data: result.hidden }),
      state: untracked({ shape: [this.k, batch, H], data: result.state }),
      ...this.#extras(batch, seqLen, result),
    };
  }

  /** The opt-in outputs of a backend result, as tensors. */
  #extras(batch: number, seqLen: number, result: SequenceOutput): ChunkExtras {
    const H = this.hiddenSize;
    return {
      ...(result.attention === undefined
        ? {}
        : { attention: { shape: [batch, seqLen, H, this.k], data: result.attention } }),
      ...(result.lanes === undefined
        ? {}
        : { lanes: { shape: [batch, seqLen, H], data: result.lanes } }),
    };
  }

  /**
   * Runs `x` step by step through `forwardCell`. Every step is recorded when something records
   * (the hooks' ops with the parameters in training mode, or inputs with history): the step
   * inputs are split from `x` and the outputs joined with the tape's ops, so the gradient reaches
   * `x`, the initial state and the parameters through every step.
   */
  #forwardByHooks(x: Tensor, start: RecurrentState): PackedResult {
    const [batch, seqLen, I] = x.shape;
    const H = this.hiddenSize;
    const steps = split(x, new Array(seqLen).fill(1), 1);
    const outputs: Tensor[] = [];
    let current = start;
    for (let t = 0; t < seqLen; t++) {
      const step = reshape(steps[t], [batch, I]);
      const next = this.forwardCell(step, current.hidden, current.state);
      const source = `${this.constructor.name}.forwardCell at step ${t}`;
      this.#checkState(source, next, batch);
      const inputs = [step, current.hidden, current.state];
      checkHookHistory(`${source} (its hidden)`, next.hidden, inputs, this.training);
      checkHookHistory(`${source} (its state)`, next.state, inputs, this.training);
      outputs.push(reshape(next.hidden, [batch, 1, H]));
      current = next;
    }
    return {
      output: concat(outputs, 1),
      hidden: withHistory(current.hidden),
      state: withHistory(current.state),
    };
  }

  #checkState(source: string, value: RecurrentState, batch: number): void {
    if (typeof value !== "object" || value === null) {
      throw new TypeError(`${source} must be { hidden, state }, got ${describe(value)}`);
    }
    checkTensor(`${source}.hidden`, value.hidden);
    checkShape(
      `${source}.hidden`,
      value.hidden.shape,
      [1, batch, this.hiddenSize],
      "(1, batch, hiddenSize)",
    );
    checkTensor(`${source}.state`, value.state);
    checkShape(
      `${source}.state`,
      value.state.shape,
      [this.k, batch, this.hiddenSize],
      "(k, batch, hiddenSize)",
    );
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
    const { kind, k } = this.#variant;
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
   * Frees the backend's memory (GPU buffers, wasm instances). The model stays usable: the next
   * `forward` compiles the cell again.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, zeros } from "../../mod.ts";
   * const lstm = new LSTM(3, 2, { backend: "js", seed: 1 });
   * const before = await lstm.forward(zeros([1, 2, 3]));
   * lstm.dispose();
   * assert.deepEqual(await lstm.forward(zeros([1, 2, 3])), before);
   * ```
   */
  dispose(): void {
    this.#invalidate();
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
  assignVariant(model, variant);
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
  return relevanceRun(model, x);
}

/**
 * The backends' view of parameters named as in a PyTorch `state_dict` (`i2h.weight`, `i2h.bias`,
 * `h2h.weight`, `h2h.bias`, and `i2a.*` when present). Other entries of `record` are ignored; the
 * arrays are shared, not copied.
 *
 * @example
 * ```ts
 * import { cellParameters } from "./lstm.ts";
 * import { LSTM } from "../../mod.ts";
 * const params = cellParameters(new LSTM(3, 4, { seed: 1 }).stateDict());
 * ```
 */
export function cellParameters(record: Record<string, Tensor>): CellParameters {
  return {
    i2hWeight: record["i2h.weight"].data,
    i2hBias: record["i2h.bias"].data,
    h2hWeight: record["h2h.weight"].data,
    h2hBias: record["h2h.bias"].data,
    i2aWeight: record["i2a.weight"]?.data ?? null,
    i2aBias: record["i2a.bias"]?.data ?? null,
  };
}

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

/** A tensor as a `TrackedTensor`: itself when it carries history, else a plain wrapper. */
function withHistory(value: Tensor): TrackedTensor {
  return hasHistory(value) ? value as TrackedTensor : untracked(value);
}

/**
 * Refuses a hook's `result` computed on raw arrays while recording: when `training` or one of
 * the hook's `inputs` carries history, the result must carry history too (or be one of the inputs,
 * passed on as it is), else the gradient would silently stop at it.
 *
 * @param source The hook, as the error names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHookHistory } from "./lstm.ts";
 * import { requiresGrad, tensor } from "../../mod.ts";
 * const input = requiresGrad(tensor([1], [1]));
 * checkHookHistory("hook", input, [input], true); // passed on as it is
 * assert.throws(() => checkHookHistory("hook", tensor([2], [1]), [input], false), /hook returned/);
 * ```
 */
export function checkHookHistory(
  source: string,
  result: Tensor,
  inputs: readonly Tensor[],
  training: boolean,
): void {
  if (hasHistory(result) || inputs.includes(result)) return;
  if (!training && !inputs.some(hasHistory)) return;
  throw new Error(
    `${source} returned a tensor without history while recording (the layer is training, or ` +
      "its inputs carry history): it was computed on raw arrays, which backward() cannot " +
      "follow. Build it from the model's differentiable ops (super's hooks, this.stepCells, and " +
      "add, mul, tanh, sum, reshape, split, concat, softmax from the package), or call eval() " +
      "and pass inputs without history",
  );
}
