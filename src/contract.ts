/**
 * The contract between models and backends: what every backend accepts and returns, and the one
 * place where it is checked. Models describe *what* to compute (a cell variant, its parameters, an
 * input sequence and an initial state); a backend decides *where* it runs. Backends never see
 * model classes, and models never touch devices.
 *
 * All arrays are row-major `Float32Array`s in the reference's layouts. A backend must not mutate
 * any array it is given and must return fresh arrays.
 *
 * Every backend is made with {@linkcode defineBackend}, which checks the spec on `compile` and the
 * input on every `run` ({@linkcode checkSpec}, {@linkcode checkInput}) before the backend sees
 * them, so no backend re-implements these checks. The rules:
 *
 * - Sizes (`inputSize`, `hiddenSize`, `k`) are positive integers; an `"lstm"` cell has `k = 1`;
 *   `i2a` parameters are present for attention cells and `null` for the others.
 * - torch's GRU and RNN (`"gru"`, `"rnn_tanh"`, `"rnn_relu"`) have `k = 1`, 3 or 1 gate blocks in
 *   `i2h`/`h2h` (torch's `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`), no cell states (`state`
 *   is empty) and the sigmoid gates.
 * - `batch` and `seqLen` are non-negative integers. An empty call (`batch = 0` or `seqLen = 0`) is
 *   valid on every backend and never reaches one: its `output` is empty and its `hidden` and
 *   `state` are copies of the initial ones (no step ran).
 * - `input.outputs` asks for per-step results the kernels write only then: `attention` only of an
 *   `"attention"` cell, `lanes` only of a `"stochastic"` one; a training step takes neither.
 * - NaN and ±Infinity in the input, the initial state or the weights are allowed and never
 *   clamped: they propagate through the float arithmetic as IEEE 754 says, so a NaN in one
 *   sequence makes that sequence's outputs NaN from that step on, on every backend, and leaves the
 *   other sequences of the batch alone.
 *
 * @module
 */

import { checkSize, describe } from "./errors.ts";
import { Reclaimer } from "./reclaim.ts";

/** The backends a model can ask for. `"auto"` picks the fastest one available. */
export type BackendName = "auto" | "webgpu" | "wasm" | "js";

/** A concrete backend, as resolved from a {@linkcode BackendName}. */
export type ResolvedBackendName = Exclude<BackendName, "auto">;

import { type VariantKind, VARIANTS } from "./variants.ts";

export type { VariantKind };

/**
 * Describes the cell of a model: everything a kernel needs to know besides sizes and parameters.
 *
 * @example Describe a `StochasticArrayLSTM` with four lanes
 * ```ts
 * import type { CellVariant } from "./contract.ts";
 * const variant: CellVariant = { kind: "stochastic", k: 4, maxPooling: false };
 * ```
 */
export interface CellVariant {
  /** The cell's equations (see the README's "Exact semantics"). */
  readonly kind: VariantKind;
  /** Memory cells (lanes) per hidden unit; 1 for `"lstm"`. */
  readonly k: number;
  /** Attention only: broadcast the largest lane weight to every lane. */
  readonly maxPooling: boolean;
  /** The forget, input and output gates' activation; `"sigmoid"` when absent. */
  readonly recurrentActivation?: RecurrentActivation;
}

/**
 * The activation of an LSTM's forget, input and output gates: `"sigmoid"` (torch, tf.keras 2),
 * `"hard_sigmoid"` (`clip(0.2x + 0.5, 0, 1)`, Keras 1/2) or `"hard_sigmoid_keras3"`
 * (`clip(x/6 + 0.5, 0, 1)`).
 */
export type RecurrentActivation = "sigmoid" | "hard_sigmoid" | "hard_sigmoid_keras3";

/** Every {@linkcode RecurrentActivation}. */
export const RECURRENT_ACTIVATIONS: readonly RecurrentActivation[] = [
  "sigmoid",
  "hard_sigmoid",
  "hard_sigmoid_keras3",
];

/**
 * The number the kernels take for a gate activation: the hard sigmoid's slope (`0.2` for
 * `"hard_sigmoid"`, `1/6` for `"hard_sigmoid_keras3"`), or 0 for the sigmoid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hardSigmoidSlope } from "./contract.ts";
 * assert.equal(hardSigmoidSlope("sigmoid"), 0);
 * assert.equal(hardSigmoidSlope("hard_sigmoid"), 0.2);
 * ```
 */
export function hardSigmoidSlope(activation: RecurrentActivation = "sigmoid"): number {
  if (activation === "sigmoid") return 0;
  return activation === "hard_sigmoid" ? 0.2 : 1 / 6;
}

/**
 * The parameters of a cell, in the PyTorch reference's layouts.
 *
 * Gate rows: lane `j` owns rows `[4H·j, 4H·(j+1))` of `i2h`/`h2h`; inside a lane the order is
 * forget `[0,H)`, input `[H,2H)`, output `[2H,3H)`, candidate `[3H,4H)`. torch's GRU and RNN put
 * their `weight_ih`/`bias_ih` in `i2h` and `weight_hh`/`bias_hh` in `h2h`, in torch's layouts
 * (`G = 3` blocks `r, z, n` for the GRU, `G = 1` for the RNN, in place of the 4 of the shapes
 * below).
 */
export interface CellParameters {
  /** `i2h.weight`, shape `(4kH, I)`. */
  readonly i2hWeight: Float32Array;
  /** `i2h.bias`, shape `(4kH)`. */
  readonly i2hBias: Float32Array;
  /** `h2h.weight`, shape `(4kH, H)`. */
  readonly h2hWeight: Float32Array;
  /** `h2h.bias`, shape `(4kH)`. */
  readonly h2hBias: Float32Array;
  /** `i2a.weight`, shape `(kH, I)`: attention only, else `null`. */
  readonly i2aWeight: Float32Array | null;
  /** `i2a.bias`, shape `(kH)`: attention only, else `null`. */
  readonly i2aBias: Float32Array | null;
}

