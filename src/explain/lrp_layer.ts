/**
 * LRP-ε through one recurrent layer read in one direction: the forward activations it needs
 * ({@linkcode traceLayer}) and the relevance pass from the hidden states back to the input
 * ({@linkcode relevanceOfLayer}). Arras et al.'s rules for the LSTM, and their extension to the
 * array variants (see docs/guide/explanations.md). Everything runs in float64, vectorised over
 * the batch; time is the only sequential axis.
 *
 * @module
 */

import type {
  CellParameters,
  EpsilonRule,
  RecurrentActivation,
  VariantKind,
} from "../contract/mod.ts";
import { attentionWeights, gate, linear } from "../reference/cell.ts";
import { VARIANTS } from "../variants.ts";

/** The cell of a layer and its weights, in the PyTorch reference's layouts. */
export interface LayerWeights extends CellParameters {
  readonly kind: VariantKind;
  /** Lanes per unit (1 for the LSTM). */
  readonly k: number;
  readonly maxPooling: boolean;
  /** The forget, input and output gates' activation. */
  readonly activation: RecurrentActivation;
  readonly inputSize: number;
  readonly hiddenSize: number;
}

/**
 * The forward activations of one layer over a batch, in the order the layer read the steps.
 * Per-step arrays are laid out `(T, B, k, H)`.
 */
export interface LayerTrace {
  readonly weights: LayerWeights;
  readonly batch: number;
  readonly seqLen: number;
  /** The input `(B, T, I)`. */
  readonly x: Float64Array;
  /** The hidden states the backend computed, `(B, T, H)`. */
  readonly hidden: Float64Array;
  /** Candidate pre-activations `z_g`. */
  readonly candidatePre: Float64Array;
  /** The cells after every step. */
  readonly cells: Float64Array;
  /** `keep · c_{t−1}`: the old cell's part of the new one (`keep` is `f`, or `1 − s·f`). */
  readonly kept: Float64Array;
  /** `in · g`: the candidate's part of the new cell (`in` is `i`, or `s·i`). */
  readonly written: Float64Array;
  /** Each lane's term of the hidden state, `s·o·tanh(c)` (`s = 1` without attention). */
  readonly readout: Float64Array;
  /** The lane read out per unit, `(T, B, H)`; stochastic only. */
  readonly lanes: Uint8Array | null;
}

/**
 * Recomputes the gates and cells of a layer in float64 from its input and the hidden states its
 * backend computed: one matrix product over all steps at once (the hidden states are known),
 * then the elementwise cell recurrence. The initial state is zero. `chosen` `(B, T, H)`, when
 * given, are the stochastic lanes the backend read out (its `returnLanes`); else they are
 * recomputed from the float64 output gates.
 */
