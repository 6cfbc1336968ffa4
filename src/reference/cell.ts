/**
 * The cell equations of every variant in plain TypeScript: the readable oracle that every
 * backend is tested against, and the math of the models' step-by-step hooks. Functions work on `Float32Array` or `Float64Array` (the gradient
 * oracle runs in float64) and write only into the arrays named as outputs.
 *
 * Layouts follow the reference: pre-activations `z` are `(B, k, 4H)` with gates in the order
 * forget, input, output, candidate; lane tensors are `(k, B, H)`; attention weights `(B, k, H)`.
 *
 * @module
 */

import { hardSigmoidSlope, type RecurrentActivation } from "../contract/activation.ts";
import { type FamilyEquations, type VariantKind, VARIANTS } from "../variants.ts";

/** A float array of either precision. */
export type FloatArray = Float32Array | Float64Array;

/** The logistic sigmoid. */
export function sigmoid(value: number): number {
  return 1 / (1 + Math.exp(-value));
}

/**
 * The gate activation (forget, input, output gates): the sigmoid, or a hard sigmoid
 * `clip(slope·v + 0.5, 0, 1)`.
 *
 * @example
 * ```ts
 * import { gate } from "./cell.ts";
 * gate("hard_sigmoid", 1); // 0.7
 * ```
 */
export function gate(activation: RecurrentActivation, value: number): number {
  if (activation === "sigmoid") return sigmoid(value);
  return Math.min(1, Math.max(0, hardSigmoidSlope(activation) * value + 0.5));
}

/**
 * d gate / d pre-activation at `value`: `σ·(1 − σ)`, or a hard sigmoid's slope inside its linear
 * region and 0 outside (NaN stays NaN).
 *
 * @example
 * ```ts
 * import { gateSlope } from "./cell.ts";
 * gateSlope("hard_sigmoid", 10); // 0
 * ```
 */
export function gateSlope(activation: RecurrentActivation, value: number): number {
  if (activation === "sigmoid") {
    const s = sigmoid(value);
    return s * (1 - s);
  }
  const slope = hardSigmoidSlope(activation), linear = slope * value + 0.5;
  if (Number.isNaN(linear)) return NaN;
  return linear > 0 && linear < 1 ? slope : 0;
}

/**
 * `out (rows, outputs) = a (rows, inner) · weightᵀ (outputs, inner) + bias`, the PyTorch
 * `nn.Linear` product; `extraBias` is added too when given (so `i2h` and `h2h` biases fold into
 * one pass).
 *
 * @example
 * ```ts
 * import { linear } from "./cell.ts";
 * const out = new Float32Array(2);
 * linear(new Float32Array([1, 2]), 1, 2, new Float32Array([1, 0, 0, 1]), 2, null, out);
 * ```
 */
export function linear(
  a: FloatArray,
  rows: number,
  inner: number,
  weight: FloatArray,
  outputs: number,
  bias: FloatArray | null,
  out: FloatArray,
  extraBias: FloatArray | null = null,
): void {
  // Four rows at a time: four independent sums (one was bound by the latency of its adds), each
  // in the same order as one row alone, so every result is the same.
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const a0 = r * inner, a1 = a0 + inner, a2 = a1 + inner, a3 = a2 + inner;
    for (let o = 0; o < outputs; o++) {
      const wRow = o * inner;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inner; i++) {
        const w = weight[wRow + i];
        s0 += a[a0 + i] * w;
        s1 += a[a1 + i] * w;
        s2 += a[a2 + i] * w;
        s3 += a[a3 + i] * w;
      }
      const b = bias === null ? 0 : bias[o], e = extraBias === null ? 0 : extraBias[o];
      out[r * outputs + o] = s0 + b + e;
      out[(r + 1) * outputs + o] = s1 + b + e;
      out[(r + 2) * outputs + o] = s2 + b + e;
      out[(r + 3) * outputs + o] = s3 + b + e;
    }
  }
  for (; r < rows; r++) {
    const aRow = r * inner;
    const outRow = r * outputs;
    for (let o = 0; o < outputs; o++) {
      const wRow = o * inner;
      let sum = 0;
      for (let i = 0; i < inner; i++) sum += a[aRow + i] * weight[wRow + i];
      out[outRow + o] = sum + (bias === null ? 0 : bias[o]) +
        (extraBias === null ? 0 : extraBias[o]);
    }
  }
}