/** A cell to compile: its variant, sizes and parameters. */
export interface CellSpec {
  /** The variant's equations. */
  readonly variant: CellVariant;
  /** `I`: features per input step. */
  readonly inputSize: number;
  /** `H`: hidden units. */
  readonly hiddenSize: number;
  /** The weights; the backend copies or packs them and keeps no reference. */
  readonly params: CellParameters;
}

/** One call's input: a batch of sequences and its initial state. */
export interface SequenceInput {
  /** `B`: sequences in the batch. */
  readonly batch: number;
  /** `T`: time steps. */
  readonly seqLen: number;
  /** Input, shape `(B, T, I)`. */
  readonly x: Float32Array;
  /** Initial hidden state, shape `(B, H)`. */
  readonly hidden: Float32Array;
  /** Initial cell states, shape `(k, B, H)`; empty for cells without them (GRU, RNN). */
  readonly state: Float32Array;
  /**
   * Optional per-step outputs the kernels write only when asked for (none by default, at no
   * cost). See {@linkcode SequenceExtras}.
   */
  readonly outputs?: SequenceExtras;
}

/**
 * The opt-in per-step outputs of a run: what the kernels compute anyway and write out only when
 * asked. `attention` is only for an `"attention"` cell, `lanes` only for a `"stochastic"` one.
 *
 * @example Ask for the stochastic variant's chosen lanes
 * ```ts
 * import type { SequenceExtras } from "./contract.ts";
 * const outputs: SequenceExtras = { lanes: true };
 * ```
 */
export interface SequenceExtras {
  /** Return the attention weights of every step and lane, `(B, T, H, k)`. */
  readonly attention?: boolean;
  /** Return the lane read out at every step and unit, `(B, T, H)`. */
  readonly lanes?: boolean;
}

/** One call's result: fresh arrays, never views of the input. */
export interface SequenceOutput {
  /** Hidden state after every step, shape `(B, T, H)`. */
  readonly output: Float32Array;
  /** Final hidden state, shape `(B, H)`. */
  readonly hidden: Float32Array;
  /** Final cell states, shape `(k, B, H)`; empty for cells without them (GRU, RNN). */
  readonly state: Float32Array;
  /**
   * Present when `input.outputs.attention` was set: the attention weights `s` of every step,
   * unit and lane, shape `(B, T, H, k)` (after max pooling when the cell pools).
   */
  readonly attention?: Float32Array;
  /**
   * Present when `input.outputs.lanes` was set: the lane index (`0..k-1`) the stochastic cell
   * read out at every step and unit, shape `(B, T, H)` (the first lane wins a tie).
   */
  readonly lanes?: Int32Array;
}

/** dLoss/d the results of a sequence; omitted final-state gradients count as zero. */
export interface OutputGradients {
  /** dLoss/d`output`, shape `(B, T, H)`. */
  readonly output: Float32Array | Float64Array;
  /** dLoss/d final `hidden`, shape `(B, H)`. */
  readonly hidden?: Float32Array | Float64Array;
  /** dLoss/d final `state`, shape `(k, B, H)`. */
  readonly state?: Float32Array | Float64Array;
  /**
   * Which input gradients the caller reads (default: all). A backend may skip the work or the
   * read-back of one marked `false`; its array is then zeros or empty, and the caller must not
   * read it: a first layer's input and a zero initial state without history need none.
   */
  readonly wanted?: WantedGradients;
}

/** The input gradients a backward's caller reads ({@linkcode OutputGradients.wanted}). */
export interface WantedGradients {
  /** dLoss/d`x`. */
  readonly x: boolean;
  /** dLoss/d initial `hidden`. */
  readonly hidden: boolean;
  /** dLoss/d initial `state`. */
  readonly state: boolean;
}

/** dLoss/d every input of a sequence: parameters, input and initial state. */
export interface InputGradients {
  /** By PyTorch parameter name: `i2h.weight`, `i2h.bias`, `h2h.weight`, `h2h.bias`, `i2a.*`. */
  readonly params: Record<string, Float32Array | Float64Array>;
  /** dLoss/d`x`, shape `(B, T, I)`. */
  readonly x: Float32Array | Float64Array;
  /** dLoss/d initial hidden state, shape `(B, H)`. */
  readonly hidden: Float32Array | Float64Array;
  /** dLoss/d initial cell states, shape `(k, B, H)`. */
  readonly state: Float32Array | Float64Array;
  /**
   * With {@linkcode BackwardOptions.keepParameterGradients}: `Σ g²` of each parameter's gradient
   * on the device (accumulated), in {@linkcode parameterSizes} order; `params` is then empty.
   */
  readonly squaredNorms?: Float32Array;
}

/**
 * How the backward of a runner with {@linkcode DeviceWeights} treats its results; other runners
 * ignore these options.
 */
export interface BackwardOptions {
  /**
   * Leave the parameter gradients in the device's gradient buffer: `"add"` them to what it holds
   * (as `.grad` accumulates), or `"replace"` it. Only their squared norms are read back.
   */
  readonly keepParameterGradients?: "add" | "replace";
}

/**
 * A forward run for training: its results, and the backward through it. The runner keeps the
 * activations it needs (on its device) until `backward` is called, at most once.
 */
export interface TrainingStep extends SequenceOutput {
  /** Back-propagates `grads` through every step of this run. */
  backward(grads: OutputGradients, options?: BackwardOptions): Promise<InputGradients>;
}

/**
 * The stabilisers of LRP's ε-rule (see the README's "Explanations"): `eps`, and `biasFactor` (1
 * redistributes the biases' and stabilisers' share of relevance, 0 absorbs it).
 */
export interface EpsilonRule {
  readonly eps: number;
  readonly biasFactor: number;
}

/** What a relevance pass through one layer returns: fresh arrays. */
export interface LayerRelevance {
  /** Relevance of every input feature, `(B, T, I)`. */
  readonly input: Float32Array;
  /** Relevance left at the initial hidden and cell states, `(B)`. */
  readonly rest: Float32Array;
}

/**
 * A forward run for LRP: its results, and the relevance pass back through the activations it
 * kept (on its device), which may run any number of times.
 */
