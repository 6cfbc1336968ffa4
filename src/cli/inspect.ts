/**
 * `inspect`: what a file holds. A model file of `train`: class, constructor arguments, task,
 * vocabulary size, training step and parameters; a file of `saveModel` (and `convert`): its layers
 * and parameters; a plain safetensors, torch or Keras file: its tensors.
 *
 * @module
 */

import {
  MODEL_METADATA_KEY,
  type ModelConfig,
  readModelConfig,
  readModelMetadata,
  readSafetensors,
  type Tensor,
} from "../../mod.ts";
import { CLI_METADATA_KEY } from "../model_file_cli.ts";
import { CliError, type CliIO, parseFlags, readInput, reason } from "./io.ts";
import { taskOf } from "./model_file.ts";
import { readKeras, readTorch, weightFileKind } from "./weights.ts";

/** `inspect --help`. */
export const INSPECT_HELP = `Usage: inspect FILE

Describes a model file of train (class, constructor arguments, vocabulary, parameters with
shapes and count, training state) or of convert / saveModel (its layers and parameters), or lists
the tensors of a safetensors, torch (.pt) or Keras (.h5) file.
`;

/** Runs `inspect` with `args`; resolves to the exit status. */
export async function inspect(args: string[], io: CliIO): Promise<number> {
  const { positionals } = parseFlags("inspect", args, {});
  if (positionals.length !== 1) {
    throw new CliError(`inspect takes one file, got ${positionals.length}`);
  }
  const [path] = positionals;
  const bytes = await readInput(path);
  const kind = weightFileKind(path, bytes);
  if (kind === "torch") {
    io.stdout(`torch state_dict ${path}\n${table(readTorch(bytes, path))}`);
  } else if (kind === "keras") {
    const layers = await readKeras(bytes, path);
    const lines = layers.map((layer) => {
      // Embedding and Bidirectional layers: their weights by path.
      if (!("kernel" in layer)) {
        return `layer ${layer.name} (${layer.kind}, ${layer.units} units)\n${table(layer.weights)}`;
      }
      const tensors: Record<string, Tensor> = { kernel: layer.kernel };
      if ("recurrentKernel" in layer) tensors.recurrent_kernel = layer.recurrentKernel;
      if (layer.bias) tensors.bias = layer.bias;
      return `layer ${layer.name} (${layer.kind}, ${layer.units} units)\n${table(tensors)}`;
    });
    io.stdout(`Keras weights ${path}: ${layers.length} layers\n${lines.join("")}`);
  } else {
    let file: { tensors: Record<string, Tensor>; metadata: Record<string, string> };
    try {
      file = readSafetensors(bytes);
    } catch (error) {
      throw new CliError(`${path} is not a safetensors, torch or Keras file: ${reason(error)}`);
    }
    const keys = Object.keys(file.metadata);
    if (!(MODEL_METADATA_KEY in file.metadata) && !(CLI_METADATA_KEY in file.metadata)) {
      const listed = keys.length ? ` (metadata: ${keys.join(", ")})` : "";
      io.stdout(`safetensors ${path}${listed}\n${table(file.tensors)}`);
    } else {
      io.stdout(describeModelFile(bytes, path) + table(parametersOf(file.tensors)));
    }
  }
  return 0;
}

/** A model file's description: its task and training state when it is a CLI model, else its layers. */
function describeModelFile(bytes: Uint8Array, path: string): string {
  let config: ModelConfig, metadata: Record<string, unknown>;
  try {
    config = readModelConfig(bytes);
    metadata = readModelMetadata(bytes);
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
  const described = taskOf(config, metadata, path);
  if (described instanceof CliError) {
    return `saved model ${path}\nlayers       ${describeConfig(config)}\n`;
  }
  const { spec, task } = described;
  const lines = [
    `model file ${path}`,
    `class        ${spec.class}`,
    `arguments    ${JSON.stringify(spec.args)}`,
    `layers       ${describeConfig(config)}`,
    `task         ${task.format} (${task.tokens})`,
    `vocabulary   ${task.vocabulary.length} tokens (with padding)`,
    `embedding    ${spec.args.inputSize}`,
  ];
  if (task.training) {
    const validation = task.training.history.validation.at(-1);
    lines.push(
      `training     step ${task.training.step}` +
        (validation ? `, validation loss ${validation[1].toFixed(4)}` : "") +
        "; resumable with train --resume",
    );
  }
  return lines.join("\n") + "\n";
}

/** The tensors of a model file without the optimizer's buffers `train` keeps beside them. */
function parametersOf(tensors: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(
    Object.entries(tensors).filter(([name]) => !name.startsWith("optimizer.")),
  );
}

const DEFAULT_OPTIONS: Record<string, unknown> = {
  recurrentActivation: "sigmoid",
  nonlinearity: "tanh",
  maxPooling: false,
  bias: true,
};

/** The layers of a model file's class tree in one line: `Stacked[LSTM(3, 4), GRU(4, 2)]`. */
export function describeConfig(config: ModelConfig): string {
  switch (config.class) {
    case "Stacked":
    case "Sequential":
      return `${config.class}[${config.layers.map(describeConfig).join(", ")}]`;
    case "Bidirectional":
      return `Bidirectional(${describeConfig(config.forward)}, ${describeConfig(config.backward)})`;
    default: {
      const options = Object.entries(config.options ?? {})
        .filter(([key, value]) => DEFAULT_OPTIONS[key] !== value)
        .map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
      return `${config.class}(${[...config.args, ...options].join(", ")})`;
    }
  }
}

/** The tensors as a table of names, shapes and element counts, with the total. */
export function table(tensors: Record<string, Tensor>): string {
  const rows = Object.entries(tensors).map((
    [name, t],
  ) => [name, `[${t.shape.join(", ")}]`, t.data.length]);
  const width = Math.max(4, ...rows.map(([name]) => String(name).length));
  const total = rows.reduce((sum, [, , count]) => sum + Number(count), 0);
  return [
    ...rows.map(([name, shape, count]) =>
      `  ${String(name).padEnd(width)}  ${String(shape).padEnd(16)}  ${count}`
    ),
    `  ${rows.length} tensors, ${total} parameters`,
  ].join("\n") + "\n";
}
