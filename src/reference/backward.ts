/**
 * Backpropagation through time for every variant, in float64 on the TypeScript path: the gradient
 * oracle that training on the fast backends will be checked against. Internal API (not exported
 * from `mod.ts`); tested against the reference's gradients and against finite differences.
 *
 * @module
 */

import type {
  CellSpec,
  InputGradients,
  OutputGradients,
  RecurrentActivation,
  SequenceInput,
  VariantKind,
} from "../contract/types.ts";
import { type FloatArray, gate, gateSlope, laneUpdateFor, readoutFor, sigmoid } from "./cell.ts";
import { newTrace, runSequence } from "./sequence.ts";
import { checkShape } from "../errors.ts";
import { torchBackward } from "./gru_rnn.ts";
import { VARIANTS } from "../variants.ts";

export type { InputGradients, OutputGradients };

/**
 * Runs the forward in float64, keeping its activations, and back-propagates `grads` through all
 * steps. Follows the reference's autograd exactly: the stochastic argmax and the max pooling pass
 * gradient only to the selected (first maximal) lane. torch's GRU and RNN (no cell states) go to
 * `torchBackward` (`gru_rnn.ts`).
 *
 * @example Gradient of the sum of all outputs of a one-step LSTM
 * ```ts
 * import { backward } from "./backward.ts";
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array([0.1, 0.2, 0.3, 0.4]), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * } as const;
 * const input = { batch: 1, seqLen: 1, x: new Float32Array([1]),
 *   hidden: new Float32Array(1), state: new Float32Array(1) };
 * const grads = backward(spec, input, { output: new Float64Array([1]) });
 * ```
 */
export function backward(
  spec: CellSpec,
  input: SequenceInput,
  grads: OutputGradients,
): InputGradients {
  if (!VARIANTS[spec.variant.kind].cellStates) return torchBackward(spec, input, grads);
  const { variant: { kind, k, maxPooling }, inputSize: I, hiddenSize: H, params } = spec;
  const activation = spec.variant.recurrentActivation ?? "sigmoid";
  const { batch: B, seqLen: T, x } = input;
  checkShape("grads.output", [grads.output.length], [B * T * H], "B·T·H elements");
  if (grads.hidden) checkShape("grads.hidden", [grads.hidden.length], [B * H], "B·H elements");
  if (grads.state) checkShape("grads.state", [grads.state.length], [k * B * H], "k·B·H elements");
  const trace = newTrace();
  runSequence(spec, input, Float64Array, trace);

  const gates = 4 * k * H, size = B * H, attention = kind === "attention";
  const readout = readoutFor(kind);
  const dI2hWeight = new Float64Array(gates * I);
  const dH2hWeight = new Float64Array(gates * H);
  const dBias = new Float64Array(gates);
  const dI2aWeight = new Float64Array(attention ? k * H * I : 0);
  const dI2aBias = new Float64Array(attention ? k * H : 0);
  const dx = new Float64Array(B * T * I);
  let dHidden = Float64Array.from(grads.hidden ?? new Float64Array(size));
  const dState = Float64Array.from(grads.state ?? new Float64Array(k * size));
  const dz = new Float64Array(B * gates);
  const dWeights = attention ? new Float64Array(B * k * H) : null;

  for (let t = T - 1; t >= 0; t--) {
    for (let i = 0; i < size; i++) {
      dHidden[i] += grads.output[(Math.floor(i / H) * T + t) * H + (i % H)];
    }
    const z = trace.z[t], previous = trace.states[t], cells = trace.states[t + 1];
    const outputGates = trace.outputGates[t];
    const weights = attention ? trace.weights[t] : null;
    const dOutputGates = new Float64Array(k * size);
    readout.backward(outputGates, cells, dHidden, k, size, dOutputGates, dState);
    backwardLanes(
      { kind, activation, batch: B, k, hiddenSize: H },
      { z, previous, weights },
      dOutputGates,
      dState,
      dz,
      dWeights,
    );
    // Parameters and inputs through the pre-activations.
    const nextDHidden = new Float64Array(size);
    const xRows = { offset: t * I, stride: T * I };
    backwardLinear(dz, B, gates, x, xRows, I, params.i2hWeight, dI2hWeight, dBias, dx);
    const hRows = { offset: 0, stride: H };
    backwardLinear(
      dz,
      B,
      gates,
      trace.hiddens[t],
      hRows,
      H,
      params.h2hWeight,
      dH2hWeight,
      null,
      nextDHidden,
    );
    if (attention) {
      backwardAttention(
        trace.attentionPreActivations[t],
        dWeights!,
        { B, T, I, H, k, t, maxPooling },
        x,
        params.i2aWeight!,
        dI2aWeight,
        dI2aBias,
        dx,
      );
    }
    dHidden = nextDHidden;
  }

  const result: Record<string, Float64Array> = {
    "i2h.weight": dI2hWeight,
    "i2h.bias": dBias,
    "h2h.weight": dH2hWeight,
    "h2h.bias": dBias.slice(),
  };
  if (attention) {
    result["i2a.weight"] = dI2aWeight;
    result["i2a.bias"] = dI2aBias;
  }
  return { params: result, x: dx, hidden: dHidden, state: dState };
}

