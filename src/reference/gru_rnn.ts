/**
 * The reference of torch's `nn.GRU` and `nn.RNN` cells over whole sequences, batch first, in
 * float64: the forward trace and backpropagation through time.
 *
 * - GRU, gate blocks `r, z, n`: `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` likewise,
 *   `n = tanh(W_in x + b_in + r·(W_hn h + b_hn))`, `h' = (1 − z)·n + z·h`.
 * - RNN: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (or `relu`).
 *
 * @module
 */

import type {
  CellParameters,
  CellSpec,
  InputGradients,
  OutputGradients,
  SequenceInput,
  SequenceOutput,
} from "../contract/types.ts";
import type { VariantKind } from "../variants.ts";

/** Which torch cell: `"gru"`, or an `nn.RNN` with its nonlinearity. */
export type TorchCellKind = "gru" | "rnn_tanh" | "rnn_relu";

/** Gate blocks per kind: 3 for GRU, 1 for RNN. */
export function gateBlocks(kind: TorchCellKind): number {
  return kind === "gru" ? 3 : 1;
}

/** Parameters in torch's layout (`nn.GRUCell` / `nn.RNNCell` names). */
export interface TorchCellParameters {
  /** `weight_ih` `(G·H, I)`. */
  readonly weightIh: Float32Array;
  /** `weight_hh` `(G·H, H)`. */
  readonly weightHh: Float32Array;
  /** `bias_ih` `(G·H)`. */
  readonly biasIh: Float32Array;
  /** `bias_hh` `(G·H)`. */
  readonly biasHh: Float32Array;
}

/** The forward's trace: what the backward reads again. */
export interface TorchCellTrace {
  /** Hidden states `h_0 … h_T`, `(T + 1, B, H)`, float64. */
  readonly hiddens: Float64Array;
  /** GRU: `r, z, n` and `W_hn h + b_hn` per step, `(T, B, 4H)`; RNN: empty. */
  readonly gates: Float64Array;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** `out[g] = bias[g] + Σ_i w[g, i]·v[i]` for one row `v`. */
function affine(
  w: Float32Array,
  bias: Float32Array,
  v: ArrayLike<number>,
  offset: number,
  width: number,
  out: Float64Array,
): void {
  for (let g = 0; g < out.length; g++) {
    let total = bias[g];
    for (let i = 0; i < width; i++) total += w[g * width + i] * v[offset + i];
    out[g] = total;
  }
}

/**
 * Runs a sequence: `x` `(B, T, I)`, `h0` `(B, H)`; returns the trace (outputs are
 * `hiddens[1..]`).
 */
export function torchCellForward(
  kind: TorchCellKind,
  params: TorchCellParameters,
  sizes: { batch: number; seqLen: number; inputSize: number; hiddenSize: number },
  x: Float32Array,
  h0: Float32Array,
): TorchCellTrace {
  const { batch: B, seqLen: T, inputSize: I, hiddenSize: H } = sizes;
  const G = gateBlocks(kind) * H;
  const hiddens = new Float64Array((T + 1) * B * H);
  hiddens.set(h0);
  const gates = new Float64Array(kind === "gru" ? T * B * 4 * H : 0);
  const gi = new Float64Array(G), gh = new Float64Array(G);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const prev = (t * B + b) * H, next = ((t + 1) * B + b) * H;
      affine(params.weightIh, params.biasIh, x, (b * T + t) * I, I, gi);
      affine(params.weightHh, params.biasHh, hiddens, prev, H, gh);
      for (let u = 0; u < H; u++) {
        if (kind === "gru") {
          const r = sigmoid(gi[u] + gh[u]);
          const z = sigmoid(gi[H + u] + gh[H + u]);
          const n = Math.tanh(gi[2 * H + u] + r * gh[2 * H + u]);
          hiddens[next + u] = (1 - z) * n + z * hiddens[prev + u];
          const at = ((t * B + b) * 4) * H;
          gates[at + u] = r;
          gates[at + H + u] = z;
          gates[at + 2 * H + u] = n;
          gates[at + 3 * H + u] = gh[2 * H + u];
        } else {
          const a = gi[u] + gh[u];
          hiddens[next + u] = kind === "rnn_tanh" ? Math.tanh(a) : Math.max(0, a);
        }
      }
    }
  }
  return { hiddens, gates };
}

