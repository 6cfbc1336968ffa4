/**
 * The float64 backward of any cell variant over a whole sequence: the oracle a recorded forward
 * falls back on when its runner has no fused training (`runTraining`). The LSTM family runs
 * `backward.ts`, the torch cells `gru_rnn.ts`; the variant table's `cellStates` flag chooses.
 *
 * @module
 */

import {
  type CellSpec,
  type InputGradients,
  type OutputGradients,
  type SequenceInput,
  toFloat32,
} from "../contract.ts";
import { VARIANTS } from "../variants.ts";
import { backward } from "./backward.ts";
import { torchCellBackward, torchCellForward, torchKind, torchParameters } from "./gru_rnn.ts";

/**
 * Backpropagation through time of `spec` on `input` in float64, from the forward trace it
 * recomputes with the same weights. Parameter gradients are named as the model names them:
 * `i2h.weight`, ... for the LSTM family, torch's `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`
 * for GRU and RNN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referenceBackward } from "./sequence_backward.ts";
 * const w = Float32Array.of(1), z = (n: number) => new Float32Array(n);
 * const spec = {
 *   variant: { kind: "rnn_tanh", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: w, i2hBias: z(1), h2hWeight: z(1), h2hBias: z(1), i2aWeight: null, i2aBias: null },
 * } as const;
 * const input = { batch: 1, seqLen: 1, x: Float32Array.of(0.5), hidden: z(1), state: z(0) };
 * const grads = referenceBackward(spec, input, { output: Float32Array.of(1) });
 * const dTanh = 1 - Math.tanh(0.5) ** 2;
 * assert.ok(Math.abs(grads.params.weight_ih[0] - 0.5 * dTanh) < 1e-12);
 * assert.equal(grads.state.length, 0);
 * ```
 */
export function referenceBackward(
  spec: CellSpec,
  input: SequenceInput,
  grads: OutputGradients,
): InputGradients {
  if (VARIANTS[spec.variant.kind].cellStates) return backward(spec, input, grads);
  const kind = torchKind(spec.variant.kind), params = torchParameters(spec.params);
  const sizes = {
    batch: input.batch,
    seqLen: input.seqLen,
    inputSize: spec.inputSize,
    hiddenSize: spec.hiddenSize,
  };
  const trace = torchCellForward(kind, params, sizes, input.x, input.hidden);
  const g = torchCellBackward(
    kind,
    params,
    sizes,
    input.x,
    trace,
    toFloat32(grads.output),
    grads.hidden === undefined ? null : toFloat32(grads.hidden),
  );
  return {
    params: { weight_ih: g.weightIh, weight_hh: g.weightHh, bias_ih: g.biasIh, bias_hh: g.biasHh },
    x: g.x,
    hidden: g.h0,
    state: new Float64Array(0),
  };
}