export function traceLayer(
  weights: LayerWeights,
  batch: number,
  seqLen: number,
  x: Float64Array,
  hidden: Float64Array,
  chosen: Int32Array | null = null,
): LayerTrace {
  const { kind, k, inputSize: I, hiddenSize: H, activation } = weights;
  if (!VARIANTS[kind].lrp) {
    throw new TypeError(
      `weights.kind must be a variant with LRP rules (the table's lrp flag: the LSTM family), ` +
        `got ${kind} (${VARIANTS[kind].model}): LRP has no rule for its cell`,
    );
  }
  const B = batch, T = seqLen, gates = 4 * k * H, lanes = k * H;
  const rows = B * T;
  // h_{t−1} for every row (b, t): the backend's output shifted one step, zero at t = 0.
  const previous = new Float64Array(rows * H);
  for (let b = 0; b < B; b++) {
    previous.set(hidden.subarray(b * T * H, (b * T + T - 1) * H), (b * T + 1) * H);
  }
  // The output gate only matters where lanes are read out by it (array variants).
  const z = gatePreActivations(weights, rows, x, previous, k > 1);
  let scale: Float64Array | null = null;
  if (VARIANTS[kind].attention) {
    const pre = new Float64Array(rows * lanes);
    linear(x, rows, I, weights.i2aWeight!, lanes, weights.i2aBias, pre);
    scale = new Float64Array(rows * lanes);
    attentionWeights(pre, rows, k, H, weights.maxPooling, scale);
  }
  const size = T * B * lanes;
  const candidatePre = new Float64Array(size);
  const cells = new Float64Array(size);
  const kept = new Float64Array(size);
  const written = new Float64Array(size);
  const readout = new Float64Array(size);
  const selected = VARIANTS[kind].argmax ? new Uint8Array(T * B * H) : null;
  const attention = scale !== null;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const row = b * T + t, at = (t * B + b) * lanes;
      for (let lane = 0; lane < k; lane++) {
        const g0 = row * gates + lane * 4 * H;
        for (let u = 0; u < H; u++) {
          const i = at + lane * H + u;
          const s = attention ? scale![row * lanes + lane * H + u] : 1;
          const forget = s * gate(activation, z[g0 + u]);
          const keep = attention ? 1 - forget : forget;
          const old = t === 0 ? 0 : cells[i - B * lanes];
          candidatePre[i] = z[g0 + 3 * H + u];
          kept[i] = keep * old;
          written[i] = s * gate(activation, z[g0 + H + u]) * Math.tanh(candidatePre[i]);
          cells[i] = kept[i] + written[i];
          readout[i] = s * gate(activation, z[g0 + 2 * H + u]) * Math.tanh(cells[i]);
        }
      }
      if (selected !== null && chosen !== null) {
        for (let u = 0; u < H; u++) selected[(t * B + b) * H + u] = chosen[row * H + u];
      } else if (selected !== null) {
        // The lane with the largest output gate (the first on a tie), as the forward picks it.
        for (let u = 0; u < H; u++) {
          const output = (lane: number) =>
            gate(activation, z[row * gates + lane * 4 * H + 2 * H + u]);
          let best = 0;
          for (let lane = 1; lane < k; lane++) if (output(lane) > output(best)) best = lane;
          selected[(t * B + b) * H + u] = best;
        }
      }
    }
  }
  return {
    weights,
    batch,
    seqLen,
    x,
    hidden,
    candidatePre,
    cells,
    kept,
    written,
    readout,
    lanes: selected,
  };
}

/**
 * `z = [x, h_{t−1}] · [i2h; h2h]ᵀ + biases` for all rows `(B·T)` at once, laid out
 * `(rows, k, 4H)`; the output gates' quarter is left zero unless `outputGates`. Four rows share
 * every weight read.
 */
function gatePreActivations(
  weights: LayerWeights,
  rows: number,
  x: Float64Array,
  previous: Float64Array,
  outputGates: boolean,
): Float64Array {
  const { k, inputSize: I, hiddenSize: H } = weights;
  const gates = 4 * k * H, inner = I + H;
  const w = new Float64Array(gates * inner);
  for (let o = 0; o < gates; o++) {
    w.set(weights.i2hWeight.subarray(o * I, (o + 1) * I), o * inner);
    w.set(weights.h2hWeight.subarray(o * H, (o + 1) * H), o * inner + I);
  }
  const a = new Float64Array(rows * inner);
  for (let r = 0; r < rows; r++) {
    a.set(x.subarray(r * I, (r + 1) * I), r * inner);
    a.set(previous.subarray(r * H, (r + 1) * H), r * inner + I);
  }
  const needed: number[] = [];
  for (let o = 0; o < gates; o++) {
    if (outputGates || Math.floor((o % (4 * H)) / H) !== 2) needed.push(o);
  }
  const z = new Float64Array(rows * gates);
  for (let r = 0; r < rows; r += 4) {
    const n = Math.min(4, rows - r);
    const a0 = r * inner, a1 = a0 + (n > 1 ? inner : 0);
    const a2 = a0 + (n > 2 ? 2 * inner : 0), a3 = a0 + (n > 3 ? 3 * inner : 0);
    for (const o of needed) {
      const bias = weights.i2hBias[o] + weights.h2hBias[o];
      let s0 = bias, s1 = bias, s2 = bias, s3 = bias;
      const wo = o * inner;
      for (let i = 0; i < inner; i++) {
        const wi = w[wo + i];
        s0 += a[a0 + i] * wi;
        s1 += a[a1 + i] * wi;
        s2 += a[a2 + i] * wi;
        s3 += a[a3 + i] * wi;
      }
      z[r * gates + o] = s0;
      if (n > 1) z[(r + 1) * gates + o] = s1;
      if (n > 2) z[(r + 2) * gates + o] = s2;
      if (n > 3) z[(r + 3) * gates + o] = s3;
    }
  }
  return z;
}

