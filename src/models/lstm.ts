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
  ResolvedBackendName,
} from "../contract.ts";
import { linear, sumLanes, updateLanes } from "../reference/cell.ts";
import { checkBackendName, selectBackend } from "../backends/select.ts";
import { checkShape, checkSize, describe } from "../errors.ts";
import { Random } from "../random.ts";
import { checkTensor, sizeOf, type Tensor, zeros } from "../tensor.ts";
import { registerBuiltin, usesBuiltinHooks } from "./builtin.ts";
import { RunnerCache } from "./runner_cache.ts";

/** Options every model takes. */
export interface LSTMOptions {
  /** Where to run: `"auto"` (default) picks WebGPU on a hardware GPU, else WASM. */
  backend?: BackendName;
  /** Seed of the weight initialisation; the same seed gives the same weights everywhere. */
  seed?: number;
}

/** A recurrent state: the hidden state `(1, B, H)` and the cell states `(k, B, H)`. */
export interface RecurrentState {
  /** Hidden state, shape `(1, batch, hiddenSize)`. */
  readonly hidden: Tensor;
  /** Cell states, shape `(k, batch, hiddenSize)` (`k = 1` for `LSTM`). */
  readonly state: Tensor;
}

/** What `forward` returns. */
export interface ForwardResult extends RecurrentState {
  /** The hidden state after every step, shape `(batch, seqLen, hiddenSize)`. */
  readonly output: Tensor;
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
 */
export class LSTM {
  /** `I`: features per input step. */
  readonly inputSize: number;
  /** `H`: hidden units. */
  readonly hiddenSize: number;
  /** The backend asked for; see {@linkcode LSTM.resolveBackend} for the one in use. */
  readonly backend: BackendName;
  /** The seed the weights were drawn from. */
  readonly seed: number;
  #parameters: Map<string, Tensor> | null = null;
  readonly #runner = new RunnerCache(
    () => this.cellSpec(),
    (spec) => selectBackend(this.backend).then((backend) => backend.compile(spec)),
  );

