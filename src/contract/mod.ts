/**
 * The contract between models and backends: what every backend accepts and returns, and the one
 * place where it is checked. Models describe *what* to compute (a cell variant, its parameters, an
 * input sequence and an initial state); a backend decides *where* it runs. Backends never see
 * model classes, and models never touch devices.
 *
 * All arrays are row-major `Float32Array`s in the reference's layouts. A backend must not mutate
 * any array it is given and must return fresh arrays.
 *
 * Every backend is made with {@linkcode defineBackend} (`runner.ts`), which checks the spec on
 * `compile` and the input on every `run` ({@linkcode checkSpec}, {@linkcode checkInput},
 * `checks.ts`) before the backend sees them, so no backend re-implements these checks. The types
 * are in `types.ts`, the opt-in outputs' rule in `extras.ts`. The rules:
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
 *   `"attention"` cell, `lanes` only of a `"stochastic"` one ({@linkcode offersExtra}, from the
 *   variant table); a training step takes neither.
 * - NaN and ±Infinity in the input, the initial state or the weights are allowed and never
 *   clamped: they propagate through the float arithmetic as IEEE 754 says, so a NaN in one
 *   sequence makes that sequence's outputs NaN from that step on, on every backend, and leaves the
 *   other sequences of the batch alone.
 *
 * @module
 */

export { hardSigmoidSlope, RECURRENT_ACTIVATIONS, type RecurrentActivation } from "./activation.ts";
export {
  checkEpsilonRule,
  checkGradient,
  checkInput,
  checkOutputGradients,
  checkSpec,
  copyInput,
  copySpec,
  parameterSizes,
  sizesOf,
  specWithParameters,
  stateRows,
  toFloat32,
} from "./checks.ts";
export { checkExtras, requestedExtras } from "./extras.ts";
export { type ExtraOutput, offersExtra } from "../variants.ts";
export { defineBackend } from "./runner.ts";
export type {
  Backend,
  BackendName,
  BackendNames,
  BackwardOptions,
  CellParameters,
  CellSpec,
  CellVariant,
  CompiledCell,
  DeviceSnapshot,
  DeviceWeights,
  EpsilonRule,
  InputGradients,
  LayerRelevance,
  OptimizerUpdate,
  OutputGradients,
  RelevanceStep,
  ResidentOptimizerState,
  ResidentWeights,
  ResolvedBackendName,
  SequenceExtras,
  SequenceInput,
  SequenceOutput,
  SequenceRunner,
  TrainingStep,
  VariantKind,
  WantedGradients,
} from "./types.ts";