/** `sgn(v)` with `sgn(0) = +1`, as the original's stabiliser. */
function sign(value: number): number {
  return value >= 0 ? 1 : -1;
}

/** Options of {@linkcode relevanceOfLayer}. */
export interface LayerRelevanceOptions {
  /**
   * Steps of each sequence `(B)`, in `[1, T]`: the pass starts at step `lengths[b] − 1` and the
   * steps past it get no relevance. All `T` when absent.
   */
  readonly lengths?: Int32Array;
  /** Whether to keep the relevance of every step's hidden and cell states. */
  readonly states?: boolean;
}

/** What {@linkcode relevanceOfLayer} gives. */
export interface LayerRelevance {
  /** The input's relevance `(B, T, I)`. */
  readonly input: Float64Array;
  /** What is left at the initial hidden and cell states, per sequence `(B)`. */
  readonly rest: Float64Array;
  /**
   * With `states`: the relevance arriving at every step's hidden state (from the layer above or
   * the dense layer, and from the next step), `(B, T, H)`, in the order the layer read the steps.
   */
  readonly hidden?: Float64Array;
  /**
   * With `states`: the total relevance of every step's cell state (the next step's kept part and
   * what its hidden state passed to it), `(B, T, k·H)`, lanes first.
   */
  readonly cell?: Float64Array;
}

/**
 * Relevance from a layer's hidden states back to its input and initial state. `outputRelevance`
 * `(B, T, H)` is the relevance arriving at every step's hidden state (from a dense layer at the
 * last step, or from the layer above at every step). Returns the input's relevance `(B, T, I)`,
 * what is left at the initial hidden and cell states per sequence `(B)` and, with
 * `options.states`, every step's hidden and cell states' relevance.
 */
export function relevanceOfLayer(
  trace: LayerTrace,
  outputRelevance: Float64Array,
  rule: EpsilonRule,
  options: LayerRelevanceOptions = {},
): LayerRelevance {
  const { weights, batch: B, seqLen: T } = trace;
  const { kind, k, inputSize: I, hiddenSize: H } = weights;
  const { eps, biasFactor } = rule;
  const lanes = k * H;
  // Candidate bias (both biases, as the original adds b_x and b_h) and recurrent rows per lane unit.
  const candidateBias = new Float64Array(lanes);
  for (let lane = 0; lane < k; lane++) {
    for (let u = 0; u < H; u++) {
      const r = lane * 4 * H + 3 * H + u;
      candidateBias[lane * H + u] = weights.i2hBias[r] + weights.h2hBias[r];
    }
  }
  const relevanceH = new Float64Array(B * H);
  const relevanceC = new Float64Array(B * lanes);
  const nextH = new Float64Array(B * H);
  // Per step: the candidate's relevance over its denominator, and its stabiliser share, kept
  // for one product over all steps at the end (the input's part).
  const candidateRatio = new Float64Array(B * T * lanes);
  const candidateShare = new Float64Array(B * T);
  const { lengths } = options;
  const hiddenStates = options.states ? new Float64Array(B * T * H) : null;
  const cellStates = options.states ? new Float64Array(B * T * lanes) : null;
  for (let t = T - 1; t >= 0; t--) {
    for (let b = 0; b < B; b++) {
      // A padded step: nothing arrives, and its states and input get no relevance.
      if (lengths !== undefined && t >= lengths[b]) continue;
      const rh = b * H, rc = b * lanes, at = (t * B + b) * lanes;
      for (let u = 0; u < H; u++) relevanceH[rh + u] += outputRelevance[(b * T + t) * H + u];
      hiddenStates?.set(relevanceH.subarray(rh, rh + H), (b * T + t) * H);
      readoutRule(trace, kind, k, H, t, b, relevanceH, relevanceC, rule);
      cellStates?.set(relevanceC.subarray(rc, rc + lanes), (b * T + t) * lanes);
      // The cell split: c_t = kept + written, ε-rule with identity weights over 2kH inputs.
      let share = 0;
      for (let j = 0; j < lanes; j++) {
        const c = trace.cells[at + j], s = sign(c);
        const ratio = relevanceC[rc + j] / (c + eps * s);
        relevanceC[rc + j] = ratio;
        share += eps * s * ratio;
      }
      share *= biasFactor / (2 * lanes);
      // The candidate g: ε-rule of its pre-activation over [x_t, h_{t−1}] (I + H inputs).
      let candidate = 0;
      const ratioRow = (b * T + t) * lanes;
      for (let j = 0; j < lanes; j++) {
        const ratio = relevanceC[rc + j];
        const relevanceG = trace.written[at + j] * ratio + share;
        relevanceC[rc + j] = trace.kept[at + j] * ratio + share;
        const pre = trace.candidatePre[at + j], s = sign(pre);
        const gRatio = relevanceG / (pre + eps * s);
        candidateRatio[ratioRow + j] = gRatio;
        candidate += (candidateBias[j] + eps * s) * gRatio;
      }
      candidate *= biasFactor / (I + H);
      candidateShare[b * T + t] = candidate;
      nextH.fill(0, rh, rh + H);
      if (t > 0) {
        for (let lane = 0; lane < k; lane++) {
          for (let u = 0; u < H; u++) {
            const ratio = candidateRatio[ratioRow + lane * H + u];
            if (ratio === 0) continue;
            const w = (lane * 4 * H + 3 * H + u) * H;
            for (let v = 0; v < H; v++) nextH[rh + v] += ratio * weights.h2hWeight[w + v];
          }
        }
        const hidden = (b * T + t - 1) * H;
        for (let v = 0; v < H; v++) {
          relevanceH[rh + v] = trace.hidden[hidden + v] * nextH[rh + v] + candidate;
        }
      } else {
        relevanceH.fill(candidate, rh, rh + H);
      }
    }
  }
  const rest = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let u = 0; u < H; u++) sum += relevanceH[b * H + u];
    for (let j = 0; j < lanes; j++) sum += relevanceC[b * lanes + j];
    rest[b] = sum;
  }
  const input = new Float64Array(B * T * I);
  for (let row = 0; row < B * T; row++) {
    for (let lane = 0; lane < k; lane++) {
      for (let u = 0; u < H; u++) {
        const ratio = candidateRatio[row * lanes + lane * H + u];
        if (ratio === 0) continue;
        const w = (lane * 4 * H + 3 * H + u) * I;
        for (let i = 0; i < I; i++) input[row * I + i] += ratio * weights.i2hWeight[w + i];
      }
    }
    for (let i = 0; i < I; i++) {
      input[row * I + i] = trace.x[row * I + i] * input[row * I + i] + candidateShare[row];
    }
  }
  return {
    input,
    rest,
    ...(hiddenStates === null ? {} : { hidden: hiddenStates, cell: cellStates! }),
  };
}