export interface RelevanceStep extends SequenceOutput {
  /**
   * LRP-ε from `outputRelevance` `(B, T, H)`, the relevance arriving at every step's hidden
   * state, back to the input and the initial state, by the rules of `src/explain/lrp_layer.ts`.
   */
  relevance(outputRelevance: Float32Array, rule: EpsilonRule): Promise<LayerRelevance>;
}

/**
 * One optimizer update with PyTorch's hyper-parameters (`torch.optim.SGD`, `Adam`, `AdamW`), for
 * a backend to apply where the weights live ({@linkcode ResidentWeights.step}).
 */
export type OptimizerUpdate =
  | {
    readonly kind: "sgd";
    readonly lr: number;
    readonly momentum: number;
    readonly dampening: number;
    readonly nesterov: boolean;
    readonly weightDecay: number;
  }
  | {
    readonly kind: "adam";
    readonly lr: number;
    readonly beta1: number;
    readonly beta2: number;
    readonly eps: number;
    readonly weightDecay: number;
    readonly amsgrad: boolean;
    /** `AdamW`'s decoupled weight decay. */
    readonly decoupled: boolean;
  };

/**
 * The optimizer state of resident weights, flat in the order of {@linkcode parameterSizes}: the
 * step count (for SGD, 0 means no momentum buffer yet) and three vectors (SGD's momentum buffer or
 * Adam's `exp_avg`; `exp_avg_sq`; `max_exp_avg_sq`).
 */
export interface ResidentOptimizerState {
  /** Optimizer steps taken. */
  readonly steps: number;
  /** The three state vectors, each as long as the flat parameters. */
  readonly slots: readonly [Float32Array, Float32Array, Float32Array];
}

/**
 * A compiled cell's weights where they live, updated in place by an optimizer: the step needs no
 * re-pack and no new runner. Everything is synchronous (the weights are in this thread's memory).
 */
export interface ResidentWeights {
  /** One update from `grads` (flat, {@linkcode parameterSizes} order); later runs see it. */
  step(update: OptimizerUpdate, grads: Float32Array): void;
  /** A copy of the current flat parameters. */
  parameters(): Float32Array;
  /** A copy of the optimizer state. */
  readState(): ResidentOptimizerState;
  /** Replaces the optimizer state (resuming, or after steps taken elsewhere). */
  writeState(state: ResidentOptimizerState): void;
}

/** What {@linkcode DeviceWeights.read} reads back, flat in {@linkcode parameterSizes} order. */
export interface DeviceSnapshot {
  /** The weights. */
  readonly parameters: Float32Array;
  /** The gradients the device holds (see {@linkcode BackwardOptions.keepParameterGradients}). */
  readonly gradients: Float32Array;
  /** The optimizer state. */
  readonly state: ResidentOptimizerState;
}

/**
 * A compiled cell's weights, their gradients and the optimizer state in device memory (webgpu),
 * updated there: every change is submitted synchronously, and only {@linkcode DeviceWeights.read}
 * waits, because WebGPU reads buffers back asynchronously.
 */
export interface DeviceWeights {
  /** One update from the gradients on the device; later runs see it. */
  step(update: OptimizerUpdate): void;
  /** Multiplies each parameter's gradient by its factor ({@linkcode parameterSizes} order). */
  scaleGradients(factors: readonly number[]): void;
  /** Replaces the gradients on the device (flat): a step from gradients computed elsewhere. */
  writeGradients(grads: Float32Array): void;
  /** Replaces the optimizer state (resuming, or after steps taken elsewhere). */
  writeState(state: ResidentOptimizerState): void;
  /** Weights, gradients and optimizer state, in one read-back. */
  read(): Promise<DeviceSnapshot>;
}

/**
 * A compiled cell on one backend: weights packed and resident, ready to run whole sequences.
 * Disposable: `using runner = await backend.compile(spec)` frees it at the end of the scope.
 *
 * @example Run a sequence on the TypeScript backend
 * ```ts
 * import { jsBackend } from "./backends/js/mod.ts";
 * using runner = await jsBackend.compile({
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
 * if (output.length !== 2) throw new Error("one hidden unit per step");
 * ```
 */
export interface SequenceRunner extends Disposable {
  /** The backend this runner belongs to. */
  readonly backend: ResolvedBackendName;
  /**
   * Runs all `T` steps. The input arrays are left untouched and are read before `run` returns,
   * so the caller may reuse them at once.
   */
  run(input: SequenceInput): Promise<SequenceOutput>;
  /**
   * Optional: a forward that keeps the activations, with its own backward (fused kernels). A
   * runner without it trains with the float64 oracle of `src/reference/backward.ts`.
   */
  runTraining?(input: SequenceInput): Promise<TrainingStep>;
  /**
   * Optional: a forward that keeps what LRP needs, with the relevance pass through it (fused
   * kernels). A runner without it is explained by the float64 pass of `src/explain/`.
   */
  runRelevance?(input: SequenceInput): Promise<RelevanceStep>;
  /**
   * Optional: the weights in place, for a fused optimizer step. A step makes the backward of
   * training steps recorded before it reject (their activations belong to the old weights). When
   * the runner is freed, `onRelease` listeners run first, while the weights can still be read.
   */
  readonly resident?: ResidentWeights & { onRelease(listener: () => void): void };
  /**
   * Optional: the weights on a device, stepped there; as `resident`, a step makes older training
   * steps' backward reject, and `onRelease` listeners run first when the runner is freed (a read
   * started there still completes).
   */
  readonly device?: DeviceWeights & { onRelease(listener: () => void): void };
  /**
   * Frees device or wasm memory. Idempotent and never throws; calling `run` afterwards rejects.
   * Calls already running finish first (with these weights); the memory is freed when the last
   * one settles. A runner that is never disposed is freed after it is garbage-collected.
   */
  dispose(): void;
}