/**
 * Attention lane weights from the attention pre-activations `(B, k, H)`: `softmax_k(σ(a))`, and
 * with `maxPooling` the largest weight of each unit broadcast to all its lanes (the reference's
 * behaviour). Writes `weights (B, k, H)`.
 *
 * @example
 * ```ts
 * import { attentionWeights } from "./cell.ts";
 * const weights = new Float32Array(2);
 * attentionWeights(new Float32Array([0, 1]), 1, 2, 1, false, weights);
 * ```
 */
export function attentionWeights(
  preActivation: FloatArray,
  batch: number,
  k: number,
  hiddenSize: number,
  maxPooling: boolean,
  weights: FloatArray,
): void {
  for (let b = 0; b < batch; b++) {
    for (let u = 0; u < hiddenSize; u++) {
      const at = (lane: number) => (b * k + lane) * hiddenSize + u;
      let total = 0;
      let largest = 0;
      // σ(a) lies in (0, 1), so the softmax needs no max-subtraction for stability.
      for (let lane = 0; lane < k; lane++) total += Math.exp(sigmoid(preActivation[at(lane)]));
      for (let lane = 0; lane < k; lane++) {
        const weight = Math.exp(sigmoid(preActivation[at(lane)])) / total;
        weights[at(lane)] = weight;
        largest = Math.max(largest, weight);
      }
      if (maxPooling) { for (let lane = 0; lane < k; lane++) weights[at(lane)] = largest; }
    }
  }
}

/**
 * One step of every lane's memory cell. From `z (B, k, 4H)` and the previous cells
 * `previous (k, B, H)`, writes the new cells `next (k, B, H)` and the output gates
 * `outputGates (k, B, H)`. With attention `weights (B, k, H)` the gates are scaled by them and the
 * forget gate enters as `(1 − f)`, as in the reference.
 *
 * @example
 * ```ts
 * import { updateLanes } from "./cell.ts";
 * const next = new Float32Array(1), outputGates = new Float32Array(1);
 * updateLanes("lstm", new Float32Array(4), 1, 1, 1, null, new Float32Array(1), next, outputGates);
 * ```
 */
export function updateLanes(
  kind: VariantKind,
  z: FloatArray,
  batch: number,
  k: number,
  hiddenSize: number,
  weights: FloatArray | null,
  previous: FloatArray,
  next: FloatArray,
  outputGates: FloatArray,
  activation: RecurrentActivation = "sigmoid",
): void {
  const H = hiddenSize;
  const attention = kind === "attention";
  const { keep } = laneUpdateFor(kind);
  for (let b = 0; b < batch; b++) {
    for (let lane = 0; lane < k; lane++) {
      const gates = (b * k + lane) * 4 * H;
      for (let u = 0; u < H; u++) {
        const scale = attention ? weights![(b * k + lane) * H + u] : 1;
        const forgetGate = scale * gate(activation, z[gates + u]);
        const inputGate = scale * gate(activation, z[gates + H + u]);
        const outputGate = scale * gate(activation, z[gates + 2 * H + u]);
        const candidate = Math.tanh(z[gates + 3 * H + u]);
        const cell = (lane * batch + b) * H + u;
        next[cell] = keep(forgetGate) * previous[cell] + inputGate * candidate;
        outputGates[cell] = outputGate;
      }
    }
  }
}

/**
 * The forget path of a lane update of the LSTM family: `c = keep(f)·c_prev + i·g`, with `f`
 * already scaled by the lane weight (attention).
 */
export interface LaneUpdate {
  /** The factor that keeps the previous cells, of the (scaled) forget gate. */
  keep(forget: number): number;
  /** d keep / d forget. */
  readonly keepSlope: number;
}

/** `keep = f`: the array, LSTM and stochastic update. */
const FORGET: LaneUpdate = { keep: (forget) => forget, keepSlope: 1 };