  /**
   * Makes an LSTM with weights drawn like PyTorch's `nn.Linear` from `options.seed`.
   *
   * @param inputSize `I`, features per input step.
   * @param hiddenSize `H`, hidden units.
   * @param options Backend and seed.
   */
  constructor(inputSize: number, hiddenSize: number, options: LSTMOptions = {}) {
    this.inputSize = checkSize("inputSize", inputSize);
    this.hiddenSize = checkSize("hiddenSize", hiddenSize);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    }
    this.backend = checkBackendName(
      "options.backend",
      options.backend === undefined ? "auto" : options.backend,
    );
    const seed = options.seed === undefined
      ? crypto.getRandomValues(new Uint32Array(1))[0]
      : options.seed;
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`options.seed must be a safe integer, got ${describe(seed)}`);
    }
    this.seed = seed;
  }

  /** Memory cells per hidden unit: 1 for `LSTM`. */
  get k(): number {
    return this.variant.k;
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

  // Drawn on first use: subclasses set their sizes after this constructor has run.
  #parameterMap(): Map<string, Tensor> {
    if (this.#parameters === null) {
      const random = new Random(this.seed);
      this.#parameters = new Map();
      for (const [name, { shape, fanIn }] of Object.entries(this.parameterShapes())) {
        // PyTorch nn.Linear: weight and bias ~ U(−1/√fan_in, 1/√fan_in).
        const bound = 1 / Math.sqrt(fanIn);
        const data = allocateParameter(name, shape, this.parameterShapes());
        for (let i = 0; i < data.length; i++) data[i] = (2 * random.uniform() - 1) * bound;
        this.#parameters.set(name, { shape, data });
      }
    }
    return this.#parameters;
  }

  /** The weight or bias called `name` (read-only by convention). */
  protected parameter(name: string): Tensor {
    return this.#parameterMap().get(name)!;
  }

  /**
   * The parameters by their PyTorch names, as copies: `i2h.weight` `(4kH, I)`, `i2h.bias`,
   * `h2h.weight` `(4kH, H)`, `h2h.bias` (and `i2a.*` for attention).
   *
   * @example Save the weights as safetensors
   * ```ts
   * import { LSTM, saveSafetensors } from "../../mod.ts";
   * const bytes = saveSafetensors(new LSTM(3, 4, { seed: 1 }).stateDict());
   * ```
   */
  stateDict(): Record<string, Tensor> {
    const record: Record<string, Tensor> = {};
    for (const [name, { shape, data }] of this.#parameterMap()) {
      record[name] = { shape: [...shape], data: data.slice() };
    }
    return record;
  }

  /**
   * Replaces every parameter with a copy of the tensor of the same name, for instance a PyTorch
   * `state_dict` saved as safetensors. The record must hold exactly this model's parameters.
   *
   * @throws {RangeError} On missing, extra or misshaped tensors.
   *
   * @example Load weights saved from PyTorch
   * ```ts ignore
   * import { ArrayLSTM, loadSafetensors } from "../../mod.ts";
   * const model = new ArrayLSTM(10, 128, 4);
   * model.loadStateDict(loadSafetensors(await Deno.readFile("model.safetensors")));
   * ```
   */
  loadStateDict(record: Record<string, Tensor>): void {
    if (typeof record !== "object" || record === null) {
      throw new TypeError(`record must be an object of tensors, got ${describe(record)}`);
    }
    const shapes = this.parameterShapes();
    const missing = Object.keys(shapes).filter((name) => !Object.hasOwn(record, name));
    const extra = Object.keys(record).filter((name) => !Object.hasOwn(shapes, name));
    if (missing.length > 0 || extra.length > 0) {
      throw new RangeError(
        `record does not match this ${this.constructor.name}'s parameters: ` +
          [
            missing.length > 0 ? `missing ${missing.map(describe).join(", ")}` : "",
            extra.length > 0 ? `unexpected ${extra.map(describe).join(", ")}` : "",
          ].filter(Boolean).join("; ") + `; expected exactly ${Object.keys(shapes).join(", ")}`,
      );
    }
    const loaded = new Map<string, Tensor>();
    for (const [name, { shape }] of Object.entries(shapes)) {
      const value = record[name];
      checkTensor(`record["${name}"]`, value);
      checkShape(`record["${name}"]`, value.shape, shape, name);
      loaded.set(name, { shape, data: value.data.slice() });
    }
    this.#parameters = loaded;
    this.#invalidate();
  }

  /** The parameters in the layout the backends take. */
  protected cellSpec(): CellSpec {
    return {
      variant: this.variant,
      inputSize: this.inputSize,
      hiddenSize: this.hiddenSize,
      params: cellParameters(Object.fromEntries(this.#parameterMap())),
    };
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
    return (await this.#runner.runner()).backend;
  }

  /**
   * Runs a batch of sequences. Built-in models run all steps in the backend's fused kernels; a
   * subclass that overrides a hook runs step by step through its hooks in TypeScript.
   *
   * @param x Input, shape `(batch, seqLen, inputSize)`.
   * @param init Initial state; zeros (from `initHidden`) when omitted. Never modified.
   * @returns Outputs of every step, and the final hidden and cell states.
   * @throws {RangeError} If a shape does not fit the model.
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
    if (!usesBuiltinHooks(this)) return this.#forwardByHooks(x, start);
    const result = await this.#runner.run({
      batch,
      seqLen,
      x: x.data,
      hidden: start.hidden.data,
      state: start.state.data,
    });
    return {
      output: { shape: [batch, seqLen, H], data: result.output },
      hidden: { shape: [1, batch, H], data: result.hidden },
      state: { shape: [k, batch, H], data: result.state },
    };
  }

  #forwardByHooks(x: Tensor, start: RecurrentState): ForwardResult {
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
    updateLanes(kind, z, batch, k, H, laneWeights, state.data, next, outputGates);
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

/** A zero parameter, or a RangeError that says how large the weights are when they cannot be. */
function allocateParameter(
  name: string,
  shape: number[],
  all: Record<string, { shape: number[] }>,
): Float32Array {
  try {
    return new Float32Array(sizeOf(shape));
  } catch (error) {
    const floats = Object.values(all).reduce((sum, entry) => sum + sizeOf(entry.shape), 0);
    throw new RangeError(
      `the weights need ${floats} floats (${(floats * 4 / 2 ** 30).toFixed(1)} GiB; ${name} ` +
        `alone is ${describe(shape)}), which could not be allocated: use a smaller hiddenSize ` +
        "(the weights grow with 4·k·hiddenSize·(inputSize + hiddenSize); the wasm backend fits " +
        "up to 2 GiB of them)",
      { cause: error },
    );
  }
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
