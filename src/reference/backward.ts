/**
 * Backpropagation through time for every variant, in float64 on the TypeScript path: the gradient
 * oracle that training on the fast backends will be checked against. Internal API (not exported
 * from `mod.ts`); tested against the reference's gradients and against finite differences.
 *
 * @module
 */

import type { CellSpec, InputGradients, OutputGradients, SequenceInput } from "../contract.ts";
import { type FloatArray, gate, gateSlope, selectedLane, sigmoid } from "./cell.ts";
import { newTrace, runSequence } from "./sequence.ts";
import { checkShape } from "../errors.ts";

export type { InputGradients, OutputGradients };

/**
 * Runs the forward in float64, keeping its activations, and back-propagates `grads` through all
 * steps. Follows the reference's autograd exactly: the stochastic argmax and the max pooling pass
 * gradient only to the selected (first maximal) lane.
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
  const { variant: { kind, k, maxPooling }, inputSize: I, hiddenSize: H, params } = spec;
  const activation = spec.variant.recurrentActivation ?? "sigmoid";
  const { batch: B, seqLen: T, x } = input;
  checkShape("grads.output", [grads.output.length], [B * T * H], "B·T·H elements");
  if (grads.hidden) checkShape("grads.hidden", [grads.hidden.length], [B * H], "B·H elements");
  if (grads.state) checkShape("grads.state", [grads.state.length], [k * B * H], "k·B·H elements");
  const trace = newTrace();
  runSequence(spec, input, Float64Array, trace);

  const gates = 4 * k * H, size = B * H, attention = kind === "attention";
  const dI2hWeight = new Float64Array(gates * I);
  const dH2hWeight = new Float64Array(gates * H);
  const dBias = new Float64Array(gates);
  const dI2aWeight = new Float64Array(attention ? k * H * I : 0);
  const dI2aBias = new Float64Array(attention ? k * H : 0);
  const dx = new Float64Array(B * T * I);
  let dHidden = Float64Array.from(grads.hidden ?? new Float64Array(size));
  const dState = Float64Array.from(grads.state ?? new Float64Array(k * size));
  const dz = new Float64Array(B * gates);
  const dWeights = new Float64Array(B * k * H);

  for (let t = T - 1; t >= 0; t--) {
    for (let i = 0; i < size; i++) {
      dHidden[i] += grads.output[(Math.floor(i / H) * T + t) * H + (i % H)];
    }
    const z = trace.z[t], previous = trace.states[t], cells = trace.states[t + 1];
    const outputGates = trace.outputGates[t];
    const weights = attention ? trace.weights[t] : null;
    // The readout: which lanes receive dh, and through which output gate and cell.
    const dOutputGates = new Float64Array(k * size);
    for (let i = 0; i < size; i++) {
      const first = kind === "stochastic" ? selectedLane(outputGates, k, size, i) : 0;
      const last = kind === "stochastic" ? first : k - 1;
      for (let lane = first; lane <= last; lane++) {
        const cell = lane * size + i;
        const tanhCell = Math.tanh(cells[cell]);
        dOutputGates[cell] = dHidden[i] * tanhCell;
        dState[cell] += dHidden[i] * outputGates[cell] * (1 - tanhCell * tanhCell);
      }
    }
    dWeights.fill(0);
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
          const keep = attention ? 1 - scale * forget : forget;
          const dKeep = dCell * previous[cell];
          // The gradients below are with respect to the scaled gates (scale·σ(z)).
          const dForget = attention ? -dKeep : dKeep;
          const dInput = dCell * candidate;
          const dOutput = dOutputGates[cell];
          dState[cell] = dCell * keep;
          dz[row + u] = dForget * scale * gateSlope(activation, z[row + u]);
          dz[row + H + u] = dInput * scale * gateSlope(activation, z[row + H + u]);
          dz[row + 2 * H + u] = dOutput * scale * gateSlope(activation, z[row + 2 * H + u]);
          dz[row + 3 * H + u] = dCell * scale * input * (1 - candidate * candidate);
          if (weights !== null) {
            dWeights[(b * k + lane) * H + u] = dForget * forget + dInput * input + dOutput * output;
          }
        }
      }
    }
    // Parameters and inputs through the pre-activations.
    const hidden = trace.hiddens[t];
    const nextDHidden = new Float64Array(size);
    for (let b = 0; b < B; b++) {
      const xRow = (b * T + t) * I;
      for (let g = 0; g < gates; g++) {
        const d = dz[b * gates + g];
        if (d === 0) continue;
        dBias[g] += d;
        for (let i = 0; i < I; i++) {
          dI2hWeight[g * I + i] += d * x[xRow + i];
          dx[xRow + i] += d * params.i2hWeight[g * I + i];
        }
        for (let h = 0; h < H; h++) {
          dH2hWeight[g * H + h] += d * hidden[b * H + h];
          nextDHidden[b * H + h] += d * params.h2hWeight[g * H + h];
        }
      }
    }
    if (attention) {
      backwardAttention(
        trace.attentionPreActivations[t],
        dWeights,
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

/** Back through `s = softmax_k(σ(a))` (and the max pooling) into `i2a` and `x` at step `t`. */
function backwardAttention(
  preActivation: FloatArray,
  dWeights: Float64Array,
  sizes: { B: number; T: number; I: number; H: number; k: number; t: number; maxPooling: boolean },
  x: FloatArray,
  i2aWeight: FloatArray,
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