/** Gradients of a sequence, float64: parameters by torch name, `x`, `h0`. */
export interface TorchCellGradients {
  readonly weightIh: Float64Array;
  readonly weightHh: Float64Array;
  readonly biasIh: Float64Array;
  readonly biasHh: Float64Array;
  readonly x: Float64Array;
  readonly h0: Float64Array;
}

/**
 * Backpropagation through time from dLoss/d `output` `(B, T, H)` and dLoss/d the final hidden
 * state `(B, H)` (either may be `null`).
 */
export function torchCellBackward(
  kind: TorchCellKind,
  params: TorchCellParameters,
  sizes: { batch: number; seqLen: number; inputSize: number; hiddenSize: number },
  x: Float32Array,
  trace: TorchCellTrace,
  dOutput: Float32Array | Float64Array | null,
  dHidden: Float32Array | Float64Array | null,
): TorchCellGradients {
  const { batch: B, seqLen: T, inputSize: I, hiddenSize: H } = sizes;
  const G = gateBlocks(kind) * H;
  const grads = {
    weightIh: new Float64Array(G * I),
    weightHh: new Float64Array(G * H),
    biasIh: new Float64Array(G),
    biasHh: new Float64Array(G),
    x: new Float64Array(B * T * I),
    h0: new Float64Array(B * H),
  };
  const { hiddens, gates } = trace;
  let carry = new Float64Array(B * H);
  if (dHidden !== null) carry.set(dHidden);
  const dgi = new Float64Array(G), dgh = new Float64Array(G);
  for (let t = T - 1; t >= 0; t--) {
    const previous = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      const prev = (t * B + b) * H, next = ((t + 1) * B + b) * H;
      for (let u = 0; u < H; u++) {
        const dh = carry[b * H + u] + (dOutput === null ? 0 : dOutput[(b * T + t) * H + u]);
        if (kind === "gru") {
          const at = ((t * B + b) * 4) * H;
          const r = gates[at + u], z = gates[at + H + u], n = gates[at + 2 * H + u];
          const hn = gates[at + 3 * H + u];
          const dn = dh * (1 - z) * (1 - n * n);
          const dz = dh * (hiddens[prev + u] - n) * z * (1 - z);
          const dr = dn * hn * r * (1 - r);
          previous[b * H + u] += dh * z;
          dgi[u] = dgh[u] = dr;
          dgi[H + u] = dgh[H + u] = dz;
          dgi[2 * H + u] = dn;
          dgh[2 * H + u] = dn * r;
        } else {
          const h = hiddens[next + u];
          dgi[u] = dgh[u] = dh * (kind === "rnn_tanh" ? 1 - h * h : h > 0 ? 1 : 0);
        }
      }
      const xAt = (b * T + t) * I;
      for (let g = 0; g < G; g++) {
        grads.biasIh[g] += dgi[g];
        grads.biasHh[g] += dgh[g];
        for (let i = 0; i < I; i++) {
          grads.weightIh[g * I + i] += dgi[g] * x[xAt + i];
          grads.x[xAt + i] += dgi[g] * params.weightIh[g * I + i];
        }
        for (let j = 0; j < H; j++) {
          grads.weightHh[g * H + j] += dgh[g] * hiddens[prev + j];
          previous[b * H + j] += dgh[g] * params.weightHh[g * H + j];
        }
      }
    }
    carry = previous;
  }
  grads.h0.set(carry);
  return grads;
}

/**
 * Backpropagation through time of a GRU or RNN cell spec of the backend contract, in float64,
 * with the gradients under torch's parameter names: what {@linkcode backward} (`backward.ts`)
 * runs for these kinds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { torchBackward } from "./gru_rnn.ts";
 * const z = (n: number) => new Float32Array(n);
 * const grads = torchBackward(
 *   {
 *     variant: { kind: "rnn_tanh", k: 1, maxPooling: false },
 *     inputSize: 1,
 *     hiddenSize: 1,
 *     params: { i2hWeight: Float32Array.of(1), i2hBias: z(1), h2hWeight: z(1), h2hBias: z(1), i2aWeight: null, i2aBias: null },
 *   },
 *   { batch: 1, seqLen: 1, x: Float32Array.of(0.5), hidden: z(1), state: z(0) },
 *   { output: Float32Array.of(1) },
 * );
 * assert.ok(Math.abs(grads.params.weight_ih[0] - 0.5 * (1 - Math.tanh(0.5) ** 2)) < 1e-12);
 * ```
 */
