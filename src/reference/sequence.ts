/**
 * Whole sequences through the cell equations of `cell.ts`: the reference every backend is tested
 * against (the js backend runs it as is), in float32 or, for the gradient oracle, float64.
 *
 * @module
 */

import { requestedExtras } from "../contract/extras.ts";
import type { CellSpec, SequenceInput } from "../contract/types.ts";
import {
  attentionWeights,
  type FloatArray,
  linear,
  readoutOf,
  selectedLane,
  updateLanes,
} from "./cell.ts";

/** Per-step activations of one sequence, kept when the gradient oracle asks for them. */
export interface Trace {
  /** Pre-activations `z` per step, each `(B, k, 4H)`. */
  readonly z: FloatArray[];
  /** Attention weights per step, each `(B, k, H)`; empty unless the variant is attention. */
  readonly weights: FloatArray[];
  /** Attention pre-activations per step, each `(B, k, H)`; empty unless attention. */
  readonly attentionPreActivations: FloatArray[];
  /** Cells before every step and after the last, `T + 1` arrays of `(k, B, H)`. */
  readonly states: FloatArray[];
  /** Hidden states before every step and after the last, `T + 1` arrays of `(B, H)`. */
  readonly hiddens: FloatArray[];
  /** Output gates per step, each `(k, B, H)`. */
  readonly outputGates: FloatArray[];
}

/**
 * An empty trace for {@linkcode runSequence} to fill.
 *
 * @example
 * ```ts
 * import { newTrace } from "./sequence.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(newTrace().z, []);
 * ```
 */
export function newTrace(): Trace {
  return {
    z: [],
    weights: [],
    attentionPreActivations: [],
    states: [],
    hiddens: [],
    outputGates: [],
  };
}

/**
 * Runs a sequence through a cell in the precision of `Precision` (float32 for the backend,
 * float64 for the gradient oracle). Returns the output and, when `trace` is set, fills it. When
 * `input.outputs` asks for them, also the attention weights `(B, T, H, k)` and the stochastic
 * cell's chosen lanes `(B, T, H)`.
 * `spec` and `input` must satisfy the contract (see `checkSpec` and `checkInput`).
 *
 * @example One step of a one-unit LSTM with zero weights: every gate is one half
 * ```ts
 * import { runSequence } from "./sequence.ts";
 * import assert from "node:assert/strict";
 * const z = (n: number) => new Float32Array(n);
 * const { hidden } = runSequence(
 *   {
 *     variant: { kind: "lstm", k: 1, maxPooling: false },
 *     inputSize: 1,
 *     hiddenSize: 1,
 *     params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 *   },
 *   { batch: 1, seqLen: 1, x: z(1), hidden: z(1), state: new Float32Array([2]) },
 * );
 * assert.ok(Math.abs(hidden[0] - 0.5 * Math.tanh(1)) < 1e-6);
 * ```
 */
export function runSequence(
  spec: CellSpec,
  input: SequenceInput,
  Precision: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array,
  trace: Trace | null = null,
): {
  output: FloatArray;
  hidden: FloatArray;
  state: FloatArray;
  attention?: FloatArray;
  lanes?: Int32Array;
} {
  const { variant: { kind, k, maxPooling }, inputSize: I, hiddenSize: H, params } = spec;
  const activation = spec.variant.recurrentActivation ?? "sigmoid";
  const { batch: B, seqLen: T, x } = input;
  const gates = 4 * k * H;
  const inputProjection = new Precision(B * T * gates);
  linear(x, B * T, I, params.i2hWeight, gates, params.i2hBias, inputProjection, params.h2hBias);
  const attention = kind === "attention" ? attentionProjection(spec, input, Precision) : null;

  const readout = readoutOf(kind);
  const output = new Precision(B * T * H);
  const wants = requestedExtras(input);
  const attentionOut = wants.attention ? new Precision(B * T * H * k) : null;
  const lanesOut = wants.lanes ? new Int32Array(B * T * H) : null;
  let hidden: FloatArray = Precision.from(input.hidden);
  let state: FloatArray = Precision.from(input.state);
  trace?.hiddens.push(hidden);
  trace?.states.push(state);
  for (let t = 0; t < T; t++) {
    const z = new Precision(B * gates);
    linear(hidden, B, H, params.h2hWeight, gates, null, z);
    for (let b = 0; b < B; b++) {
      const row = (b * T + t) * gates;
      for (let g = 0; g < gates; g++) z[b * gates + g] += inputProjection[row + g];
    }
    let weights: FloatArray | null = null;
    if (attention !== null) {
      const preActivation = attention.subarray(t * B * k * H, (t + 1) * B * k * H);
      weights = new Precision(B * k * H);
      attentionWeights(preActivation, B, k, H, maxPooling, weights);
      trace?.attentionPreActivations.push(preActivation);
      trace?.weights.push(weights);
      if (attentionOut !== null) writeAttention(weights, B, T, t, k, H, attentionOut);
    }
    const next = new Precision(k * B * H);
    const outputGates = new Precision(k * B * H);
    updateLanes(kind, z, B, k, H, weights, state, next, outputGates, activation);
    const nextHidden = new Precision(B * H);
    readout(outputGates, next, k, B, H, nextHidden);
    if (lanesOut !== null) {
      for (let b = 0; b < B; b++) {
        for (let u = 0; u < H; u++) {
          lanesOut[(b * T + t) * H + u] = selectedLane(outputGates, k, B * H, b * H + u);
        }
      }
    }
    for (let b = 0; b < B; b++) {
      output.set(nextHidden.subarray(b * H, (b + 1) * H), (b * T + t) * H);
    }
    hidden = nextHidden;
    state = next;
    if (trace !== null) {
      trace.z.push(z);
      trace.outputGates.push(outputGates);
      trace.hiddens.push(hidden);
      trace.states.push(state);
    }
  }
  return {
    output,
    hidden,
    state,
    ...(attentionOut === null ? {} : { attention: attentionOut }),
    ...(lanesOut === null ? {} : { lanes: lanesOut }),
  };
}

/** Step `t`'s attention weights `(B, k, H)` into their place in `out (B, T, H, k)`. */
function writeAttention(
  weights: FloatArray,
  B: number,
  T: number,
  t: number,
  k: number,
  H: number,
  out: FloatArray,
): void {
  for (let b = 0; b < B; b++) {
    for (let lane = 0; lane < k; lane++) {
      for (let u = 0; u < H; u++) {
        out[((b * T + t) * H + u) * k + lane] = weights[(b * k + lane) * H + u];
      }
    }
  }
}

/** Attention pre-activations `x · i2aᵀ + b` for all steps, laid out `(T, B, k, H)`. */
function attentionProjection(
  spec: CellSpec,
  input: SequenceInput,
  Precision: Float32ArrayConstructor | Float64ArrayConstructor,
): FloatArray {
  const { inputSize: I, hiddenSize: H, variant: { k }, params } = spec;
  const { batch: B, seqLen: T, x } = input;
  const byRow = new Precision(B * T * k * H);
  linear(x, B * T, I, params.i2aWeight!, k * H, params.i2aBias, byRow);
  const byStep = new Precision(B * T * k * H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      byStep.set(byRow.subarray((b * T + t) * k * H, (b * T + t + 1) * k * H), (t * B + b) * k * H);
    }
  }
  return byStep;
}
