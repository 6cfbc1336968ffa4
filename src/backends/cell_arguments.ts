/**
 * The construction arguments of a cell in the compiled backends, in the order both take them:
 * the LSTM family's (the wasm crate's `Cell`/`Trainer`, the native library's
 * `alstm_cell_new`/`alstm_trainer_new`) and GRU's and RNN's (`TorchCell`,
 * `alstm_torch_cell_new`).
 *
 * @module
 */

import { type CellParameters, type CellSpec, hardSigmoidSlope } from "../contract/mod.ts";
import { VARIANTS } from "../variants.ts";

/**
 * An LSTM-family cell's construction arguments: the variant's code, lanes, pooling, gate slope,
 * sizes and the six PyTorch-layout parameter arrays.
 */
export type CellArguments = [
  kind: number,
  k: number,
  maxPooling: boolean,
  gateSlope: number,
  inputSize: number,
  hiddenSize: number,
  i2hWeight: Float32Array,
  i2hBias: Float32Array,
  h2hWeight: Float32Array,
  h2hBias: Float32Array,
  i2aWeight: Float32Array,
  i2aBias: Float32Array,
];

/**
 * The arguments of the LSTM family's cell and trainer constructors for `spec`: the variant's
 * code, lanes, pooling, gate slope, sizes and the six parameter arrays (empty `i2a` unless the cell
 * has attention).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstmCellArguments } from "./cell_arguments.ts";
 * const z = (n: number) => new Float32Array(n);
 * const args = lstmCellArguments({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * assert.deepEqual(args.slice(0, 6), [0, 1, false, 0, 1, 1]);
 * assert.equal(args[11].length, 0);
 * ```
 */
export function lstmCellArguments(spec: CellSpec): CellArguments {
  const { variant, params } = spec;
  const none = new Float32Array(0);
  const { attention, code } = VARIANTS[variant.kind];
  return [
    code,
    variant.k,
    variant.maxPooling,
    hardSigmoidSlope(variant.recurrentActivation),
    spec.inputSize,
    spec.hiddenSize,
    ...torchArrays(params),
    attention ? params.i2aWeight! : none,
    attention ? params.i2aBias! : none,
  ];
}

/**
 * A GRU or RNN cell's construction arguments: the variant's code, sizes and its four
 * PyTorch-layout parameter arrays (`weight_ih`, `bias_ih`, `weight_hh`, `bias_hh`).
 */
export type TorchCellArguments = [
  kind: number,
  inputSize: number,
  hiddenSize: number,
  weightIh: Float32Array,
  biasIh: Float32Array,
  weightHh: Float32Array,
  biasHh: Float32Array,
];

/**
 * The arguments of the GRU and RNN cell constructors for `spec`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { torchCellArguments } from "./cell_arguments.ts";
 * const z = (n: number) => new Float32Array(n);
 * const args = torchCellArguments({
 *   variant: { kind: "rnn_tanh", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(1), i2hBias: z(1), h2hWeight: z(1), h2hBias: z(1), i2aWeight: null, i2aBias: null },
 * });
 * assert.deepEqual(args.slice(1, 3), [1, 1]);
 * assert.equal(args.length, 7);
 * ```
 */
export function torchCellArguments(spec: CellSpec): TorchCellArguments {
  const code = VARIANTS[spec.variant.kind].code;
  return [code, spec.inputSize, spec.hiddenSize, ...torchArrays(spec.params)];
}

/** The four arrays every cell has, in the constructors' order. */
function torchArrays(
  params: CellParameters,
): [Float32Array, Float32Array, Float32Array, Float32Array] {
  return [params.i2hWeight, params.i2hBias, params.h2hWeight, params.h2hBias];
}