export function torchBackward(
  spec: CellSpec,
  input: SequenceInput,
  grads: OutputGradients,
): InputGradients {
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
    grads.output,
    grads.hidden ?? null,
  );
  return {
    params: { weight_ih: g.weightIh, bias_ih: g.biasIh, weight_hh: g.weightHh, bias_hh: g.biasHh },
    x: g.x,
    hidden: g.h0,
    state: new Float64Array(0),
  };
}

/**
 * Runs a GRU or RNN cell spec of the backend contract (`kind` `"gru"`, `"rnn_tanh"` or
 * `"rnn_relu"`; torch's `weight_ih`/`bias_ih` in `i2h`, `weight_hh`/`bias_hh` in `h2h`) in
 * float64, with the results rounded to float32: the js backend and the oracle of the kernels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runTorchSequence } from "./gru_rnn.ts";
 * const z = (n: number) => new Float32Array(n);
 * const { output, state } = runTorchSequence(
 *   {
 *     variant: { kind: "rnn_tanh", k: 1, maxPooling: false },
 *     inputSize: 1,
 *     hiddenSize: 1,
 *     params: { i2hWeight: Float32Array.of(1), i2hBias: z(1), h2hWeight: z(1), h2hBias: z(1), i2aWeight: null, i2aBias: null },
 *   },
 *   { batch: 1, seqLen: 1, x: Float32Array.of(0.5), hidden: z(1), state: z(0) },
 * );
 * assert.ok(Math.abs(output[0] - Math.tanh(0.5)) < 1e-7);
 * assert.equal(state.length, 0);
 * ```
 */
export function runTorchSequence(spec: CellSpec, input: SequenceInput): SequenceOutput {
  const { batch: B, seqLen: T } = input, H = spec.hiddenSize;
  const { hiddens } = torchCellForward(
    torchKind(spec.variant.kind),
    torchParameters(spec.params),
    { batch: B, seqLen: T, inputSize: spec.inputSize, hiddenSize: H },
    input.x,
    input.hidden,
  );
  const output = new Float32Array(B * T * H);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      output.set(
        hiddens.subarray(((t + 1) * B + b) * H, ((t + 1) * B + b + 1) * H),
        (b * T + t) * H,
      );
    }
  }
  return {
    output,
    hidden: Float32Array.from(hiddens.subarray(T * B * H)),
    state: new Float32Array(0),
  };
}

/**
 * The torch cell of a contract variant kind.
 *
 * @throws {TypeError} For a kind of the LSTM family.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { torchKind } from "./gru_rnn.ts";
 * assert.equal(torchKind("gru"), "gru");
 * assert.throws(() => torchKind("lstm"), TypeError);
 * ```
 */
export function torchKind(kind: VariantKind): TorchCellKind {
  if (kind === "gru" || kind === "rnn_tanh" || kind === "rnn_relu") return kind;
  throw new TypeError(`kind must be "gru", "rnn_tanh" or "rnn_relu", got ${JSON.stringify(kind)}`);
}

/**
 * A contract spec's parameters under torch's names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { torchParameters } from "./gru_rnn.ts";
 * const w = new Float32Array(1);
 * const p = torchParameters({ i2hWeight: w, i2hBias: w, h2hWeight: w, h2hBias: w, i2aWeight: null, i2aBias: null });
 * assert.equal(p.weightIh, w);
 * ```
 */
export function torchParameters(params: CellParameters): TorchCellParameters {
  return {
    weightIh: params.i2hWeight,
    weightHh: params.h2hWeight,
    biasIh: params.i2hBias,
    biasHh: params.h2hBias,
  };
}
