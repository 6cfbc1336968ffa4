/**
 * The model files the CLI's `train` wrote before it wrote `saveModel` files: metadata key
 * `"arraylstm"` with `{ version: 1, model, task, training? }`, tensors `embedding.*`, `rnn.*`,
 * `head.*` and the optimizer's `optimizer.*`. They are read as what they are: a `Sequential` of
 * `Embedding(vocabulary, embeddingSize, { paddingIdx: 0 })`, the recurrent model and
 * `Linear(hiddenSize, vocabulary)`, with `{ format, tokens, vocabulary, training }` as metadata.
 *
 * @module
 */

import { describe } from "./errors.ts";
import { type ModelConfig, ModelFileError } from "./model_config.ts";
import { MODELS, takesK } from "./models/registry.ts";
import type { Tensor } from "./tensor.ts";
import type { ModelName } from "./variants.ts";

/** The metadata key of the CLI's own files. */
export const CLI_METADATA_KEY = "arraylstm";

/** A CLI file as a model file's parts. */
export interface CliModelFile {
  /** The `Sequential` it holds. */
  readonly config: ModelConfig;
  /** `{ format, tokens, vocabulary, training? }`. */
  readonly metadata: Record<string, unknown>;
  /** The model's tensors, under the `Sequential`'s names (`0.weight`, `1.i2h.weight`, ...). */
  readonly tensors: Record<string, Tensor>;
  /** The optimizer's buffers (`optimizer.*`), for resuming. */
  readonly extras: Record<string, Tensor>;
}

const PARTS: Record<string, string> = { "embedding.": "0.", "rnn.": "1.", "head.": "2." };

/**
 * Reads a CLI file's `"arraylstm"` metadata document and tensors as a model file's parts.
 *
 * @throws {ModelFileError} If the document is not a version-1 CLI model description.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCliModelFile } from "./model_file_cli.ts";
 * const meta = {
 *   version: 1,
 *   model: { class: "GRU", args: { inputSize: 2, hiddenSize: 3 } },
 *   task: { format: "text", tokens: "chars", vocabulary: ["", "a"], embeddingSize: 2 },
 * };
 * const { config, metadata } = readCliModelFile(JSON.stringify(meta), {});
 * assert.equal(config.class, "Sequential");
 * assert.deepEqual(metadata, { format: "text", tokens: "chars", vocabulary: ["", "a"] });
 * ```
 */
export function readCliModelFile(text: string, tensors: Record<string, Tensor>): CliModelFile {
  let meta;
  try {
    meta = JSON.parse(text);
  } catch (cause) {
    throw new ModelFileError(`the "${CLI_METADATA_KEY}" metadata is not JSON`, { cause });
  }
  const model = meta?.model, task = meta?.task;
  const name = model?.class as ModelName;
  const args = model?.args ?? {};
  const vocabulary = task?.vocabulary;
  if (
    meta?.version !== 1 || typeof name !== "string" || !Object.hasOwn(MODELS, name) ||
    !Array.isArray(vocabulary) || !vocabulary.every((token) => typeof token === "string")
  ) {
    throw new ModelFileError(
      `the "${CLI_METADATA_KEY}" metadata is not a CLI model description (version 1, a ` +
        `recurrent class, a vocabulary), got version ${describe(meta?.version)}, class ` +
        `${describe(name)}: write the model again with the CLI's train, or with saveModel`,
    );
  }
  const sizes = [args.inputSize, args.hiddenSize, ...(takesK(name) ? [args.k] : [])];
  const config: ModelConfig = {
    class: "Sequential",
    layers: [
      {
        class: "Embedding",
        args: [vocabulary.length, task.embeddingSize],
        options: { paddingIdx: 0 },
      },
      {
        class: name,
        args: sizes,
        options: name === "AttentionArrayLSTM" ? { maxPooling: args.maxPooling ?? false } : {},
      },
      { class: "Linear", args: [args.hiddenSize, vocabulary.length], options: { bias: true } },
    ],
  };
  const own: Record<string, Tensor> = {}, extras: Record<string, Tensor> = {};
  for (const [key, value] of Object.entries(tensors)) {
    const prefix = Object.keys(PARTS).find((p) => key.startsWith(p));
    if (prefix !== undefined) own[PARTS[prefix] + key.slice(prefix.length)] = value;
    else if (key.startsWith("optimizer.")) extras[key] = value;
    else own[key] = value; // refused by the shape check, by name
  }
  const metadata: Record<string, unknown> = {
    format: task.format,
    tokens: task.tokens,
    vocabulary,
    ...(meta.training === undefined ? {} : { training: meta.training }),
  };
  return { config, metadata, tensors: own, extras };
}
