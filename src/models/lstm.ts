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
  ResolvedBackendName,
} from "../contract.ts";
import { RECURRENT_ACTIVATIONS } from "../contract.ts";
import { linear, sumLanes, updateLanes } from "../reference/cell.ts";
import { checkBackendName, selectBackend } from "../backends/select.ts";
import { checkShape, checkSize, describe } from "../errors.ts";
import { linearInit, resolveSeed } from "../nn/init.ts";
import { Module } from "../nn/module.ts";
import { hasHistory, type TrackedTensor, untracked } from "../nn/tape.ts";
import { Random } from "../random.ts";
import { checkTensor, sizeOf, type Tensor, zeros } from "../tensor.ts";
import { registerBuiltin, usesBuiltinHooks } from "./builtin.ts";
import { recordSequence } from "./record_sequence.ts";
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
   * `"hard_sigmoid_keras3"` (`clip(x/6 + 0.5, 0, 1)`). The wasm and WebGPU kernels implement
   * only the sigmoid: a model with a hard sigmoid runs on the js backend whatever `backend` names
   * (`resolveBackend()` says `"js"`).
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
}

/** Per-lane readout of the hidden state: `(k, B, H)` output gates and cells to `(1, B, H)`. */
export type Readout = (outputs: Tensor, states: Tensor) => Tensor;

