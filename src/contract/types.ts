/**
 * The contract's types: what every backend accepts and returns. Models describe *what* to compute
 * (a cell variant, its parameters, an input sequence and an initial state); a backend decides
 * *where* it runs. Backends never see model classes, and models never touch devices.
 *
 * All arrays are row-major `Float32Array`s in the reference's layouts. A backend must not mutate
 * any array it is given and must return fresh arrays. The rules the checks enforce are in
 * `mod.ts`.
 *
 * @module
 */

import type { RecurrentActivation } from "./activation.ts";
import type { VariantKind } from "../variants.ts";
import type { OptimizerUpdate } from "../optimizer_kinds.ts";

export type { OptimizerUpdate };

export type { RecurrentActivation, VariantKind };

/**
 * The concrete backends, by name: a backend's registration declares its name here, so that the
 * name types stay literal unions. The built-in ones are listed below; a new backend adds itself
 * from its own registration module (`src/backends/<name>/`), next to its `registerBackend` call:
 *
 * ```ts ignore
 * declare module "../../contract/types.ts" {
 *   interface BackendNames {
 *     native: true;
 *   }
 * }
 * ```
 */
export interface BackendNames {
  /** The TypeScript reference, everywhere (`src/backends/js/`). */
  js: true;
  /** Rust compiled to WebAssembly, SIMD and threads (`src/backends/wasm/`). */
  wasm: true;
  /** WGSL kernels on a GPU (`src/backends/webgpu/`). */
  webgpu: true;
}

/** A concrete backend, as resolved from a {@linkcode BackendName}. */
export type ResolvedBackendName = keyof BackendNames & string;

/** The backends a model can ask for. `"auto"` picks the fastest one available. */
export type BackendName = "auto" | ResolvedBackendName;

/**
 * Describes the cell of a model: everything a kernel needs to know besides sizes and parameters.
 *
 * @example Describe a `StochasticArrayLSTM` with four lanes
 * ```ts
 * import type { CellVariant } from "./types.ts";
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
   * Whether `hidden` and `state` were made for this call and nobody else holds them (a model's
   * default zeros): a backend that reads them after it returns (in the background, or from a
   * queue) may keep them instead of a copy. Default `false`: the caller may change them once the
   * call returns.
   */
  readonly ownsState?: boolean;
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
 * import type { SequenceExtras } from "./types.ts";
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
 * import { jsBackend } from "../backends/js/mod.ts";
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
   * A forward that records for training, on every runner: {@linkcode SequenceRunner.runTraining}
   * where the backend has it, else `run` with the float64 reference backward of
   * `src/reference/backward.ts` (over a copy of the compiled weights and of the input). The one
   * training path: models record through it. The input arrays may be reused once it returns.
   */
  trainingStep(input: SequenceInput): Promise<TrainingStep>;
  /**
   * Optional: a forward that keeps the activations, with its own backward (fused kernels). A
   * runner without it trains with the float64 reference (see `trainingStep`).
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
