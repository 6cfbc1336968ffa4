/**
 * `fromTorch`: a `torch.nn.LSTM` / `GRU` / `RNN` `state_dict` as a network of this package's
 * layers, with torch's result layouts.
 *
 * @module
 */

import type { BackendName } from "../contract/mod.ts";
import { checkShape, describe } from "../errors.ts";
import { Bidirectional } from "../models/bidirectional.ts";
import { GRU } from "../models/gru.ts";
import { LSTM } from "../models/lstm.ts";
import type { RecurrentLayer } from "../models/recurrent.ts";
import { RNN } from "../models/rnn.ts";
import { Stacked } from "../models/stacked.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { permuteGates } from "./gates.ts";

/** torch's `nn.RNNBase` modes. */
export type TorchMode = "LSTM" | "GRU" | "RNN_TANH" | "RNN_RELU";

/** Options of {@linkcode fromTorch}. */
export interface FromTorchOptions {
  /** Which torch module the record is from. */
  mode: TorchMode;
  /** torch's `num_layers`; counted from the record when omitted. */
  numLayers?: number;
  /** torch's `bidirectional`; read from the record (`_reverse` tensors) when omitted. */
  bidirectional?: boolean;
  /** Where the layers run (GRU and RNN compute on the TypeScript reference everywhere). */
  backend?: BackendName;
}

const GATES: Record<TorchMode, number> = { LSTM: 4, GRU: 3, RNN_TANH: 1, RNN_RELU: 1 };
const KINDS = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] as const;

/**
 * Builds the network a torch `state_dict` describes (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
 * `bias_hh_l0`, ..., `_reverse` for the backward direction): a {@linkcode Stacked} of one layer,
 * or a {@linkcode Bidirectional} pair, per torch layer. `forward(x, { hidden, state }?)` gives
 * torch's `output` `(B, T, D·H)`, `hidden` = `h_n` `(L·D, B, H)` and, for LSTM, `state` = `c_n`.
 * LSTM layers are this package's {@linkcode LSTM} with the gate blocks permuted from torch's
 * `i, f, g, o` to `f, i, o, g`; GRU and RNN layers keep torch's names. The tensors are copied.
 *
 * @throws {RangeError} If a tensor is missing, unexpected or misshaped (naming it and both
 *   shapes).
 *
 * @example A one-layer torch LSTM
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromTorch, randn } from "../../mod.ts";
 * const H = 3, I = 2;
 * const net = fromTorch({
 *   weight_ih_l0: randn([4 * H, I], { seed: 1 }),
 *   weight_hh_l0: randn([4 * H, H], { seed: 2 }),
 *   bias_ih_l0: randn([4 * H], { seed: 3 }),
 *   bias_hh_l0: randn([4 * H], { seed: 4 }),
 * }, { mode: "LSTM", backend: "js" });
 * const { output, hidden, state } = await net.forward(randn([5, 7, I], { seed: 5 }));
 * assert.deepEqual([output.shape, hidden.shape, state?.shape], [[5, 7, 3], [1, 5, 3], [1, 5, 3]]);
 * ```
 */
export function fromTorch(record: Record<string, Tensor>, options: FromTorchOptions): Stacked {
  if (typeof record !== "object" || record === null) {
    throw new TypeError(
      `record must be an object of tensors (a state_dict), got ${describe(record)}`,
    );
  }
  if (typeof options !== "object" || options === null || !(options.mode in GATES)) {
    throw new TypeError(
      `options.mode must be one of "LSTM", "GRU", "RNN_TANH", "RNN_RELU", got ${
        describe(options?.mode)
      }`,
    );
  }
  const { mode, backend } = options;
  const names = Object.keys(record);
  const numLayers = options.numLayers ??
    names.filter((name) => /^weight_ih_l\d+$/.test(name)).length;
  if (!Number.isInteger(numLayers) || numLayers < 1) {
    throw new RangeError(
      `options.numLayers must be a positive integer, got ${
        describe(options.numLayers ?? numLayers)
      }` +
        (options.numLayers === undefined ? " (the record holds no weight_ih_l0)" : ""),
    );
  }
  const bidirectional = options.bidirectional ?? names.some((name) => name.endsWith("_reverse"));
  const suffixes = bidirectional ? ["", "_reverse"] : [""];
  const expected = new Set<string>();
  for (let n = 0; n < numLayers; n++) {
    for (const suffix of suffixes) {
      const missing = KINDS.map((kind) => `${kind}_l${n}${suffix}`).filter((name) => {
        expected.add(name);
        return !Object.hasOwn(record, name);
      });
      if (missing.length > 0) {
        throw new RangeError(
          `record is missing ${missing.join(", ")} (layer ${n}${
            suffix ? ", backward direction" : ""
          } of a ${numLayers}-layer ${bidirectional ? "bidirectional " : ""}${mode})`,
        );
      }
    }
  }
  const extra = names.filter((name) => !expected.has(name));
  if (extra.length > 0) {
    throw new RangeError(
      `record has tensors a ${numLayers}-layer ${bidirectional ? "bidirectional " : ""}${mode} ` +
        `does not: ${extra.join(", ")}; check options.numLayers and options.bidirectional`,
    );
  }
  checkTensor("record.weight_hh_l0", record.weight_hh_l0);
  checkTensor("record.weight_ih_l0", record.weight_ih_l0);
  const H = record.weight_hh_l0.shape[1], G = GATES[mode] * H;
  const layers: RecurrentLayer[] = [];
  for (let n = 0; n < numLayers; n++) {
    const I = n === 0 ? record.weight_ih_l0.shape[1] : suffixes.length * H;
    const directions = suffixes.map((suffix) => {
      const shapes = { weight_ih: [G, I], weight_hh: [G, H], bias_ih: [G], bias_hh: [G] };
      const tensors = Object.fromEntries(KINDS.map((kind) => {
        const name = `${kind}_l${n}${suffix}`;
        checkTensor(`record.${name}`, record[name]);
        checkShape(
          `record.${name}`,
          record[name].shape,
          shapes[kind],
          `(${shapes[kind].join(", ")})`,
        );
        return [kind, record[name]];
      })) as Record<(typeof KINDS)[number], Tensor>;
      return layerOf(mode, I, H, tensors, backend);
    });
    layers.push(
      directions.length === 2 ? new Bidirectional(directions[0], directions[1]) : directions[0],
    );
  }
  return new Stacked(layers);
}

function layerOf(
  mode: TorchMode,
  I: number,
  H: number,
  tensors: Record<(typeof KINDS)[number], Tensor>,
  backend: BackendName | undefined,
): RecurrentLayer {
  if (mode === "LSTM") {
    const lstm = new LSTM(I, H, { backend });
    lstm.loadStateDict({
      "i2h.weight": permuteGates(tensors.weight_ih),
      "i2h.bias": permuteGates(tensors.bias_ih),
      "h2h.weight": permuteGates(tensors.weight_hh),
      "h2h.bias": permuteGates(tensors.bias_hh),
    });
    return lstm;
  }
  const layer = mode === "GRU"
    ? new GRU(I, H, { backend })
    : new RNN(I, H, { backend, nonlinearity: mode === "RNN_TANH" ? "tanh" : "relu" });
  layer.loadStateDict(tensors);
  return layer;
}
