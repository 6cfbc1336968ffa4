/**
 * The construction arguments of an LSTM-family cell in the compiled backends (the wasm crate's
 * `Cell`/`Trainer` and the native library's `alstm_cell_new`/`alstm_trainer_new`), in the order
 * both take them.
 *
 * @module
 */

import { type CellSpec, hardSigmoidSlope } from "../contract/mod.ts";
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
    params.i2hWeight,
    params.i2hBias,
    params.h2hWeight,
    params.h2hBias,
    attention ? params.i2aWeight! : none,
    attention ? params.i2aBias! : none,
  ];
}