/**
 * The lane update of each cell equations of the LSTM family, typed over them all: a new variant of
 * the family does not compile until it has its entry (no silent fallback to the array update).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LANE_UPDATES } from "./cell.ts";
 * assert.equal(LANE_UPDATES.attention.keep(0.25), 0.75);
 * ```
 */
export const LANE_UPDATES: { readonly [equations in FamilyEquations]: LaneUpdate } = {
  array: FORGET,
  // The reference's attention cell inverts the forget gate.
  attention: { keep: (forget) => 1 - forget, keepSlope: -1 },
  stochastic: FORGET,
};

/**
 * The lane update of a variant of the LSTM family (that of its equations); a variant without cell
 * states (GRU, RNN) has none and is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LANE_UPDATES, laneUpdateFor } from "./cell.ts";
 * assert.equal(laneUpdateFor("lstm"), LANE_UPDATES.array);
 * ```
 */
export function laneUpdateFor(kind: VariantKind): LaneUpdate {
  return LANE_UPDATES[familyEquations(kind, "lanes")];
}

/** The cell equations of `kind`, refused (GRU and RNN cells have no `what`) outside the family. */
function familyEquations(kind: VariantKind, what: string): FamilyEquations {
  const info = VARIANTS[kind];
  if (!info.cellStates) {
    throw new TypeError(
      `kind must be a variant of the LSTM family (with cell states), got "${kind}": ` +
        `GRU and RNN cells have no ${what}`,
    );
  }
  return info.equations;
}

/**
 * The array (and LSTM) hidden state: `h = Σ_k o_k · tanh(c_k)`, summed lane 0 first.
 * Reads `(k, B, H)` lane tensors, writes `hidden (B, H)`.
 *
 * @example
 * ```ts
 * import { sumLanes } from "./cell.ts";
 * const hidden = new Float32Array(1);
 * sumLanes(new Float32Array([1, 1]), new Float32Array([0.5, 0.5]), 2, 1, 1, hidden);
 * ```
 */
export function sumLanes(
  outputGates: FloatArray,
  states: FloatArray,
  k: number,
  batch: number,
  hiddenSize: number,
  hidden: FloatArray,
): void {
  const size = batch * hiddenSize;
  for (let i = 0; i < size; i++) {
    let sum = 0;
    for (let lane = 0; lane < k; lane++) {
      sum += outputGates[lane * size + i] * Math.tanh(states[lane * size + i]);
    }
    hidden[i] = sum;
  }
}

/**
 * The lane the stochastic variant reads out for one unit: the largest output gate, the first
 * lane winning a tie (`argmax softmax(o)` is `argmax o`, and torch picks the first maximum).
 */
export function selectedLane(outputGates: FloatArray, k: number, size: number, i: number): number {
  let best = 0;
  for (let lane = 1; lane < k; lane++) {
    if (outputGates[lane * size + i] > outputGates[best * size + i]) best = lane;
  }
  return best;
}

/**
 * The stochastic hidden state: per unit, `h = o_j · tanh(c_j)` for the selected lane `j`
 * (see {@linkcode selectedLane}). Reads `(k, B, H)` lane tensors, writes `hidden (B, H)`.
 *
 * @example
 * ```ts
 * import { selectLanes } from "./cell.ts";
 * const hidden = new Float32Array(1);
 * selectLanes(new Float32Array([0.2, 0.9]), new Float32Array([1, -1]), 2, 1, 1, hidden);
 * ```
 */
export function selectLanes(
  outputGates: FloatArray,
  states: FloatArray,
  k: number,
  batch: number,
  hiddenSize: number,
  hidden: FloatArray,
): void {
  const size = batch * hiddenSize;
  for (let i = 0; i < size; i++) {
    const lane = selectedLane(outputGates, k, size, i);
    hidden[i] = outputGates[lane * size + i] * Math.tanh(states[lane * size + i]);
  }
}