/** The sizes and activation of one step of the lanes. */
export interface LaneStep {
  readonly kind: VariantKind;
  readonly activation: RecurrentActivation;
  readonly batch: number;
  readonly k: number;
  readonly hiddenSize: number;
}

/** What one step of `updateLanes` read: `z (B, k, 4H)`, the cells before it, the lane weights. */
export interface LaneInputs {
  readonly z: FloatArray;
  readonly previous: FloatArray;
  readonly weights: FloatArray | null;
}

/**
 * Back through one step of every lane's cell update (`updateLanes`). Takes the gradients of the
 * output gates and of the new cells (`dState`, replaced in place by the gradient of the cells
 * before the step); writes `dz (B, k, 4H)` and, with attention, `dWeights (B, k, H)`.
 *
 * @example An LSTM cell with zero pre-activations: dc_prev = f·dc = 0.5
 * ```ts
 * import assert from "node:assert/strict";
 * import { backwardLanes } from "./backward.ts";
 * const dState = new Float64Array([1]), dz = new Float64Array(4);
 * const step = { kind: "lstm", activation: "sigmoid", batch: 1, k: 1, hiddenSize: 1 } as const;
 * const inputs = { z: new Float64Array(4), previous: new Float64Array([2]), weights: null };
 * backwardLanes(step, inputs, new Float64Array(1), dState, dz, null);
 * assert.equal(dState[0], 0.5);
 * assert.equal(dz[0], 2 * 0.25); // dc/df · f'(0) = c_prev · σ(0)(1 − σ(0))
 * ```
 */
export function backwardLanes(
  step: LaneStep,
  inputs: LaneInputs,
  dOutputGates: ArrayLike<number>,
  dState: Float64Array,
  dz: Float64Array,
  dWeights: Float64Array | null,
): void {
  const { kind, activation, batch: B, k, hiddenSize: H } = step;
  const { z, previous, weights } = inputs;
  const { keep: keepOf, keepSlope } = laneUpdateFor(kind);
  for (let b = 0; b < B; b++) {
    for (let lane = 0; lane < k; lane++) {
      const row = (b * k + lane) * 4 * H;
      for (let u = 0; u < H; u++) {
        const cell = (lane * B + b) * H + u;
        const scale = weights === null ? 1 : weights[(b * k + lane) * H + u];
        const forget = gate(activation, z[row + u]);
        const input = gate(activation, z[row + H + u]);
        const output = gate(activation, z[row + 2 * H + u]);
        const candidate = Math.tanh(z[row + 3 * H + u]);
        const dCell = dState[cell];
        const keep = keepOf(scale * forget);
        const dKeep = dCell * previous[cell];
        // The gradients below are with respect to the scaled gates (scale·σ(z)).
        const dForget = dKeep * keepSlope;
        const dInput = dCell * candidate;
        const dOutput = dOutputGates[cell];
        dState[cell] = dCell * keep;
        dz[row + u] = dForget * scale * gateSlope(activation, z[row + u]);
        dz[row + H + u] = dInput * scale * gateSlope(activation, z[row + H + u]);
        dz[row + 2 * H + u] = dOutput * scale * gateSlope(activation, z[row + 2 * H + u]);
        dz[row + 3 * H + u] = dCell * scale * input * (1 - candidate * candidate);
        if (dWeights !== null) {
          dWeights[(b * k + lane) * H + u] = dForget * forget + dInput * input + dOutput * output;
        }
      }
    }
  }
}

/** Where each of `rows` rows of a matrix starts in its array: `offset + r · stride`. */
export interface RowLayout {
  readonly offset: number;
  readonly stride: number;
}