/** A place to run cells. */
export interface Backend {
  /** The backend's name. */
  readonly name: ResolvedBackendName;
  /**
   * Packs the weights of `spec` for this backend (they are copied: changing `spec` afterwards
   * does not change the runner).
   */
  compile(spec: CellSpec): Promise<SequenceRunner>;
}

/**
 * What a backend implements for one compiled cell. Its `run` only ever gets inputs that passed
 * {@linkcode checkInput} against the compiled spec, with `batch` and `seqLen` both at least 1, and
 * is never called after `dispose`.
 */
export interface CompiledCell {
  /**
   * Runs all steps of a checked, non-empty input; returns fresh arrays. Reads (or copies) the
   * input arrays before it returns: the caller may change them as soon as it has.
   */
  run(input: SequenceInput): Promise<SequenceOutput>;
  /**
   * Optional: the recording forward of a checked, non-empty input, whose `backward` only gets
   * gradients that passed {@linkcode checkOutputGradients}, as `Float32Array`s, at most once, and
   * never after `dispose`. A runner forwards it as `SequenceRunner.runTraining`.
   */
  runTraining?(input: SequenceInput): Promise<TrainingStep>;
  /**
   * Optional: the forward for LRP of a checked, non-empty input, whose `relevance` only gets
   * relevances of the right length and rules that passed {@linkcode checkEpsilonRule}, never after
   * `dispose`. A runner forwards it as `SequenceRunner.runRelevance`.
   */
  runRelevance?(input: SequenceInput): Promise<RelevanceStep>;
  /** Optional: its weights in place (a runner forwards it as `SequenceRunner.resident`). */
  readonly resident?: ResidentWeights;
  /** Optional: its weights on a device (a runner forwards it as `SequenceRunner.device`). */
  readonly device?: DeviceWeights;
  /**
   * Frees what the cell holds; called once, when no call is running, and must not throw. It may
   * run from a `FinalizationRegistry` after the runner was collected, so a cell must not refer
   * back to its runner.
   */
  dispose(): void;
}

/**
 * A deep copy of a cell spec, for runners that keep the weights: the caller may change its arrays
 * after `compile` without affecting the runner.
 *
 * @example
 * ```ts
 * import { copySpec } from "./contract.ts";
 * const spec = copySpec({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * ```
 */
export function copySpec(spec: CellSpec): CellSpec {
  const { params } = spec;
  return {
    variant: { ...spec.variant },
    inputSize: spec.inputSize,
    hiddenSize: spec.hiddenSize,
    params: {
      i2hWeight: params.i2hWeight.slice(),
      i2hBias: params.i2hBias.slice(),
      h2hWeight: params.h2hWeight.slice(),
      h2hBias: params.h2hBias.slice(),
      i2aWeight: params.i2aWeight?.slice() ?? null,
      i2aBias: params.i2aBias?.slice() ?? null,
    },
  };
}

/** Every {@linkcode VariantKind}, in the order error messages list them. */
const VARIANT_KINDS = Object.keys(VARIANTS) as VariantKind[];

function checkArray(name: string, value: unknown, length: number, meaning: string): void {
  if (!(value instanceof Float32Array)) {
    const got = value === null || typeof value !== "object"
      ? describe(value)
      : value.constructor?.name ?? "an object";
    throw new TypeError(
      `${name} must be a Float32Array of ${meaning} = ${length} floats, got ${got}`,
    );
  }
  if (value.length !== length) {
    throw new RangeError(
      `${name} must be a Float32Array of ${meaning} = ${length} floats, got ${value.length} floats`,
    );
  }
}

function checkCount(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks a cell spec against the contract: a known variant, positive integer sizes, `k = 1` for
 * `"lstm"`, and parameters of the right lengths (`i2a` only for attention).
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong, with the expected and the
 * actual value.
 *
 * @example
 * ```ts
 * import { checkSpec } from "./contract.ts";
 * import assert from "node:assert/strict";
 * const z = (n: number) => new Float32Array(n);
 * const params = { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null };
 * checkSpec({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 1, params });
 * assert.throws(() =>
 *   checkSpec({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 2, hiddenSize: 1, params })
 * );
 * ```
 */
export function checkSpec(spec: CellSpec): void {
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError(`spec must be a cell spec object, got ${describe(spec)}`);
  }
  const { variant, params } = spec;
  if (!VARIANT_KINDS.includes(variant?.kind)) {
    throw new TypeError(
      `spec.variant.kind must be one of ${VARIANT_KINDS.map(describe).join(", ")}, got ${
        describe(variant?.kind)
      }`,
    );
  }
  const k = checkSize("spec.variant.k", variant.k);
  if (VARIANTS[variant.kind].lanes === "one" && k !== 1) {
    throw new RangeError(`spec.variant.k must be 1 for an "${variant.kind}" cell, got ${k}`);
  }
  if (
    variant.recurrentActivation !== undefined &&
    !RECURRENT_ACTIVATIONS.includes(variant.recurrentActivation)
  ) {
    throw new TypeError(
      `spec.variant.recurrentActivation must be one of ${
        RECURRENT_ACTIVATIONS.map(describe).join(", ")
      }, got ${describe(variant.recurrentActivation)}`,
    );
  }
  const { gates } = VARIANTS[variant.kind];
  if (gates !== 4 && (variant.recurrentActivation ?? "sigmoid") !== "sigmoid") {
    throw new RangeError(
      `spec.variant.recurrentActivation must be "sigmoid" (or absent) for a ${
        describe(variant.kind)
      } cell, got ${describe(variant.recurrentActivation)}: only the LSTM family has a choice`,
    );
  }
  if (typeof variant.maxPooling !== "boolean") {
    throw new TypeError(
      `spec.variant.maxPooling must be a boolean, got ${describe(variant.maxPooling)}`,
    );
  }
  const I = checkSize("spec.inputSize", spec.inputSize);
  const H = checkSize("spec.hiddenSize", spec.hiddenSize);
  const rows = gates * k * H;
  checkArray("spec.params.i2hWeight", params.i2hWeight, rows * I, `(${gates}kH, I)`);
  checkArray("spec.params.i2hBias", params.i2hBias, rows, `(${gates}kH)`);
  checkArray("spec.params.h2hWeight", params.h2hWeight, rows * H, `(${gates}kH, H)`);
  checkArray("spec.params.h2hBias", params.h2hBias, rows, `(${gates}kH)`);
  if (VARIANTS[variant.kind].attention) {
    checkArray("spec.params.i2aWeight", params.i2aWeight, k * H * I, "(kH, I)");
    checkArray("spec.params.i2aBias", params.i2aBias, k * H, "(kH)");
    return;
  }
  for (const name of ["i2aWeight", "i2aBias"] as const) {
    if (params[name] !== null) {
      throw new TypeError(
        `spec.params.${name} must be null unless the kind is "attention" (only attention has i2a ` +
          `parameters), got a ${params[name]?.constructor?.name} for kind ${
            describe(variant.kind)
          }`,
      );
    }
  }
}