/**
 * A long short-term memory layer, batch first, as in the ArrayLSTM package: gates in the order
 * forget, input, output, candidate; `c = f·c + i·g`; `h = o·tanh(c)`.
 *
 * @example Run a batch of sequences and continue from the returned state
 * ```ts
 * import { LSTM, randn } from "../../mod.ts";
 * const lstm = new LSTM(3, 8, { backend: "js", seed: 1 });
 * const x = randn([2, 5, 3], { seed: 2 });
 * const { output, hidden, state } = await lstm.forward(x); // [2, 5, 8], [1, 2, 8], [1, 2, 8]
 * const next = await lstm.forward(x, { hidden, state });
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
  readonly #runner = new RunnerCache(
    () => this.cellSpec(),
    // The wasm and WebGPU kernels have only the sigmoid gate: other activations run on js.
    (spec) =>
      selectBackend(this.recurrentActivation === "sigmoid" ? this.backend : "js")
        .then((backend) => backend.compile(spec)),
  );
  #runnerVersion = -1;

  /**
   * Makes an LSTM with weights drawn like PyTorch's `nn.Linear` from `options.seed`.
   *
   * @param inputSize `I`, features per input step.
   * @param hiddenSize `H`, hidden units.
   * @param options Backend and seed.
   */
  constructor(inputSize: number, hiddenSize: number, options: LSTMOptions = {}) {
    super();
    this.inputSize = checkSize("inputSize", inputSize);
    this.hiddenSize = checkSize("hiddenSize", hiddenSize);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    }
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

  /** Memory cells per hidden unit: 1 for `LSTM`. */
  get k(): number {
    return this.variant.k;
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

  /** The cell this model runs, as the backends see it. */
  protected get variant(): CellVariant {
    return { kind: "lstm", k: 1, maxPooling: false };
  }

  /** Parameter names (PyTorch's) with their shapes and `nn.Linear` fan-in, in drawing order. */
  protected parameterShapes(): Record<string, { shape: number[]; fanIn: number }> {
    const I = this.inputSize, H = this.hiddenSize, rows = 4 * this.k * H;
    return {
      "i2h.weight": { shape: [rows, I], fanIn: I },
      "i2h.bias": { shape: [rows], fanIn: I },
      "h2h.weight": { shape: [rows, H], fanIn: H },
      "h2h.bias": { shape: [rows], fanIn: H },
    };
  }

  /** The parameters drawn like `nn.Linear` from the seed, in the order of `parameterShapes`. */
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

  /** The parameters live where this model runs. */
  protected override parameterBackend(): BackendName {
    return this.backend;
  }

  /** The parameters in the layout the backends take. */
  protected cellSpec(): CellSpec {
    return {
      variant: { ...this.variant, recurrentActivation: this.recurrentActivation },
      inputSize: this.inputSize,
      hiddenSize: this.hiddenSize,
      params: cellParameters(this.#values()),
    };
  }

  #values(): Record<string, Tensor> {
    return Object.fromEntries(this.parameters().map(({ name, value }) => [name, value]));
  }

  // Parameters are replaced, never written into, so the spec (sharing their arrays) stays what
  // the runner was packed from; a new version (optimizer step, loadStateDict) re-packs. Calls in
  // flight finish on the runner they started with.
  #currentRunner(): RunnerCache {
    const version = this.parametersVersion();
    if (this.#runnerVersion !== version) {
      this.#runner.invalidate();
      this.#runnerVersion = version;
    }
    return this.#runner;
  }

  #invalidate(): void {
    this.#runner.invalidate();
  }

  /**
   * The backend this model runs on (resolving `"auto"`), compiling the cell if needed.
   *
   * @example
   * ```ts
   * import { LSTM } from "../../mod.ts";
   * const name = await new LSTM(2, 3, { backend: "js" }).resolveBackend(); // "js"
   * ```
   */
  async resolveBackend(): Promise<ResolvedBackendName> {
    return (await this.#currentRunner().runner()).backend;
  }

  /**
   * Runs a batch of sequences. Built-in models run all steps in the backend's fused kernels; a
   * subclass that overrides a hook runs step by step through its hooks in TypeScript.
   *
   * In training mode the run is recorded: a loss computed from the results back-propagates into
   * the parameters' `grad`, and into `x`, `init.hidden` and `init.state` when they carry history
   * (from `requiresGrad` or an earlier recording layer). In evaluation mode only an
   * input with history is recorded, and the parameters get no gradient.
   *
   * @param x Input, shape `(batch, seqLen, inputSize)`.
   * @param init Initial state; zeros (from `initHidden`) when omitted. Never modified.
   * @returns Outputs of every step, and the final hidden and cell states.
   * @throws {RangeError} If a shape does not fit the model.
   * @throws {Error} When recording a subclass that overrides a hook (not supported yet).
   */
  async forward(x: Tensor, init?: RecurrentState): Promise<ForwardResult> {
    checkTensor("x", x);
    checkShape("x", x.shape, [-1, -1, this.inputSize], "(batch, seqLen, inputSize)");
    const [batch, seqLen] = x.shape;
    if (batch === 0 || seqLen === 0) {
      throw new RangeError(
        `x must have at least one sequence and one step, got ${describe(x.shape)}`,
      );
    }
    const start = init ?? this.initHidden(x);
    this.#checkState(init === undefined ? "initHidden(x)" : "init", start, batch);
    const H = this.hiddenSize, k = this.k;
    const recording = this.training || [x, start.hidden, start.state].some(hasHistory);
    if (!usesBuiltinHooks(this)) {
      if (recording) {
        throw new Error(
          `training ${this.constructor.name} is not supported yet: it overrides a hook ` +
            "(forwardCell, updateHidden or initHidden), and only the built-in cells have a " +
            "backward. Call eval() and pass inputs without history, or train a built-in class",
        );
      }
      const { output, hidden, state } = this.#forwardByHooks(x, start);
      return { output: untracked(output), hidden: untracked(hidden), state: untracked(state) };
    }
    const runners = this.#currentRunner();
    if (recording) {
      // The backward reads the input again later: it keeps its own copy.
      const input = {
        batch,
        seqLen,
        x: x.data.slice(),
        hidden: start.hidden.data.slice(),
        state: start.state.data.slice(),
      };
      const spec = this.cellSpec();
      const [output, hidden, state] = await recordSequence(await runners.runner(), spec, input, {
        parameters: this.training ? this.parameters() : [],
        x,
        hidden: start.hidden,
        state: start.state,
      });
      return { output, hidden, state };
    }
    const result = await runners.run({
      batch,
      seqLen,
      x: x.data,
      hidden: start.hidden.data,
      state: start.state.data,
    });
    return {
      output: untracked({ shape: [batch, seqLen, H], data: result.output }),
      hidden: untracked({ shape: [1, batch, H], data: result.hidden }),
      state: untracked({ shape: [k, batch, H], data: result.state }),
    };
  }

  #forwardByHooks(x: Tensor, start: RecurrentState): RecurrentState & { output: Tensor } {
    const [batch, seqLen, I] = x.shape;
    const H = this.hiddenSize;
    const output = new Float32Array(batch * seqLen * H);
    let current = start;
    for (let t = 0; t < seqLen; t++) {
      const step = new Float32Array(batch * I);
      for (let b = 0; b < batch; b++) {
        step.set(x.data.subarray((b * seqLen + t) * I, (b * seqLen + t + 1) * I), b * I);
      }
      current = this.forwardCell({ shape: [batch, I], data: step }, current.hidden, current.state);
      this.#checkState(`forwardCell at step ${t}`, current, batch);
      for (let b = 0; b < batch; b++) {
        output.set(current.hidden.data.subarray(b * H, (b + 1) * H), (b * seqLen + t) * H);
      }
    }
    return { output: { shape: [batch, seqLen, H], data: output }, ...current };
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
   */
  forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    return this.stepCells(x, hidden, state, null, (outputs, states) => {
      const [, batch, H] = states.shape;
      const next = new Float32Array(batch * H);
      sumLanes(outputs.data, states.data, 1, batch, H, next);
      return { shape: [1, batch, H], data: next };
    });
  }

  /**
   * The shared body of `forwardCell`: pre-activations, every lane's cell update (scaled by the
   * attention `laneWeights` `(B, k, H)` when given), then `readout` for the hidden state.
   */
  protected stepCells(
    x: Tensor,
    hidden: Tensor,
    state: Tensor,
    laneWeights: Float32Array | null,
    readout: Readout,
  ): RecurrentState {
    const { kind, k } = this.variant;
    const [batch] = x.shape;
    const I = this.inputSize, H = this.hiddenSize, gates = 4 * k * H;
    const z = new Float32Array(batch * gates);
    const recurrent = new Float32Array(batch * gates);
    linear(
      x.data,
      batch,
      I,
      this.parameter("i2h.weight").data,
      gates,
      this.parameter("i2h.bias").data,
      z,
    );
    linear(
      hidden.data,
      batch,
      H,
      this.parameter("h2h.weight").data,
      gates,
      this.parameter("h2h.bias").data,
      recurrent,
    );
    for (let i = 0; i < z.length; i++) z[i] += recurrent[i];
    const next = new Float32Array(k * batch * H);
    const outputGates = new Float32Array(k * batch * H);
    updateLanes(
      kind,
      z,
      batch,
      k,
      H,
      laneWeights,
      state.data,
      next,
      outputGates,
      this.recurrentActivation,
    );
    const states: Tensor = { shape: [k, batch, H], data: next };
    return { hidden: readout({ shape: [k, batch, H], data: outputGates }, states), state: states };
  }

  /**
   * The initial state when `forward` gets none: zeros (the reference's `initHidden`).
   *
   * @param x The input, shape `(batch, seqLen, inputSize)`.
   */
  initHidden(x: Tensor): RecurrentState {
    const batch = x.shape[0];
    return {
      hidden: zeros([1, batch, this.hiddenSize]),
      state: zeros([this.k, batch, this.hiddenSize]),
    };
  }

  /** Frees the backend's memory (GPU buffers, wasm instances). The model stays usable. */
  dispose(): void {
    this.#invalidate();
  }

  /** Same as {@linkcode LSTM.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
registerBuiltin(LSTM);

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
