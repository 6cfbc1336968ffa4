/**
 * Foreign weight files: recognising safetensors, torch and Keras files, and mapping a torch
 * `nn.LSTM` or a Keras `LSTM` layer onto this package's `LSTM` (gate blocks reordered).
 *
 * @module
 */

import {
  type KerasLayerWeights,
  type KerasLSTMWeights,
  loadKeras,
  loadTorch,
  type Tensor,
  zeros,
} from "../../mod.ts";
import { CliError, reason } from "./io.ts";
import type { ModelFile } from "./model_file.ts";

/** The kinds of weight file the CLI reads. */
export type WeightFileKind = "safetensors" | "torch" | "keras";

/** The kind of `bytes`, from the extension of `path` and the file's first bytes. */
export function weightFileKind(path: string, bytes: Uint8Array): WeightFileKind {
  const lower = path.toLowerCase();
  const hdf5 = bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46;
  if (hdf5 || lower.endsWith(".h5") || lower.endsWith(".keras")) return "keras";
  const zipOrPickle = (bytes[0] === 0x50 && bytes[1] === 0x4b) || bytes[0] === 0x80;
  if (zipOrPickle || /\.(pt|pth|bin|ckpt)$/.test(lower)) return "torch";
  return "safetensors";
}

/** A torch state_dict, with a one-line error naming `path` when it cannot be read. */
export function readTorch(bytes: Uint8Array, path: string): Record<string, Tensor> {
  try {
    return loadTorch(bytes);
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
}

/** The layers of a Keras file, with a one-line error naming `path` when it cannot be read. */
export async function readKeras(bytes: Uint8Array, path: string): Promise<KerasLayerWeights[]> {
  try {
    return await loadKeras(bytes);
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
}

// The gate blocks of this package, forget, input, output, candidate, as indices into torch's
// (input, forget, candidate, output) and Keras' (i, f, c, o) order, which agree.
const GATES_FROM_TORCH = [1, 0, 3, 2];

/** The rows of a `(4H, n)` matrix (or a `(4H)` vector) with its gate blocks reordered. */
export function permuteGates(t: Tensor): Tensor {
  const rows = t.shape[0];
  const H = rows / 4;
  const width = t.data.length / rows;
  const data = new Float32Array(t.data.length);
  GATES_FROM_TORCH.forEach((from, to) =>
    data.set(t.data.subarray(from * H * width, (from + 1) * H * width), to * H * width)
  );
  return { shape: [...t.shape], data };
}

/** The transpose of a matrix `(r, c)`. */
function transpose(t: Tensor): Tensor {
  const [r, c] = t.shape;
  const data = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) data[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data };
}

/** What `convert --from torch` accepts; only one forward LSTM layer until `fromTorch` lands. */
export interface TorchLayout {
  /** `lstm`, `gru` or `rnn`. */
  mode: string;
  /** Stacked layers. */
  layers: number;
  /** Whether the file holds reverse directions. */
  bidirectional: boolean;
}

/**
 * A torch `nn.LSTM` state_dict (keys `<prefix>weight_ih_l0`, ...) as this package's `LSTM`.
 * GRU, RNN, stacked or bidirectional layers need `fromTorch` (issue 9) and are refused by name.
 */
export function torchLSTM(
  record: Record<string, Tensor>,
  expected: Partial<TorchLayout>,
): ModelFile {
  const prefixes = Object.keys(record).filter((name) => name.endsWith("weight_ih_l0"))
    .map((name) => name.slice(0, -"weight_ih_l0".length));
  if (prefixes.length !== 1) {
    throw new CliError(
      `expected one recurrent layer's weight_ih_l0 in the state_dict, found ${prefixes.length} ` +
        `(keys: ${Object.keys(record).slice(0, 8).join(", ")})`,
    );
  }
  const [prefix] = prefixes;
  const get = (name: string) => record[prefix + name];
  const [rows, inputSize] = get("weight_ih_l0").shape;
  const hiddenSize = get("weight_hh_l0").shape[1];
  const found: TorchLayout = {
    mode: rows === 4 * hiddenSize ? "lstm" : rows === 3 * hiddenSize ? "gru" : "rnn",
    layers: new Set(
      Object.keys(record).map((n) => n.match(/^.*weight_ih_l(\d+)$/)?.[1]).filter((l) => l),
    ).size,
    bidirectional: get("weight_ih_l0_reverse") !== undefined,
  };
  for (const key of ["mode", "layers", "bidirectional"] as const) {
    if (expected[key] !== undefined && expected[key] !== found[key]) {
      throw new CliError(
        `the file holds ${describeLayout(found)}, but --${key} says ${expected[key]}; ` +
          "fix --mode/--layers/--bidirectional",
      );
    }
  }
  if (found.mode !== "lstm" || found.layers !== 1 || found.bidirectional) {
    throw new CliError(
      `converting ${describeLayout(found)} is not available yet: it needs fromTorch (issue 9); ` +
        "today convert maps one forward LSTM layer",
    );
  }
  const bias = (name: string) => get(name) ?? zeros([4 * hiddenSize]);
  return {
    meta: { version: 1, model: { class: "LSTM", args: { inputSize, hiddenSize } } },
    tensors: {
      "i2h.weight": permuteGates(get("weight_ih_l0")),
      "i2h.bias": permuteGates(bias("bias_ih_l0")),
      "h2h.weight": permuteGates(get("weight_hh_l0")),
      "h2h.bias": permuteGates(bias("bias_hh_l0")),
    },
  };
}

function describeLayout(layout: TorchLayout): string {
  return `${layout.bidirectional ? "a bidirectional " : "a "}${layout.layers}-layer ` +
    layout.mode.toUpperCase();
}

/**
 * A Keras `LSTM` layer as this package's `LSTM`: kernels `(I, 4H)` transposed to `(4H, I)` and
 * their gate blocks reordered; the bias goes to `i2h.bias` (`h2h.bias` is zero).
 */
export function kerasLSTM(layers: KerasLayerWeights[], name: string | undefined): ModelFile {
  const lstms = layers.filter((layer): layer is KerasLSTMWeights => layer.kind === "lstm");
  const names = lstms.map((layer) => layer.name).join(", ");
  const layer = name === undefined
    ? lstms.length === 1 ? lstms[0] : undefined
    : lstms.find((l) => l.name === name);
  if (layer === undefined) {
    throw new CliError(
      name === undefined
        ? `the file holds ${lstms.length} LSTM layers (${names}); pick one with --layer NAME ` +
          "(stacks need fromTorch-style import, issue 9, not available yet)"
        : `no LSTM layer named ${JSON.stringify(name)}; the file has: ${names}`,
    );
  }
  const activation = layer.config?.recurrent_activation;
  if (activation !== undefined && activation !== "sigmoid") {
    throw new CliError(
      `layer ${layer.name} uses recurrent_activation ${JSON.stringify(activation)}; ` +
        "this package's LSTM computes the gates with sigmoid, so its outputs would differ",
    );
  }
  const H = layer.units;
  const inputSize = layer.kernel.shape[0];
  return {
    meta: { version: 1, model: { class: "LSTM", args: { inputSize, hiddenSize: H } } },
    tensors: {
      "i2h.weight": permuteGates(transpose(layer.kernel)),
      "i2h.bias": permuteGates(layer.bias ?? zeros([4 * H])),
      "h2h.weight": permuteGates(transpose(layer.recurrentKernel)),
      "h2h.bias": zeros([4 * H]),
    },
  };
}