/**
 * The hidden state's relevance to the lanes' cells of one step (`relevanceH` is emptied into
 * `relevanceC`): all of it to the cell for one lane (the output gate is a gate); the ε-rule over
 * the lanes' terms `s·o·tanh(c)` for `k > 1`; all of it to the lane read out for the stochastic
 * variant (the lane choice is a gate).
 */
function readoutRule(
  trace: LayerTrace,
  kind: VariantKind,
  k: number,
  H: number,
  t: number,
  b: number,
  relevanceH: Float64Array,
  relevanceC: Float64Array,
  { eps, biasFactor }: EpsilonRule,
): void {
  const lanes = k * H, rh = b * H, rc = b * lanes, at = (t * trace.batch + b) * lanes;
  if (k === 1) {
    for (let u = 0; u < H; u++) relevanceC[rc + u] += relevanceH[rh + u];
  } else if (VARIANTS[kind].argmax) {
    const chosen = (t * trace.batch + b) * H;
    for (let u = 0; u < H; u++) {
      relevanceC[rc + trace.lanes![chosen + u] * H + u] += relevanceH[rh + u];
    }
  } else {
    let share = 0;
    for (let u = 0; u < H; u++) {
      let h = 0;
      for (let lane = 0; lane < k; lane++) h += trace.readout[at + lane * H + u];
      const s = sign(h);
      const ratio = relevanceH[rh + u] / (h + eps * s);
      relevanceH[rh + u] = ratio;
      share += eps * s * ratio;
    }
    share *= biasFactor / lanes;
    for (let lane = 0; lane < k; lane++) {
      for (let u = 0; u < H; u++) {
        const j = lane * H + u;
        relevanceC[rc + j] += trace.readout[at + j] * relevanceH[rh + u] + share;
      }
    }
  }
  relevanceH.fill(0, rh, rh + H);
}