/**
 * Checks one call's input against a spec that passed {@linkcode checkSpec}: non-negative integer
 * `batch` and `seqLen`, and arrays of the lengths they imply.
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong, with the expected and the
 * actual value.
 *
 * @example
 * ```ts
 * import { checkInput } from "./contract.ts";
 * import assert from "node:assert/strict";
 * const z = (n: number) => new Float32Array(n);
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * } as const;
 * checkInput(spec, { batch: 1, seqLen: 2, x: z(2), hidden: z(1), state: z(1) });
 * assert.throws(() => checkInput(spec, { batch: 1, seqLen: 3, x: z(2), hidden: z(1), state: z(1) }));
 * ```
 */
export function checkInput(spec: CellSpec, input: SequenceInput): void {
  if (typeof input !== "object" || input === null) {
    throw new TypeError(`input must be a sequence input object, got ${describe(input)}`);
  }
  const B = checkCount("input.batch", input.batch);
  const T = checkCount("input.seqLen", input.seqLen);
  const { inputSize: I, hiddenSize: H, variant: { k, kind } } = spec;
  checkArray("input.x", input.x, B * T * I, `(batch, seqLen, inputSize) = (${B}, ${T}, ${I})`);
  checkArray("input.hidden", input.hidden, B * H, `(batch, hiddenSize) = (${B}, ${H})`);
  checkArray(
    "input.state",
    input.state,
    stateRows(spec.variant) * B * H,
    VARIANTS[kind].cellStates
      ? `(k, batch, hiddenSize) = (${k}, ${B}, ${H})`
      : `nothing (a ${describe(kind)} cell keeps no cell states)`,
  );
  if (input.outputs !== undefined) checkExtras(spec.variant.kind, input.outputs);
}

/**
 * Checks a request for opt-in outputs: an object of booleans, `attention` only for an attention
 * cell and `lanes` only for a stochastic one, naming the model class that has them.
 */
function checkExtras(kind: VariantKind, outputs: SequenceExtras): void {
  if (typeof outputs !== "object" || outputs === null) {
    throw new TypeError(
      `input.outputs must be an object { attention?, lanes? }, got ${describe(outputs)}`,
    );
  }
  const wants: [keyof SequenceExtras, "attention" | "argmax", VariantKind][] = [
    ["attention", "attention", "attention"],
    ["lanes", "argmax", "stochastic"],
  ];
  for (const [name, feature, owner] of wants) {
    const value = outputs[name];
    if (value === undefined || value === false) continue;
    if (value !== true) {
      throw new TypeError(`input.outputs.${name} must be a boolean, got ${describe(value)}`);
    }
    if (!VARIANTS[kind][feature]) {
      throw new TypeError(
        `input.outputs.${name} is only for the ${VARIANTS[owner].model} cell (kind ${
          describe(owner)
        }), got kind ${describe(kind)} (${VARIANTS[kind].model}): leave it out`,
      );
    }
  }
}

/**
 * The opt-in outputs an input asks for, as two booleans (both `false` when `outputs` is absent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { requestedExtras } from "./contract.ts";
 * const z = new Float32Array(0);
 * const input = { batch: 0, seqLen: 0, x: z, hidden: z, state: z, outputs: { lanes: true } };
 * assert.deepEqual(requestedExtras(input), { attention: false, lanes: true });
 * ```
 */
export function requestedExtras(
  input: SequenceInput,
): { attention: boolean; lanes: boolean } {
  return {
    attention: input.outputs?.attention === true,
    lanes: input.outputs?.lanes === true,
  };
}

/**
 * Rows of cell states `(rows, B, H)` a variant keeps: `k`, or 0 for GRU and RNN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stateRows } from "./contract.ts";
 * assert.equal(stateRows({ kind: "array", k: 3, maxPooling: false }), 3);
 * assert.equal(stateRows({ kind: "gru", k: 1, maxPooling: false }), 0);
 * ```
 */
export function stateRows(variant: CellVariant): number {
  return VARIANTS[variant.kind].cellStates ? variant.k : 0;
}

/**
 * The parameters of a cell as PyTorch names them, with their sizes in floats, in the order of
 * {@linkcode CellParameters} (`i2a` only for attention cells; torch's `weight_ih`, `bias_ih`,
 * `weight_hh`, `bias_hh` for GRU and RNN).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parameterSizes } from "./contract.ts";
 * const sizes = parameterSizes({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 2, hiddenSize: 1 });
 * assert.deepEqual(sizes, [["i2h.weight", 8], ["i2h.bias", 4], ["h2h.weight", 4], ["h2h.bias", 4]]);
 * ```
 */
export function parameterSizes(
  cell: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
): [string, number][] {
  const { variant: { k, kind }, inputSize: I, hiddenSize: H } = cell;
  const rows = VARIANTS[kind].gates * k * H;
  const [weightIh, biasIh, weightHh, biasHh] = VARIANTS[kind].cellStates
    ? ["i2h.weight", "i2h.bias", "h2h.weight", "h2h.bias"]
    : ["weight_ih", "bias_ih", "weight_hh", "bias_hh"];
  const sizes: [string, number][] = [
    [weightIh, rows * I],
    [biasIh, rows],
    [weightHh, rows * H],
    [biasHh, rows],
  ];
  if (VARIANTS[kind].attention) sizes.push(["i2a.weight", k * H * I], ["i2a.bias", k * H]);
  return sizes;
}

