/**
 * A `saveModel` file of a `Sequential` with a vocabulary in its metadata, read as the CLI's
 * model: `Sequential([Embedding, one recurrent layer, Linear])` saved with
 * `saveModel(model, { metadata: { vocabulary, tokens } })` works with `sample`, `predict` and
 * `explain` as a file of `train` does.
 *
 * @module
 */

import {
  loadSafetensors,
  type ModelConfig,
  readModelConfig,
  readModelMetadata,
  type Tensor,
} from "../../mod.ts";
import { CliError, reason } from "./io.ts";
import type { ModelClass, ModelFile, TaskSpec } from "./model_file.ts";

/** The Sequential's position of each part, and the CLI's name for it. */
const PARTS: Record<string, string> = { "0.": "embedding.", "1.": "rnn.", "2.": "head." };

/** What a CLI model's metadata holds; `format` and `tokens` default to a character model. */
interface VocabularyMetadata {
  vocabulary?: unknown;
  tokens?: unknown;
  format?: unknown;
}

/**
 * The CLI's view of a `saveModel` file at `path`; a one-line `CliError` when it is not a
 * `Sequential(Embedding, recurrent, Linear)` with a vocabulary, saying what it is and what to do.
 */
export function readSequentialFile(
  bytes: Uint8Array,
  path: string,
  classes: readonly ModelClass[],
): ModelFile {
  let config: ModelConfig, metadata: VocabularyMetadata;
  try {
    config = readModelConfig(bytes);
    metadata = readModelMetadata<VocabularyMetadata>(bytes);
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
  const { vocabulary, tokens = "chars" } = metadata;
  if (!Array.isArray(vocabulary) || !vocabulary.every((t) => typeof t === "string")) {
    throw new CliError(
      `${path} holds a ${config.class} without a vocabulary (written by \`convert\` or saveModel ` +
        "without metadata): save a Sequential(Embedding, recurrent layer, Linear) with " +
        "saveModel(model, { metadata: { vocabulary, tokens } }), or train one with `train`",
    );
  }
  const layers = config.class === "Sequential" ? config.layers : [];
  const [embedding, rnn, head] = layers as { class: string; args: number[]; options: never }[];
  if (
    layers.length !== 3 || embedding.class !== "Embedding" || head.class !== "Linear" ||
    !classes.includes(rnn.class as ModelClass)
  ) {
    throw new CliError(
      `${path} holds a ${config.class} that the CLI cannot run: it reads Sequential(Embedding, ` +
        `one of ${classes.join(", ")}, Linear); load this one with loadModel in a program`,
    );
  }
  if (!["chars", "words", "events"].includes(tokens as string)) {
    throw new CliError(
      `${path}: metadata.tokens must be "chars", "words" or "events", got ${
        JSON.stringify(tokens)
      }`,
    );
  }
  const [inputSize, hiddenSize, k] = rnn.args;
  const maxPooling = (rnn.options as Record<string, unknown>).maxPooling;
  const tensors: Record<string, Tensor> = {};
  for (const [name, value] of Object.entries(loadSafetensors(bytes))) {
    const prefix = Object.keys(PARTS).find((p) => name.startsWith(p));
    tensors[prefix === undefined ? name : PARTS[prefix] + name.slice(prefix.length)] = value;
  }
  return {
    meta: {
      version: 1,
      model: {
        class: rnn.class as ModelClass,
        args: {
          inputSize,
          hiddenSize,
          ...(k === undefined ? {} : { k }),
          ...(typeof maxPooling === "boolean" ? { maxPooling } : {}),
        },
      },
      task: {
        format: tokens === "events" ? "events" : "text",
        tokens: tokens as TaskSpec["tokens"],
        vocabulary: vocabulary as string[],
        embeddingSize: embedding.args[1],
      },
    },
    tensors,
  };
}
