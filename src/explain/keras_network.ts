/**
 * The network of the TF2 "LRP for LSTMs" implementation from its weight list, in Keras layout.
 *
 * @module
 */

import type { BackendName } from "../contract.ts";
import { describe } from "../errors.ts";
import { Bidirectional } from "../models/bidirectional.ts";
import { LSTM } from "../models/lstm.ts";
import { Linear } from "../nn/linear.ts";
import { checkTensor, type Tensor } from "../tensor.ts";

/**
 * The weights of a (bi-directional) LSTM and a dense layer, as Keras stores them: gate quarters
 * in the order input, forget, cell (candidate), output; `gates = x·W_x + h·W_h + b`.
 */
export interface KerasLrpWeights {
  /** Forward LSTM kernel `(I, 4H)`. */
  W_x: Tensor;
  /** Forward LSTM recurrent kernel `(H, 4H)`. */
  W_h: Tensor;
  /** Forward LSTM bias `(4H)`. */
  b: Tensor;
  /** Backward LSTM kernel `(I, 4H)`; all three backward entries, or none (one direction). */
  W_x_backward?: Tensor;
  /** Backward LSTM recurrent kernel `(H, 4H)`. */
  W_h_backward?: Tensor;
  /** Backward LSTM bias `(4H)`. */
  b_backward?: Tensor;
  /** Dense kernel `(D·H, C)`: rows `[0, H)` read the forward LSTM, `[H, 2H)` the backward one. */
  W_dense: Tensor;
  /** Dense bias `(C)`; zeros when absent. */
  b_dense?: Tensor;
}

/** The order of the TF2 implementation's weight list. */
const LIST_ORDER = [
  "W_x",
  "W_h",
  "b",
  "W_x_backward",
  "W_h_backward",
  "b_backward",
  "W_dense",
  "b_dense",
] as const;

/** Keras quarter of each of this package's gate quarters (forget, input, output, candidate). */
const KERAS_QUARTER = [1, 0, 3, 2];

/**
 * Builds the network the TF2 "LRP for LSTMs" code explains, in one call: a `Bidirectional` pair
 * of `LSTM`s (or one `LSTM` without backward weights) and the dense `Linear` on their final
 * hidden states, ready for {@linkcode lrp}. Takes the weights by name, or as the TF2 list
 * `[W_x, W_h, b, W_x_backward, W_h_backward, b_backward, W_dense, b_dense]`.
 *
 * @param weights The Keras-layout weights.
 * @param options The backend of the LSTMs.
 * @throws {RangeError} Naming the entry whose shape is wrong, with the expected shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kerasLrpNetwork, lrp, randn, zeros } from "../../mod.ts";
 * const [I, H, C] = [3, 4, 2];
 * const { network, dense } = kerasLrpNetwork({
 *   W_x: randn([I, 4 * H], { seed: 1 }), W_h: randn([H, 4 * H], { seed: 2 }), b: zeros([4 * H]),
 *   W_dense: randn([H, C], { seed: 3 }),
 * }, { backend: "js" });
 * const { relevance } = await lrp(network, dense, randn([1, 5, I], { seed: 4 }));
 * assert.deepEqual(relevance.shape, [1, 5, I]);
 * ```
 */