function checkGradient(name: string, value: unknown, length: number, meaning: string): void {
  if (!(value instanceof Float32Array || value instanceof Float64Array)) {
    throw new TypeError(
      `${name} must be a Float32Array or Float64Array of ${meaning} = ${length} floats, got ${
        describe(value)
      }`,
    );
  }
  if (value.length !== length) {
    throw new RangeError(
      `${name} must have ${meaning} = ${length} floats, got ${value.length} floats`,
    );
  }
}

/**
 * `spec` with the flat parameters `flat` (`parameterSizes` order, copied) as its weights.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { specWithParameters } from "./contract.ts";
 * const z = (n: number) => new Float32Array(n);
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * } as const;
 * const next = specWithParameters(spec, Float32Array.from({ length: 16 }, (_, i) => i));
 * assert.deepEqual([...next.params.h2hBias], [12, 13, 14, 15]);
 * ```
 */
export function specWithParameters(spec: CellSpec, flat: Float32Array): CellSpec {
  let start = 0;
  const [i2hWeight, i2hBias, h2hWeight, h2hBias, i2aWeight = null, i2aBias = null] = parameterSizes(
    spec,
  ).map(([, size]) => flat.slice(start, start += size));
  return { ...spec, params: { i2hWeight, i2hBias, h2hWeight, h2hBias, i2aWeight, i2aBias } };
}

/**
 * Checks the gradients given to a training step's `backward` against the spec and the step's
 * input: `output` `(B, T, H)`, and `hidden` `(B, H)` and `state` `(k, B, H)` when present.
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOutputGradients } from "./contract.ts";
 * const cell = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 2 } as const;
 * checkOutputGradients(cell, 1, 3, { output: new Float32Array(6) });
 * assert.throws(() => checkOutputGradients(cell, 1, 3, { output: new Float32Array(5) }), RangeError);
 * ```
 */
export function checkOutputGradients(
  cell: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  batch: number,
  seqLen: number,
  grads: OutputGradients,
): void {
  if (typeof grads !== "object" || grads === null) {
    throw new TypeError(
      `grads must be an object { output, hidden?, state? }, got ${describe(grads)}`,
    );
  }
  const { hiddenSize: H } = cell;
  const B = batch, T = seqLen;
  checkGradient(
    "grads.output",
    grads.output,
    B * T * H,
    `(batch, seqLen, hiddenSize) = (${B}, ${T}, ${H})`,
  );
  if (grads.hidden !== undefined) {
    checkGradient("grads.hidden", grads.hidden, B * H, `(batch, hiddenSize) = (${B}, ${H})`);
  }
  if (grads.state !== undefined) {
    checkGradient(
      "grads.state",
      grads.state,
      stateRows(cell.variant) * B * H,
      `(k, batch, hiddenSize) = (${stateRows(cell.variant)}, ${B}, ${H})`,
    );
  }
}

/**
 * Checks LRP's stabilisers: `eps` a finite number `>= 0`, `biasFactor` a finite number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkEpsilonRule } from "./contract.ts";
 * checkEpsilonRule({ eps: 0.001, biasFactor: 1 });
 * assert.throws(() => checkEpsilonRule({ eps: -1, biasFactor: 0 }), /options.eps must be .* got -1/);
 * ```
 */