/**
 * Back through `out (rows, outputs) = a · weightᵀ + bias` (`linear`): adds into `dWeight`,
 * `dBias` (when given) and `dA`, laid out as `a` by `aRows`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backwardLinear } from "./backward.ts";
 * const dWeight = new Float64Array(2), dBias = new Float64Array(1), dA = new Float64Array(2);
 * const rows = { offset: 0, stride: 2 };
 * backwardLinear([3], 1, 1, [1, 2], rows, 2, [5, 7], dWeight, dBias, dA);
 * assert.deepEqual([...dWeight, ...dBias, ...dA], [3, 6, 3, 15, 21]);
 * ```
 */
export function backwardLinear(
  dOut: ArrayLike<number>,
  rows: number,
  outputs: number,
  a: ArrayLike<number>,
  aRows: RowLayout,
  inner: number,
  weight: ArrayLike<number>,
  dWeight: Float64Array,
  dBias: Float64Array | null,
  dA: Float64Array,
): void {
  for (let r = 0; r < rows; r++) {
    const aRow = aRows.offset + r * aRows.stride;
    for (let o = 0; o < outputs; o++) {
      const d = dOut[r * outputs + o];
      if (d === 0) continue;
      if (dBias !== null) dBias[o] += d;
      for (let i = 0; i < inner; i++) {
        dWeight[o * inner + i] += d * a[aRow + i];
        dA[aRow + i] += d * weight[o * inner + i];
      }
    }
  }
}

/**
 * Back through `s = softmax_k(σ(a))` (and the max pooling) into `i2a` and `x` at step `t` of
 * `x (B, T, I)` (`T = 1, t = 0` for one step's input). Adds into `dI2aWeight`, `dI2aBias`, `dx`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backwardAttention } from "./backward.ts";
 * const dW = new Float64Array(2), dB = new Float64Array(2), dx = new Float64Array(1);
 * const sizes = { B: 1, T: 1, I: 1, H: 1, k: 2, t: 0, maxPooling: false };
 * // Equal weights on both lanes of the loss: the softmax passes no gradient.
 * backwardAttention([0, 1], new Float64Array([1, 1]), sizes, [1], [1, 1], dW, dB, dx);
 * assert.ok(Math.abs(dB[0]) < 1e-12 && Math.abs(dx[0]) < 1e-12);
 * ```
 */
export function backwardAttention(
  preActivation: ArrayLike<number>,
  dWeights: Float64Array,
  sizes: { B: number; T: number; I: number; H: number; k: number; t: number; maxPooling: boolean },
  x: ArrayLike<number>,
  i2aWeight: ArrayLike<number>,
  dI2aWeight: Float64Array,
  dI2aBias: Float64Array,
  dx: Float64Array,
): void {
  const { B, T, I, H, k, t, maxPooling } = sizes;
  const activated = new Float64Array(k),
    softmax = new Float64Array(k),
    dSoftmax = new Float64Array(k);
  for (let b = 0; b < B; b++) {
    for (let u = 0; u < H; u++) {
      const at = (lane: number) => (b * k + lane) * H + u;
      let total = 0;
      for (let lane = 0; lane < k; lane++) {
        activated[lane] = sigmoid(preActivation[at(lane)]);
        total += Math.exp(activated[lane]);
      }
      let largest = 0;
      for (let lane = 0; lane < k; lane++) {
        softmax[lane] = Math.exp(activated[lane]) / total;
        if (softmax[lane] > softmax[largest]) largest = lane;
      }
      if (maxPooling) {
        // Every lane used max_k s; the gradient of the max goes to the first maximal lane.
        dSoftmax.fill(0);
        for (let lane = 0; lane < k; lane++) dSoftmax[largest] += dWeights[at(lane)];
      } else {
        for (let lane = 0; lane < k; lane++) dSoftmax[lane] = dWeights[at(lane)];
      }
      let dot = 0;
      for (let lane = 0; lane < k; lane++) dot += dSoftmax[lane] * softmax[lane];
      const xRow = (b * T + t) * I;
      for (let lane = 0; lane < k; lane++) {
        const dActivated = softmax[lane] * (dSoftmax[lane] - dot);
        const dPre = dActivated * activated[lane] * (1 - activated[lane]);
        const row = lane * H + u;
        dI2aBias[row] += dPre;
        for (let i = 0; i < I; i++) {
          dI2aWeight[row * I + i] += dPre * x[xRow + i];
          dx[xRow + i] += dPre * i2aWeight[row * I + i];
        }
      }
    }
  }
}
