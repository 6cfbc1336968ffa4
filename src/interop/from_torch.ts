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
import type { RecurrentInit, RecurrentLayer, RecurrentResult } from "../models/recurrent.ts";
import { RNN } from "../models/rnn.ts";
import { Stacked } from "../models/stacked.ts";
import { reshape } from "../nn/functional.ts";
import { concat, split } from "../nn/layout.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import { checkTensor, type Tensor, zeros } from "../tensor.ts";
import { permuteGates } from "./gates.ts";
import { StepwiseLSTM } from "./stepwise_lstm.ts";

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
  /** Where the layers run. */
  backend?: BackendName;
  /**
   * torch's `batch_first` (default `true`): with `false`, `forward` reads `x` as `(T, B, I)`
   * and returns `output` as `(T, B, D·H)` (`hidden`, `state` keep `(L·D, B, H)`).
   */
  batchFirst?: boolean;
  /**
   * The key prefix of the recurrent module's tensors (`"encoder.rnn."` for
   * `encoder.rnn.weight_ih_l0`); found by itself when the record holds one `weight_ih_l0`.
   */
  prefix?: string;
}

/** Nested records (checkpoint dicts, `{ model_state_dict: ... }`) flattened to dotted keys. */
function flatten(record: Record<string, unknown>, into: Record<string, Tensor>, prefix = ""): void {
  for (const [key, value] of Object.entries(record)) {
    if (typeof value !== "object" || value === null) continue;
    if ("shape" in value && "data" in value) into[prefix + key] = value as Tensor;
    else flatten(value as Record<string, unknown>, into, `${prefix}${key}.`);
  }
}

/** The tensors under the recurrent module's prefix, with the prefix removed. */
function underPrefix(
  record: Record<string, Tensor>,
  given: string | undefined,
): { tensors: Record<string, Tensor>; prefix: string } {
  const candidates = Object.keys(record).filter((name) => name.endsWith("weight_ih_l0"))
    .map((name) => name.slice(0, -"weight_ih_l0".length));
  if (given !== undefined && typeof given !== "string") {
    throw new TypeError(`options.prefix must be a string, got ${describe(given)}`);
  }
  const list = candidates.map((c) => JSON.stringify(c)).join(", ");
  if (given === undefined && candidates.length !== 1) {
    const keys = Object.keys(record);
    throw new RangeError(
      candidates.length === 0
        ? `record holds no weight_ih_l0 of a torch recurrent module (its keys: ${
          keys.slice(0, 8).join(", ")
        }${keys.length > 8 ? `, ... ${keys.length} in all` : ""}); pass the module's state_dict`
        : `record holds the weights of ${candidates.length} recurrent modules (${candidates.length} ` +
          `candidates: ${candidates.join(", ")}): pass options.prefix, one of ${list}`,
    );
  }
  const prefix = given ?? candidates[0];
  if (!candidates.includes(prefix)) {
    throw new RangeError(
      `record holds no ${prefix}weight_ih_l0 (options.prefix ${JSON.stringify(prefix)}); ` +
        `its recurrent modules are under ${list || "no prefix: it holds none"}`,
    );
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, tensor] of Object.entries(record)) {
    if (name.startsWith(prefix)) tensors[name.slice(prefix.length)] = tensor;
  }
  return { tensors, prefix };
}

const GATES: Record<TorchMode, number> = { LSTM: 4, GRU: 3, RNN_TANH: 1, RNN_RELU: 1 };
const KINDS = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] as const;