export function checkEpsilonRule(rule: EpsilonRule, name = "options"): void {
  const { eps, biasFactor } = rule;
  if (typeof eps !== "number" || !(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${name}.eps must be a finite number >= 0, got ${describe(eps)}`);
  }
  if (typeof biasFactor !== "number" || !Number.isFinite(biasFactor)) {
    throw new RangeError(
      `${name}.biasFactor must be a finite number (0 or 1), got ${describe(biasFactor)}`,
    );
  }
}

/**
 * `array` itself when it is a `Float32Array`, else a `Float32Array` copy of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toFloat32 } from "./contract.ts";
 * const single = new Float32Array([1, 2]);
 * assert.equal(toFloat32(single), single);
 * assert.deepEqual(toFloat32(new Float64Array([0.5])), new Float32Array([0.5]));
 * ```
 */
export function toFloat32(array: Float32Array | Float64Array): Float32Array {
  return array instanceof Float32Array ? array : Float32Array.from(array);
}

/** Frees the cells of runners that were collected without `dispose()`. */
const forgotten = new Reclaimer();

/**
 * The runner every backend hands out: the contract's checks around a backend's compiled cell.
 * It counts the calls in flight so that `dispose()` during a call lets that call finish (a hot
 * reload swaps runners under running calls) and frees the cell when the last one settles.
 */
class ContractRunner implements SequenceRunner {
  readonly backend: ResolvedBackendName;
  /** The compiled spec without its weights: all `checkInput` needs. */
  readonly #spec: CellSpec;
  #cell: CompiledCell | null;
  #disposed = false;
  #inFlight = 0;
  /** Present when the compiled cell has a fused training path. */
  readonly runTraining?: (input: SequenceInput) => Promise<TrainingStep>;
  /** Present when the compiled cell has a fused relevance pass. */
  readonly runRelevance?: (input: SequenceInput) => Promise<RelevanceStep>;
  /** Present when the compiled cell updates its weights in place. */
  readonly resident?: ResidentWeights & { onRelease(listener: () => void): void };
  /** Present when the compiled cell keeps its weights on a device. */
  readonly device?: DeviceWeights & { onRelease(listener: () => void): void };
  /** Resident optimizer steps taken: a training step recorded before one is stale. */
  #generation = 0;
  #releaseListeners: (() => void)[] = [];

  constructor(backend: ResolvedBackendName, spec: CellSpec, cell: CompiledCell) {
    this.backend = backend;
    this.#spec = sizesOf(spec);
    this.#cell = cell;
    if (cell.runTraining) this.runTraining = (input) => this.#runTraining(input);
    if (cell.runRelevance) this.runRelevance = (input) => this.#runRelevance(input);
    if (cell.resident) this.resident = this.#guardResident(cell.resident);
    if (cell.device) this.device = this.#guardDevice(cell.device);
    forgotten.watch(this, cell);
  }

  run(input: SequenceInput): Promise<SequenceOutput> {
    return this.#call(input, (cell, checked) => cell.run(checked), (checked) => {
      const wants = requestedExtras(checked);
      return {
        output: new Float32Array(0),
        hidden: checked.hidden.slice(),
        state: checked.state.slice(),
        ...(wants.attention ? { attention: new Float32Array(0) } : {}),
        ...(wants.lanes ? { lanes: new Int32Array(0) } : {}),
      };
    });
  }

  #runTraining(input: SequenceInput): Promise<TrainingStep> {
    if (input?.outputs !== undefined) {
      return Promise.reject(
        new TypeError(
          "input.outputs is for run(): a training step returns no attention or lanes; run the " +
            "same input with run() to get them",
        ),
      );
    }
    return this.#call(
      input,
      async (cell, checked) => this.#guardBackward(checked, await cell.runTraining!(checked)),
      (checked) => this.#emptyStep(checked),
    );
  }

  #runRelevance(input: SequenceInput): Promise<RelevanceStep> {
    if (input?.outputs !== undefined) {
      return Promise.reject(
        new TypeError(
          "input.outputs is for run(): a relevance step returns no attention or lanes; run the " +
            "same input with run() to get them",
        ),
      );
    }
    return this.#call(
      input,
      async (cell, checked) => this.#guardRelevance(checked, await cell.runRelevance!(checked)),
      (checked) => ({
        output: new Float32Array(0),
        hidden: checked.hidden.slice(),
        state: checked.state.slice(),
        relevance: () =>
          Promise.resolve({
            input: new Float32Array(0),
            rest: new Float32Array(checked.batch),
          }),
      }),
    );
  }

  /** The cell's step with its relevance pass checked and counted as in flight. */
  #guardRelevance(input: SequenceInput, step: RelevanceStep): RelevanceStep {
    const { batch, seqLen } = input;
    const generation = this.#generation;
    const H = this.#spec.hiddenSize;
    return {
      output: step.output,
      hidden: step.hidden,
      state: step.state,
      relevance: (outputRelevance, rule) => {
        if (this.#disposed || this.#cell === null || generation !== this.#generation) {
          return Promise.reject(
            new Error(
              `this ${this.backend} runner was disposed or stepped before the relevance pass of ` +
                "its step (its parameters were replaced): run the forward again",
            ),
          );
        }
        try {
          checkGradient(
            "outputRelevance",
            outputRelevance,
            batch * seqLen * H,
            `(batch, seqLen, hiddenSize) = (${batch}, ${seqLen}, ${H})`,
          );
          checkEpsilonRule(rule, "rule");
        } catch (error) {
          return Promise.reject(error);
        }
        this.#inFlight++;
        let result: Promise<LayerRelevance>;
        try {
          result = step.relevance(toFloat32(outputRelevance), rule);
        } catch (error) {
          result = Promise.reject(error);
        }
        return result.finally(() => this.#settle());
      },
    };
  }

  /**
   * Checks `input` and runs `call` on the cell, counted as in flight; answers empty calls with
   * `empty` and calls after `dispose` with a rejection.
   */
  #call<T>(
    input: SequenceInput,
    call: (cell: CompiledCell, input: SequenceInput) => Promise<T>,
    empty: (input: SequenceInput) => T,
  ): Promise<T> {
    const cell = this.#cell;
    if (this.#disposed || cell === null) {
      return Promise.reject(
        new Error(`this ${this.backend} runner was disposed; compile the cell again to run it`),
      );
    }
    try {
      checkInput(this.#spec, input);
    } catch (error) {
      return Promise.reject(error);
    }
    if (input.batch === 0 || input.seqLen === 0) return Promise.resolve(empty(input));
    this.#inFlight++;
    let result: Promise<T>;
    try {
      result = call(cell, input);
    } catch (error) {
      result = Promise.reject(error);
    }
    // The callback holds `this`, so a runner is never collected (and its cell freed) mid-call.
    return result.finally(() => this.#settle());
  }

  /** The cell's resident weights, refused after `dispose`; a step makes older records stale. */
  #guardResident(weights: ResidentWeights): ResidentWeights & {
    onRelease(listener: () => void): void;
  } {
    // Reads work until the cell is freed (release listeners read during `dispose`), steps stop at
    // `dispose`.
    const live = (stepping = false): ResidentWeights => {
      if (this.#cell === null || (stepping && this.#disposed)) {
        throw new Error(
          `this ${this.backend} runner was disposed; its resident weights are gone`,
        );
      }
      return weights;
    };
    return {
      step: (update, grads) => {
        live(true).step(update, grads);
        this.#generation++;
      },
      parameters: () => live().parameters(),
      readState: () => live().readState(),
      writeState: (state) => live().writeState(state),
      onRelease: (listener) => this.#releaseListeners.push(listener),
    };
  }

  /** The cell's device weights, refused after `dispose`; a step makes older records stale. */
  #guardDevice(weights: DeviceWeights): DeviceWeights & { onRelease(listener: () => void): void } {
    // Reads start until the cell is freed (release listeners read during `dispose`); changes stop
    // at `dispose`.
    const live = (changing = true): DeviceWeights => {
      if (this.#cell === null || (changing && this.#disposed)) {
        throw new Error(`this ${this.backend} runner was disposed; its device weights are gone`);
      }
      return weights;
    };
    return {
      step: (update) => {
        live().step(update);
        this.#generation++;
      },
      scaleGradients: (factors) => live().scaleGradients(factors),
      writeGradients: (grads) => live().writeGradients(grads),
      writeState: (state) => live().writeState(state),
      read: () => {
        try {
          return live(false).read();
        } catch (error) {
          return Promise.reject(error);
        }
      },
      onRelease: (listener) => this.#releaseListeners.push(listener),
    };
  }

  /** The cell's step with its backward checked, run at most once, and counted as in flight. */
  #guardBackward(input: SequenceInput, step: TrainingStep): TrainingStep {
    const { batch, seqLen } = input;
    const generation = this.#generation;
    let used = false;
    return {
      output: step.output,
      hidden: step.hidden,
      state: step.state,
      backward: (grads, options) => {
        if (used) {
          return Promise.reject(
            new Error(
              "backward() was already called on this training step; run the forward again to " +
                "back-propagate a second time",
            ),
          );
        }
        if (this.#disposed || this.#cell === null || generation !== this.#generation) {
          return Promise.reject(
            new Error(
              `this ${this.backend} runner was disposed or stepped before the backward of its training step ` +
                "(its parameters were replaced): call backward() before changing the parameters",
            ),
          );
        }
        try {
          checkOutputGradients(this.#spec, batch, seqLen, grads);
        } catch (error) {
          return Promise.reject(error);
        }
        used = true;
        this.#inFlight++;
        let result: Promise<InputGradients>;
        try {
          result = step.backward({
            output: toFloat32(grads.output),
            ...(grads.hidden === undefined ? {} : { hidden: toFloat32(grads.hidden) }),
            ...(grads.state === undefined ? {} : { state: toFloat32(grads.state) }),
            ...(grads.wanted === undefined ? {} : { wanted: { ...grads.wanted } }),
          }, options);
        } catch (error) {
          result = Promise.reject(error);
        }
        return result.finally(() => this.#settle());
      },
    };
  }

  /** An empty call's step: no step ran, so only the initial state gets its gradient through. */
  #emptyStep(input: SequenceInput): TrainingStep {
    const { batch, seqLen } = input;
    const spec = this.#spec;
    return {
      output: new Float32Array(0),
      hidden: input.hidden.slice(),
      state: input.state.slice(),
      backward: (grads) => {
        try {
          checkOutputGradients(spec, batch, seqLen, grads);
        } catch (error) {
          return Promise.reject(error);
        }
        return Promise.resolve({
          params: Object.fromEntries(
            parameterSizes(spec).map(([name, size]) => [name, new Float32Array(size)]),
          ),
          x: new Float32Array(batch * seqLen * spec.inputSize),
          hidden: grads.hidden
            ? toFloat32(grads.hidden).slice()
            : new Float32Array(input.hidden.length),
          state: grads.state
            ? toFloat32(grads.state).slice()
            : new Float32Array(input.state.length),
        });
      },
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    forgotten.release(this);
    if (this.#inFlight === 0) this.#free();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #settle(): void {
    if (--this.#inFlight === 0 && this.#disposed) this.#free();
  }

  #free(): void {
    // Listeners read the weights (and optimizer state) out while the cell still holds them.
    for (const listener of this.#releaseListeners.splice(0)) {
      try {
        listener();
      } catch {
        // Unreadable weights (a trapped instance): a later read of them throws and says so.
      }
    }
    const cell = this.#cell;
    this.#cell = null;
    cell?.dispose();
  }
}

const EMPTY_PARAMETERS: CellParameters = {
  i2hWeight: new Float32Array(0),
  i2hBias: new Float32Array(0),
  h2hWeight: new Float32Array(0),
  h2hBias: new Float32Array(0),
  i2aWeight: null,
  i2aBias: null,
};

/**
 * A cell's sizes with empty weights: all {@linkcode checkInput} needs, without keeping the
 * weights alive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sizesOf } from "./contract.ts";
 * const sizes = sizesOf({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 2, hiddenSize: 3 });
 * assert.equal(sizes.params.i2hWeight.length, 0);
 * ```
 */
export function sizesOf(cell: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">): CellSpec {
  return {
    variant: { ...cell.variant },
    inputSize: cell.inputSize,
    hiddenSize: cell.hiddenSize,
    params: EMPTY_PARAMETERS,
  };
}

/**
 * Makes a backend from its compile step: the spec is checked ({@linkcode checkSpec}) before
 * `compile` sees it, and every call's input ({@linkcode checkInput}) before the compiled cell does;
 * empty calls and calls after `dispose` are answered here. This is the only place the contract is
 * enforced: a new backend gets it by being defined with this function. `activations` lists the
 * gate activations its kernels implement (only `"sigmoid"` unless it says more).
 *
 * @example A backend whose cells return zeros
 * ```ts
 * import { defineBackend } from "./contract.ts";
 * import assert from "node:assert/strict";
 * const zeros = defineBackend("js", (spec) =>
 *   Promise.resolve({
 *     run: ({ batch, seqLen }) => {
 *       const size = batch * spec.hiddenSize;
 *       return Promise.resolve({
 *         output: new Float32Array(size * seqLen),
 *         hidden: new Float32Array(size),
 *         state: new Float32Array(spec.variant.k * size),
 *       });
 *     },
 *     dispose: () => {},
 *   })
 * );
 * const z = (n: number) => new Float32Array(n);
 * using runner = await zeros.compile({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * const { output } = await runner.run({ batch: 1, seqLen: 3, x: z(3), hidden: z(1), state: z(1) });
 * assert.deepEqual(output, z(3));
 * await assert.rejects(runner.run({ batch: 1, seqLen: 3, x: z(2), hidden: z(1), state: z(1) }));
 * ```
 */
export function defineBackend(
  name: ResolvedBackendName,
  compile: (spec: CellSpec) => Promise<CompiledCell>,
  activations: readonly RecurrentActivation[] = ["sigmoid"],
): Backend {
  return {
    name,
    async compile(spec: CellSpec): Promise<SequenceRunner> {
      checkSpec(spec);
      const activation = spec.variant.recurrentActivation ?? "sigmoid";
      if (!activations.includes(activation)) {
        throw new RangeError(
          `the ${name} backend runs recurrentActivation ${
            activations.map(describe).join(", ")
          }, got ${describe(activation)}: compile this cell on the js backend`,
        );
      }
      return new ContractRunner(name, spec, await compile(spec));
    },
  };
}