/**
 * Back through one step's readout ({@linkcode sumLanes}, or {@linkcode selectLanes} when
 * `selected`): from `dHidden (B·H)` writes `dOutputGates (k, B, H)` (zero where a lane is not
 * read, so it must come in zeroed) and adds into `dState (k, B, H)`, the gradient of the new
 * cells. The selected lane is the first maximal output gate, as torch's argmax.
 *
 * @example `h = o·tanh(c)` of one lane: dh/do = tanh(c)
 * ```ts
 * import assert from "node:assert/strict";
 * import { backwardReadout } from "./cell.ts";
 * const dOutputGates = new Float64Array(1), dState = new Float64Array(1);
 * const [outputGates, cells] = [new Float64Array([0.5]), new Float64Array([1])];
 * backwardReadout(false, outputGates, cells, [1], 1, 1, dOutputGates, dState);
 * assert.ok(Math.abs(dOutputGates[0] - Math.tanh(1)) < 1e-12);
 * ```
 */
export function backwardReadout(
  selected: boolean,
  outputGates: FloatArray,
  cells: FloatArray,
  dHidden: ArrayLike<number>,
  k: number,
  size: number,
  dOutputGates: Float64Array,
  dState: Float64Array,
): void {
  for (let i = 0; i < size; i++) {
    const first = selected ? selectedLane(outputGates, k, size, i) : 0;
    const last = selected ? first : k - 1;
    for (let lane = first; lane <= last; lane++) {
      const cell = lane * size + i;
      const tanhCell = Math.tanh(cells[cell]);
      dOutputGates[cell] = dHidden[i] * tanhCell;
      dState[cell] += dHidden[i] * outputGates[cell] * (1 - tanhCell * tanhCell);
    }
  }
}

/** A hidden-state readout of the LSTM family: its forward and its gradient, side by side. */
export interface Readout {
  /** Reads `(k, B, H)` output gates and cells, writes `hidden (B, H)`. */
  forward(
    outputGates: FloatArray,
    states: FloatArray,
    k: number,
    batch: number,
    hiddenSize: number,
    hidden: FloatArray,
  ): void;
  /**
   * Back through `forward` for `size = B·H` units: from `dHidden` writes `dOutputGates (k, B, H)`
   * (it comes in zeroed) and adds into `dState (k, B, H)`.
   */
  backward(
    outputGates: FloatArray,
    cells: FloatArray,
    dHidden: ArrayLike<number>,
    k: number,
    size: number,
    dOutputGates: Float64Array,
    dState: Float64Array,
  ): void;
}

/** `h = Σ_k o_k · tanh(c_k)`: the array, LSTM and attention readout. */
const SUM: Readout = {
  forward: sumLanes,
  backward: (outputGates, cells, dHidden, k, size, dOutputGates, dState) =>
    backwardReadout(false, outputGates, cells, dHidden, k, size, dOutputGates, dState),
};

/**
 * The readout of each cell equations of the LSTM family, typed over them all: a new variant of
 * the family does not compile until it has its entry (no silent fallback to the sum).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { READOUTS } from "./cell.ts";
 * const hidden = new Float32Array(1), cells = new Float32Array([1, 1]);
 * READOUTS.stochastic.forward(new Float32Array([0.2, 0.9]), cells, 2, 1, 1, hidden);
 * assert.ok(Math.abs(hidden[0] - 0.9 * Math.tanh(1)) < 1e-6);
 * ```
 */
export const READOUTS: { readonly [equations in FamilyEquations]: Readout } = {
  array: SUM,
  attention: SUM,
  stochastic: {
    forward: selectLanes,
    backward: (outputGates, cells, dHidden, k, size, dOutputGates, dState) =>
      backwardReadout(true, outputGates, cells, dHidden, k, size, dOutputGates, dState),
  },
};

/**
 * The readout of a variant of the LSTM family (that of its equations); a variant without cell
 * states (GRU, RNN) has none and is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { READOUTS, readoutFor } from "./cell.ts";
 * assert.equal(readoutFor("lstm"), READOUTS.array);
 * ```
 */
export function readoutFor(kind: VariantKind): Readout {
  return READOUTS[familyEquations(kind, "lane readout")];
}

/**
 * The hidden-state readout of a variant: its entry's forward in {@linkcode READOUTS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readoutOf, selectLanes } from "./cell.ts";
 * assert.equal(readoutOf("stochastic"), selectLanes);
 * ```
 */
export function readoutOf(kind: VariantKind): Readout["forward"] {
  return readoutFor(kind).forward;
}
