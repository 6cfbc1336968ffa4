/**
 * `convert`: a torch `nn.LSTM` / `nn.GRU` / `nn.RNN` state_dict or a Keras Sequential model's LSTM
 * layers to a file of the library's `saveModel`, built with `fromTorch` and `fromKeras`.
 *
 * @module
 */

import {
  fromKeras,
  fromTorch,
  type KerasLayerWeights,
  type KerasLSTMWeights,
  readModelConfig,
  type RecurrentActivation,
  saveModel,
  type Stacked,
  type Tensor,
  type TorchMode,
} from "../../mod.ts";
import {
  choiceFlag,
  CliError,
  type CliIO,
  type FlagSpec,
  numberFlag,
  parseFlags,
  readInput,
  stringFlags,
} from "./io.ts";
import { checkOutputs, writeOutput } from "./files.ts";
import { describeConfig } from "./inspect.ts";
import { readKeras, readTorch } from "./weights.ts";

/** `convert --help`. */
export const CONVERT_HELP = `Usage: convert --from torch|keras IN --out OUT.safetensors [options]

Converts recurrent weights to a model file of this package (saveModel's format: loadModel reads
it back; inspect describes it). The gate blocks are reordered for LSTM layers.

  --from F           torch (a state_dict of nn.LSTM, nn.GRU or nn.RNN, .pt/.pth) |
                     keras (.h5, .weights.h5, .keras: its LSTM layers, stacked)
  --out FILE         the model file to write
  --mode M           torch: lstm | gru | rnn | rnn_relu; default from the weights' shapes
                     (rnn_relu cannot be told from rnn: name it)
  --layers N         torch: stacked layers; default counted from the file
  --bidirectional    torch: the file is bidirectional; default read from the file
  --layer NAME       keras: take only this LSTM layer; default all of them, in order (Dense
                     layers are not converted)
  --recurrent-activation A
                     keras: sigmoid | hard_sigmoid (Keras 1/2) | hard_sigmoid_keras3; default
                     the layers' config (a file with hard_sigmoid must name which)
`;

const FLAGS: Record<string, FlagSpec> = {
  ...stringFlags("from", "out", "mode", "layers", "layer", "recurrent-activation"),
  bidirectional: { type: "boolean" },
};

const MODES: Record<string, TorchMode> = {
  lstm: "LSTM",
  gru: "GRU",
  rnn: "RNN_TANH",
  rnn_relu: "RNN_RELU",
};

/** Runs `convert` with `args`; resolves to the exit status. */
export async function convert(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags("convert", args, FLAGS);
  const from = choiceFlag(values, "from", ["torch", "keras"] as const, "" as "torch");
  if (positionals.length !== 1) {
    throw new CliError(`convert takes one input file, got ${positionals.length}`);
  }
  const [path] = positionals;
  if (typeof values.out !== "string") throw new CliError("--out is required");
  const torchOnly = ["mode", "layers", "bidirectional"],
    kerasOnly = ["layer", "recurrent-activation"];
  const misplaced = (from === "torch" ? kerasOnly : torchOnly).find((f) => values[f] !== undefined);
  if (misplaced !== undefined) {
    throw new CliError(`--${misplaced} does not apply to --from ${from}`);
  }
  // Replacing an earlier conversion is fine; a folder, or the input itself, is not.
  await checkOutputs([{ flag: "--out", path: values.out }], {
    inputs: [{ flag: "input", path }],
    overwrite: true,
  });
  const bytes = await readInput(path, `${from} file`);
  const model = from === "torch"
    ? torchModel(readTorch(bytes, path), values)
    : kerasModel(await readKeras(bytes, path), values);
  const saved = saveModel(model);
  await writeOutput(values.out, saved);
  const layers = describeConfig(readModelConfig(saved));
  io.stdout(`wrote ${values.out}: ${layers} from ${path}\n`);
  return 0;
}

/** The network of a torch state_dict, whose keys may carry a module prefix (`rnn.weight_ih_l0`). */
function torchModel(record: Record<string, Tensor>, values: Record<string, unknown>): Stacked {
  const prefixes = Object.keys(record).filter((name) => name.endsWith("weight_ih_l0"))
    .map((name) => name.slice(0, -"weight_ih_l0".length));
  if (prefixes.length !== 1) {
    throw new CliError(
      `expected one recurrent module's weight_ih_l0 in the state_dict, found ${prefixes.length} ` +
        `(keys: ${Object.keys(record).slice(0, 8).join(", ")})`,
    );
  }
  const [prefix] = prefixes;
  const own = Object.fromEntries(
    Object.entries(record).filter(([name]) => name.startsWith(prefix))
      .map(([name, t]) => [name.slice(prefix.length), t]),
  );
  const mode = values.mode === undefined
    ? modeOf(own)
    : MODES[choiceFlag(values, "mode", Object.keys(MODES), "lstm")];
  return fromTorch(own, {
    mode,
    numLayers: values.layers === undefined
      ? undefined
      : numberFlag(values, "layers", 1, { min: 1, integer: true }),
    bidirectional: values.bidirectional === true ? true : undefined,
    backend: "js",
  });
}

/** The mode the gate blocks of `weight_ih_l0` `(G·H, I)` say: 4 LSTM, 3 GRU, 1 RNN (tanh). */
function modeOf(record: Record<string, Tensor>): TorchMode {
  const gates = record.weight_ih_l0.shape[0] / record.weight_hh_l0?.shape[1];
  const mode = ({ 4: "LSTM", 3: "GRU", 1: "RNN_TANH" } as Record<number, TorchMode>)[gates];
  if (mode === undefined) {
    throw new CliError(
      `cannot tell the mode from weight_ih_l0 ${JSON.stringify(record.weight_ih_l0.shape)} and ` +
        "weight_hh_l0; name it with --mode",
    );
  }
  return mode;
}

/** The LSTM layers of a Keras file (or the one `--layer` names) as a stack. */
function kerasModel(layers: KerasLayerWeights[], values: Record<string, unknown>): Stacked {
  const recurrentActivation = values["recurrent-activation"] === undefined
    ? undefined
    : choiceFlag<RecurrentActivation>(
      values,
      "recurrent-activation",
      ["sigmoid", "hard_sigmoid", "hard_sigmoid_keras3"],
      "sigmoid",
    );
  const lstms = layers.filter((layer): layer is KerasLSTMWeights => layer.kind === "lstm");
  const chosen = typeof values.layer === "string"
    ? lstms.filter((l) => l.name === values.layer)
    : lstms;
  if (chosen.length === 0) {
    throw new CliError(
      `no LSTM layer${
        typeof values.layer === "string" ? ` named ${JSON.stringify(values.layer)}` : ""
      }; the file has: ${layers.map((l) => `${l.kind} ${l.name}`).join(", ") || "no layers"}`,
    );
  }
  return fromKeras(chosen, { recurrentActivation, backend: "js" }).stack;
}
