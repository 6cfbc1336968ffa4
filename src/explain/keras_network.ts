/**
 * The network of the TF2 "LRP for LSTMs" implementation from its weight list, in Keras layout.
 *
 * @module
 */

import type { BackendName } from "../contract/mod.ts";
import { describe } from "../errors.ts";
import { Bidirectional } from "../models/bidirectional.ts";
import type { LSTM } from "../models/lstm.ts";
import type { Linear } from "../nn/linear.ts";
import { importKerasDense, importKerasLSTM } from "../interop/keras_import.ts";
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

  const backend = options.backend === undefined ? {} : { backend: options.backend };
  const forward = importKerasLSTM(
    { kernel: named.W_x, recurrentKernel: named.W_h, bias: named.b },
    backend,
  );
  const network = directions === 2
    ? new Bidirectional(
      forward,
      importKerasLSTM(
        {
          kernel: named.W_x_backward!,
          recurrentKernel: named.W_h_backward!,
          bias: named.b_backward!,
        },
        backend,
      ),
    )
    : forward;
  const dense = importKerasDense({
    kernel: named.W_dense,
    bias: named.b_dense ?? { shape: [C], data: new Float32Array(C) },
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