export function kerasLrpNetwork(
  weights: KerasLrpWeights | readonly Tensor[],
  options: { backend?: BackendName } = {},
): { network: LSTM | Bidirectional; dense: Linear } {
  const named = Array.isArray(weights)
    ? listToNames(weights as readonly Tensor[])
    : weights as KerasLrpWeights;
  if (typeof named !== "object" || named === null) {
    throw new TypeError(`weights must be an object or a list of tensors, got ${describe(named)}`);
  }
  for (const name of LIST_ORDER) {
    if (named[name] !== undefined) checkTensor(`weights.${name}`, named[name]);
  }
  checkTensor("weights.W_h", named.W_h);
  const H = named.W_h.shape[0];
  checkTensor("weights.W_x", named.W_x);
  const I = named.W_x.shape[0];
  const present = (["W_x_backward", "W_h_backward", "b_backward"] as const).filter((name) =>
    named[name] !== undefined
  );
  if (present.length !== 0 && present.length !== 3) {
    throw new TypeError(
      `weights must have all of W_x_backward, W_h_backward, b_backward or none, got only ` +
        present.join(", "),
    );
  }
  const directions = present.length === 3 ? 2 : 1;
  checkEntry("W_x", named.W_x, [I, 4 * H], "(inputSize, 4·hiddenSize)");
  checkEntry("W_h", named.W_h, [H, 4 * H], "(hiddenSize, 4·hiddenSize)");
  checkEntry("b", named.b, [4 * H], "(4·hiddenSize)");
  if (directions === 2) {
    checkEntry("W_x_backward", named.W_x_backward!, [I, 4 * H], "(inputSize, 4·hiddenSize)");
    checkEntry("W_h_backward", named.W_h_backward!, [H, 4 * H], "(hiddenSize, 4·hiddenSize)");
    checkEntry("b_backward", named.b_backward!, [4 * H], "(4·hiddenSize)");
  }
  checkTensor("weights.W_dense", named.W_dense);
  const C = named.W_dense.shape[1];
  checkEntry(
    "W_dense",
    named.W_dense,
    [directions * H, C],
    directions === 2 ? "(2·hiddenSize, classes)" : "(hiddenSize, classes)",
  );
  if (named.b_dense !== undefined) checkEntry("b_dense", named.b_dense, [C], "(classes)");

  const backend = options.backend;
  const forward = kerasLSTM(named.W_x, named.W_h, named.b, backend);
  const network = directions === 2
    ? new Bidirectional(
      forward,
      kerasLSTM(named.W_x_backward!, named.W_h_backward!, named.b_backward!, backend),
    )
    : forward;
  const D = directions * H;
  const dense = new Linear(D, C);
  const denseWeight = new Float32Array(C * D);
  for (let d = 0; d < D; d++) {
    for (let c = 0; c < C; c++) denseWeight[c * D + d] = named.W_dense.data[d * C + c];
  }
  dense.loadStateDict({
    weight: { shape: [C, D], data: denseWeight },
    bias: { shape: [C], data: named.b_dense?.data.slice() ?? new Float32Array(C) },
  });
  return { network, dense };
}

function listToNames(list: readonly Tensor[]): KerasLrpWeights {
  if (list.length !== 8) {
    throw new RangeError(
      `weights as a list must have the TF2 implementation's 8 entries [${
        LIST_ORDER.join(", ")
      }], got ${list.length}: pass an object by name for one direction`,
    );
  }
  return Object.fromEntries(
    LIST_ORDER.map((name, i) => [name, list[i]]),
  ) as unknown as KerasLrpWeights;
}

function checkEntry(name: string, value: Tensor, shape: number[], meaning: string): void {
  const fits = value.shape.length === shape.length && value.shape.every((s, i) => s === shape[i]);
  if (!fits) {
    throw new RangeError(
      `weights.${name} must have shape ${meaning} = ${describe(shape)} (hiddenSize from W_h, ` +
        `inputSize from W_x), got ${describe(value.shape)}`,
    );
  }
}

/** An `LSTM` from Keras' `kernel (I, 4H)`, `recurrent_kernel (H, 4H)`, `bias (4H)`. */
function kerasLSTM(
  kernel: Tensor,
  recurrent: Tensor,
  bias: Tensor,
  backend: BackendName | undefined,
): LSTM {
  const I = kernel.shape[0], H = recurrent.shape[0];
  const lstm = new LSTM(I, H, backend === undefined ? {} : { backend });
  const rows = (matrix: Tensor, inner: number) => {
    const out = new Float32Array(4 * H * inner);
    for (let q = 0; q < 4; q++) {
      for (let u = 0; u < H; u++) {
        const column = KERAS_QUARTER[q] * H + u;
        for (let i = 0; i < inner; i++) {
          out[(q * H + u) * inner + i] = matrix.data[i * 4 * H + column];
        }
      }
    }
    return out;
  };
  const i2hBias = new Float32Array(4 * H);
  for (let q = 0; q < 4; q++) {
    i2hBias.set(bias.data.subarray(KERAS_QUARTER[q] * H, (KERAS_QUARTER[q] + 1) * H), q * H);
  }
  lstm.loadStateDict({
    "i2h.weight": { shape: [4 * H, I], data: rows(kernel, I) },
    "i2h.bias": { shape: [4 * H], data: i2hBias },
    "h2h.weight": { shape: [4 * H, H], data: rows(recurrent, H) },
    "h2h.bias": { shape: [4 * H], data: new Float32Array(4 * H) },
  });
  return lstm;
}