/**
 * Builds the network a torch `state_dict` describes (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
 * `bias_hh_l0`, ..., `_reverse` for the backward direction): a {@linkcode Stacked} of one layer,
 * or a {@linkcode Bidirectional} pair, per torch layer. `forward(x, { hidden, state }?)` gives
 * torch's `output` `(B, T, D·H)`, `hidden` = `h_n` `(L·D, B, H)` and, for LSTM, `state` = `c_n`.
 * LSTM layers are this package's {@linkcode LSTM} with the gate blocks permuted from torch's
 * `i, f, g, o` to `f, i, o, g`; GRU and RNN layers keep torch's names. An LSTM with `proj_size`
 * (`weight_hr_l*`) is a `StepwiseLSTM` (step by step on the CPU, much slower): its `hidden` is
 * `(L·D, B, P)`, `state` `(L·D, B, H)`. The tensors are copied.
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
  const flat: Record<string, Tensor> = {};
  flatten(record, flat);
  const found = underPrefix(flat, options.prefix);
  record = found.tensors;
  const where = found.prefix === "" ? "" : ` under ${JSON.stringify(found.prefix)}`;
  const names = Object.keys(record);
  // torch's proj_size: weight_hr_l{k} (P, H), the hidden state projected to P features.
  const projection = Object.hasOwn(record, "weight_hr_l0") ? record.weight_hr_l0 : undefined;
  if (projection !== undefined) {
    checkTensor("record.weight_hr_l0", projection);
    checkShape("record.weight_hr_l0", projection.shape, [-1, -1], "(proj_size, hidden_size)");
    if (mode !== "LSTM") {
      throw new RangeError(
        `record${where} holds weight_hr_l0 [${projection.shape.join(", ")}], torch's ` +
          `proj_size, which only an LSTM has, but options.mode is ${mode}; pass mode "LSTM"`,
      );
    }
  }
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
  // torch's bias=False: no bias tensor at all; they count as zeros.
  const biased = names.some((name) => name.startsWith("bias_"));
  const kinds = [...(biased ? KINDS : KINDS.slice(0, 2)), ...(projection ? ["weight_hr"] : [])];
  const expected = new Set<string>();
  for (let n = 0; n < numLayers; n++) {
    for (const suffix of suffixes) {
      const missing = kinds.map((kind) => `${kind}_l${n}${suffix}`).filter((name) => {
        expected.add(name);
        return !Object.hasOwn(record, name);
      });
      if (missing.length > 0) {
        throw new RangeError(
          `record${where} is missing ${missing.join(", ")} (layer ${n}${
            suffix ? ", backward direction" : ""
          } of a ${numLayers}-layer ${bidirectional ? "bidirectional " : ""}${mode})`,
        );
      }
    }
  }
  const extra = names.filter((name) => !expected.has(name));
  if (extra.length > 0) {
    throw new RangeError(
      `record${where} has tensors a ${numLayers}-layer ${
        bidirectional ? "bidirectional " : ""
      }${mode} does not: ${extra.join(", ")}; check options.mode, options.numLayers and ` +
        `options.bidirectional`,
    );
  }
  checkTensor("record.weight_hh_l0", record.weight_hh_l0);
  checkTensor("record.weight_ih_l0", record.weight_ih_l0);
  // H: the cell's width; R: what recurs and what the next layer reads (P with proj_size).
  const H = projection?.shape[1] ?? record.weight_hh_l0.shape[1], G = GATES[mode] * H;
  const R = projection?.shape[0] ?? H;
  const blocks = record.weight_ih_l0.shape[0] / H;
  if (blocks !== GATES[mode]) {
    const holds = blocks === 4 ? "an LSTM" : blocks === 3 ? "a GRU" : blocks === 1 ? "an RNN" : "";
    throw new RangeError(
      `record.weight_ih_l0 has the wrong shape: expected (${G}, ${
        record.weight_ih_l0.shape[1]
      }), got [${record.weight_ih_l0.shape.join(", ")}]${where}: ${blocks} gate blocks of ${H} ` +
        `hidden units${holds ? `, ${holds}'s` : ""}, but options.mode is ${mode} (${
          GATES[mode]
        } blocks); pass the mode the file was saved from`,
    );
  }
  const layers: RecurrentLayer[] = [];
  for (let n = 0; n < numLayers; n++) {
    const I = n === 0 ? record.weight_ih_l0.shape[1] : suffixes.length * R;
    const directions = suffixes.map((suffix) => {
      const shapes = {
        weight_ih: [G, I],
        weight_hh: [G, R],
        bias_ih: [G],
        bias_hh: [G],
        weight_hr: [R, H],
      };
      const present = projection === undefined ? KINDS : [...KINDS, "weight_hr" as const];
      const tensors = Object.fromEntries(present.map((kind) => {
        const name = `${kind}_l${n}${suffix}`;
        if (!biased && kind.startsWith("bias")) return [kind, zeros([G])];
        checkTensor(`record.${name}`, record[name]);
        checkShape(
          `record.${name}`,
          record[name].shape,
          shapes[kind],
          `(${shapes[kind].join(", ")})`,
        );
        return [kind, record[name]];
      })) as LayerTensors;
      return layerOf(mode, I, H, tensors, backend);
    });
    layers.push(
      directions.length === 2 ? new Bidirectional(directions[0], directions[1]) : directions[0],
    );
  }
  if (options.batchFirst === false) return new SequenceFirst(layers);
  if (options.batchFirst !== undefined && options.batchFirst !== true) {
    throw new TypeError(
      `options.batchFirst must be a boolean, got ${describe(options.batchFirst)}`,
    );
  }
  return new Stacked(layers);
}

/** `(T, B, F)` as `(B, T, F)` and back: axes 0 and 1 swapped. */
function swapSteps(x: Tensor): TrackedTensor {
  const [first, second, F] = x.shape;
  const parts = split(x, new Array(second).fill(1), 1);
  return concat(parts.map((part) => reshape(part, [1, first, F])), 0);
}

/**
 * torch's `batch_first=False` network: a {@linkcode Stacked} whose `forward` reads `(T, B, I)`
 * and returns `output` `(T, B, D·H)`. (`saveModel` saves its layers as `new Stacked(net.layers)`.)
 */
class SequenceFirst extends Stacked {
  /** Runs `x` `(T, B, I)`; `output` is `(T, B, D·H)`, `hidden` and `state` torch's. */
  override async forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult> {
    checkTensor("x", x);
    checkShape(
      "x",
      x.shape,
      [-1, -1, this.inputSize],
      "(seqLen, batch, inputSize): batchFirst is false",
    );
    const result = await super.forward(swapSteps(x), init);
    return { ...result, output: swapSteps(result.output) };
  }
}

/** One direction's tensors: `weight_hr` with torch's `proj_size`. */
type LayerTensors = Record<(typeof KINDS)[number], Tensor> & { weight_hr?: Tensor };

function layerOf(
  mode: TorchMode,
  I: number,
  H: number,
  tensors: LayerTensors,
  backend: BackendName | undefined,
): RecurrentLayer {
  if (tensors.weight_hr !== undefined) {
    const lstm = new StepwiseLSTM(I, H, {
      projSize: tensors.weight_hr.shape[0],
      recurrentBias: true,
    });
    lstm.loadStateDict({
      "input.weight": tensors.weight_ih,
      "input.bias": tensors.bias_ih,
      "recurrent.weight": tensors.weight_hh,
      "recurrent.bias": tensors.bias_hh,
      "projection.weight": tensors.weight_hr,
    });
    return lstm;
  }
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
