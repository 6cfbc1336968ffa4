/**
 * `inspect`: what a file holds. A model file of `train`: class, constructor arguments, task,
 * vocabulary size, training step and parameters; a file of `saveModel` (and `convert`): its layers
 * and parameters; a plain safetensors, torch or Keras file: its tensors.
 *
 * @module
 */

import { MODEL_METADATA_KEY, type ModelConfig, readSafetensors, type Tensor } from "../../mod.ts";
import { CliError, type CliIO, parseFlags, readInput, reason } from "./io.ts";
import { decodeModelFile, META_KEY } from "./model_file.ts";
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
    let metadata: Record<string, string>;
    try {
      metadata = readSafetensors(bytes).metadata;
    } catch (error) {
      throw new CliError(`${path} is not a safetensors, torch or Keras file: ${reason(error)}`);
    }
    const { meta, tensors } = decodeModelFileOrPlain(bytes, path, metadata);
    io.stdout(meta + table(tensors));
  }
  return 0;
}

function decodeModelFileOrPlain(
  bytes: Uint8Array,
  path: string,
  metadata: Record<string, string>,
): { meta: string; tensors: Record<string, Tensor> } {
  if (!(META_KEY in metadata) && MODEL_METADATA_KEY in metadata) {
    return {
      meta: `saved model ${path}\nlayers       ${describeSaved(metadata)}\n`,
      tensors: readSafetensors(bytes).tensors,
    };
  }
  if (!(META_KEY in metadata)) {
    const file = readSafetensors(bytes);
    const keys = Object.keys(metadata);
    return {
      meta: `safetensors ${path}` + (keys.length ? ` (metadata: ${keys.join(", ")})` : "") + "\n",
      tensors: file.tensors,
    };
  }
  const { meta, tensors } = decodeModelFile(bytes, path);
  const lines = [
    `model file ${path}`,
    `class        ${meta.model.class}`,
    `arguments    ${JSON.stringify(meta.model.args)}`,
  ];
  lines.push(
    `task         ${meta.task.format} (${meta.task.tokens})`,
    `vocabulary   ${meta.task.vocabulary.length} tokens (with padding)`,
    `embedding    ${meta.task.embeddingSize}`,
  );
  if (meta.training) {
    const validation = meta.training.history.validation.at(-1);
    lines.push(
      `training     step ${meta.training.step}` +
        (validation ? `, validation loss ${validation[1].toFixed(4)}` : "") +
        "; resumable with train --resume",
    );
  }
  const parameters = Object.fromEntries(
    Object.entries(tensors).filter(([name]) => !name.startsWith("optimizer.")),
  );
  return { meta: lines.join("\n") + "\n", tensors: parameters };
}

/** The layers of `saveModel`'s metadata in one line: `Stacked[LSTM(3, 4), GRU(4, 2)]`. */
export function describeSaved(metadata: Record<string, string>): string {
  let config: ModelConfig;
  try {
    config = JSON.parse(metadata[MODEL_METADATA_KEY]);
  } catch (error) {
    throw new CliError(`the "${MODEL_METADATA_KEY}" metadata is not JSON: ${reason(error)}`);
  }
  return describeConfig(config);
}

const DEFAULT_OPTIONS: Record<string, unknown> = {
  recurrentActivation: "sigmoid",
  nonlinearity: "tanh",
  maxPooling: false,
  bias: true,
};

function describeConfig(config: ModelConfig): string {
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
