/**
 * `convert`: a torch `nn.LSTM` state_dict or a Keras `LSTM` layer to this package's model file.
 *
 * @module
 */

import {
  choiceFlag,
  CliError,
  type CliIO,
  numberFlag,
  parseFlags,
  readInput,
  writeOutput,
} from "./io.ts";
import { encodeModelFile } from "./model_file.ts";
import { kerasLSTM, readKeras, readTorch, torchLSTM } from "./weights.ts";

/** `convert --help`. */
export const CONVERT_HELP = `Usage: convert --from torch|keras IN --out OUT.safetensors [options]

Converts an LSTM's weights to a model file of this package's LSTM (gate blocks reordered).

  --from F           torch (a state_dict of nn.LSTM, .pt/.pth) | keras (.h5, .weights.h5, .keras)
  --out FILE         the model file to write
  --mode M           torch: lstm | gru | rnn (checked against the file; only lstm converts today)
  --layers N         torch: stacked layers (checked; only 1 converts today)
  --bidirectional    torch: the file is bidirectional (checked; not convertible today)
  --layer NAME       keras: the LSTM layer to take when the file has several
GRU, RNN, stacked and bidirectional layers need fromTorch (issue 9): not available yet.
`;

const FLAGS = {
  from: { type: "string" },
  out: { type: "string" },
  mode: { type: "string" },
  layers: { type: "string" },
  bidirectional: { type: "boolean" },
  layer: { type: "string" },
} as const;

/** Runs `convert` with `args`; resolves to the exit status. */
export async function convert(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags("convert", args, FLAGS);
  if (values.help) {
    io.stdout(CONVERT_HELP);
    return 0;
  }
  const from = choiceFlag(values, "from", ["torch", "keras"] as const, "" as "torch");
  if (positionals.length !== 1) {
    throw new CliError(`convert takes one input file, got ${positionals.length}`);
  }
  const [path] = positionals;
  if (typeof values.out !== "string") throw new CliError("--out is required");
  const bytes = await readInput(path, `${from} file`);
  const file = from === "torch"
    ? torchLSTM(readTorch(bytes, path), {
      mode: values.mode === undefined
        ? undefined
        : choiceFlag(values, "mode", ["lstm", "gru", "rnn"], "lstm"),
      layers: values.layers === undefined
        ? undefined
        : numberFlag(values, "layers", 1, { min: 1, integer: true }),
      bidirectional: values.bidirectional === undefined ? undefined : values.bidirectional === true,
    })
    : kerasLSTM(await readKeras(bytes, path), values.layer as string | undefined);
  await writeOutput(values.out, encodeModelFile(file));
  const { inputSize, hiddenSize } = file.meta.model.args;
  io.stdout(`wrote ${values.out}: LSTM(${inputSize}, ${hiddenSize}) from ${path}\n`);
  return 0;
}
