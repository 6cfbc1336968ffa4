/**
 * The CLI's models: a `Sequential` of `Embedding(vocabulary, embedding, { paddingIdx: 0 })` →
 * one recurrent layer (the LSTM family or `GRU`) → `Linear(hidden, vocabulary)` at every step,
 * kept in a file of the library's `saveModel` with {@linkcode TaskMetadata} as its metadata:
 *
 * ```ts ignore
 * saveModel(model, {
 *   metadata: { format: "text", tokens: "chars", vocabulary: ["", "<unk>", "a"], training },
 *   tensors: { "optimizer.0.exp_avg": ..., ... }, // the optimizer's buffers, for --resume
 * });
 * ```
 *
 * `vocabulary[id]` is the token (id 0 the padding token `""`, never a prediction); `training`
 * (present after `train`) is what `train --resume` needs to continue exactly.
 *
 * Files are read by the library only: `readModelConfig` and `readModelMetadata` say what a file
 * holds, and `loadModel(bytes, { expect: Sequential })` builds it after checking its tensors
 * against its description (so a small file cannot claim a huge model). The CLI's older files
 * (metadata key `"arraylstm"`, tensors `embedding.*`, `rnn.*`, `head.*`) load through the same
 * calls. This module checks that a file holds a model the CLI can run, and says what to do when
 * it does not.
 *
 * @module
 */

import {
  type BackendName,
  Embedding,
  type GRU,
  Linear,
  loadModel,
  type LSTM,
  type ModelConfig,
  ModelFileError,
  type ModelMetadata,
  type OptimizerStateDict,
  readModelConfig,
  readModelMetadata,
  readSafetensors,
  type RecurrentInit,
  type RecurrentLayer,
  SafetensorsError,
  saveModel,
  Sequential,
  type Tensor,
  type TrackedTensor,
} from "../../mod.ts";
import { buildModel } from "../models/registry.ts";
import { type VariantKind, VARIANTS } from "../variants.ts";
import {
  BACKEND_CHOICES,
  backendFlag,
  CliError,
  type FlagSpec,
  readInput,
  reason,
  stringFlag,
  stringFlags,
} from "./io.ts";
import { notAModel } from "./weights.ts";

/** A variant with cell states: the LSTM family. */
type FamilyVariant = Extract<typeof VARIANTS[VariantKind], { cellStates: true }>;

/**
 * The LSTM family (the variants with cell states), from the variant table: the classes with a
 * kernel on every backend, and an LRP rule.
 */
export const LSTM_CLASSES: readonly FamilyVariant["model"][] = [
  ...new Set(
    Object.values(VARIANTS).filter((v): v is FamilyVariant => v.cellStates).map((v) => v.model),
  ),
];

/** The recurrent classes a CLI model can hold: the LSTM family and `GRU`. */
export const MODEL_CLASSES: readonly ModelClass[] = [...LSTM_CLASSES, "GRU"];

/** One of {@linkcode MODEL_CLASSES}. */
export type ModelClass = FamilyVariant["model"] | "GRU";

/** A recurrent layer's class and sizes. */
export interface ModelSpec {
  /** The class. */
  class: ModelClass;
  /** Its sizes (`k` for the array variants); `inputSize` is the embedding's size. */
  args: { inputSize: number; hiddenSize: number; k?: number };
}

/** How text splits into tokens: characters, whitespace-separated words, or event names. */
export type TokenMode = "chars" | "words" | "events";

/** What `train --resume` needs, besides the parameters and the optimizer's buffers. */
export type TrainingState = {
  /** Optimizer steps taken. */
  step: number;
  /** The training flags the run started with (seed, batch, seq-len, lr, ...). */
  flags: Record<string, string | number>;
  /** The optimizer's per-parameter counters (`null` before its first update) and options. */
  optimizer: {
    counters: (Record<string, number> | null)[];
    options: OptimizerStateDict["options"];
  };
  /** Training loss after every step, and validation loss after every evaluation. */
  history: { train: [number, number][]; validation: [number, number][] };
  /** SHA-256 of the data file's bytes (hex): a resumed run refuses other data unless asked. */
  dataSha256?: string;
  /** The lowest validation loss so far (what `--keep best` compares with). */
  bestValidation?: number;
};

/** A CLI model file's metadata (`readModelMetadata`). */
export type TaskMetadata = {
  /** `"text"`: a causal language model; `"events"`: next-event prediction, a sequence a line. */
  format: "text" | "events";
  /** How text becomes tokens. */
  tokens: TokenMode;
  /** `vocabulary[id]` is the token; id 0 is the padding token `""`. */
  vocabulary: string[];
  /** Present once `train` wrote the file. */
  training?: TrainingState;
};

/** A model the CLI runs: the `Sequential`, its three layers, and its metadata. */
export interface TaskModel {
  /** `Sequential([embedding, rnn, head])`: what `fit` trains and `saveModel` writes. */
  readonly model: Sequential;
  /** Token ids to vectors. */
  readonly embedding: Embedding;
  /** The recurrent layer. */
  readonly rnn: LSTM | GRU;
  /** Hidden states to logits over the vocabulary. */
  readonly head: Linear;
  /** The recurrent layer's class and sizes. */
  readonly spec: ModelSpec;
  /** How text becomes token ids, and the training state. */
  readonly task: TaskMetadata;
}

/** Makes the recurrent model `spec` describes. */
export function makeRecurrent(spec: ModelSpec, backend: BackendName, seed: number): LSTM | GRU {
  const { inputSize, hiddenSize, k = 1 } = spec.args;
  return buildModel(spec.class, { inputSize, hiddenSize, k }, { backend, seed }) as LSTM | GRU;
}

/** A new model of `spec` for `task`, with fresh weights drawn from `seed`. */
export function newTaskModel(
  spec: ModelSpec,
  task: TaskMetadata,
  backend: BackendName,
  seed: number,
): TaskModel {
  const size = task.vocabulary.length;
  const model = new Sequential([
    new Embedding(size, spec.args.inputSize, { seed, paddingIdx: 0 }),
    makeRecurrent(spec, backend, seed + 1),
    new Linear(spec.args.hiddenSize, size, { seed: seed + 2 }),
  ]);
  return taskModel(model, spec, task);
}

function taskModel(model: Sequential, spec: ModelSpec, task: TaskMetadata): TaskModel {
  const [embedding, rnn, head] = model.layers as [Embedding, LSTM | GRU, Linear];
  return { model, embedding, rnn, head, spec, task };
}

/**
 * The spec and metadata of a file's `config` and `metadata` when they describe a model the CLI
 * runs; else the error that says what the file holds and what to do.
 */
export function taskOf(
  config: ModelConfig,
  metadata: Record<string, unknown>,
  path: string,
): { spec: ModelSpec; task: TaskMetadata } | CliError {
  const { vocabulary, tokens = "chars", training } = metadata;
  if (!Array.isArray(vocabulary) || !vocabulary.every((t) => typeof t === "string")) {
    return new CliError(
      `${path} holds a ${config.class} without a vocabulary (written by \`convert\` or saveModel ` +
        "without metadata): save a Sequential(Embedding, recurrent layer, Linear) with " +
        "saveModel(model, { metadata: { vocabulary, tokens } }), or train one with `train`",
    );
  }
  const layers = config.class === "Sequential" ? config.layers : [];
  const [embedding, rnn, head] = layers as { class: string; args: number[] }[];
  if (
    layers.length !== 3 || embedding.class !== "Embedding" || head.class !== "Linear" ||
    !MODEL_CLASSES.includes(rnn.class as ModelClass)
  ) {
    return new CliError(
      `${path} holds a ${config.class} that the CLI cannot run: it reads Sequential(Embedding, ` +
        `one of ${MODEL_CLASSES.join(", ")}, Linear); load this one with loadModel in a program`,
    );
  }
  if (!["chars", "words", "events"].includes(tokens as string)) {
    return new CliError(
      `${path}: metadata.tokens must be "chars", "words" or "events", got ${
        JSON.stringify(tokens)
      }`,
    );
  }
  const [inputSize, hiddenSize, k] = rnn.args;
  return {
    spec: {
      class: rnn.class as ModelClass,
      args: { inputSize, hiddenSize, ...(k === undefined ? {} : { k }) },
    },
    task: {
      format: tokens === "events" ? "events" : "text",
      tokens: tokens as TokenMode,
      vocabulary,
      ...(training === undefined ? {} : { training: training as TrainingState }),
    },
  };
}

/** What a file that is not a model file is, and which command reads it. */
function notAModelFile(path: string, bytes: Uint8Array, error: unknown): CliError {
  if (error instanceof ModelFileError && error.cause instanceof SafetensorsError) {
    return new CliError(notAModel(path, bytes, reason(error.cause)));
  }
  const plain = error instanceof ModelFileError &&
    Object.keys(readSafetensors(bytes).metadata).every((key) => !key.startsWith("arraylstm"));
  return new CliError(
    plain
      ? `${path} is a plain weight file, not a model written by \`train\`; see \`inspect\` for ` +
        "its tensors"
      : `${path}: ${reason(error)}`,
  );
}

/**
 * What the file `bytes` (named `path` in messages) holds, read with the library's
 * `readModelConfig` and `readModelMetadata` without building anything: a one-line `CliError`
 * when it is not a model the CLI runs.
 */
export function readTask(bytes: Uint8Array, path: string): { spec: ModelSpec; task: TaskMetadata } {
  let config: ModelConfig, metadata: Record<string, unknown>;
  try {
    config = readModelConfig(bytes);
    metadata = readModelMetadata(bytes);
  } catch (error) {
    throw notAModelFile(path, bytes, error);
  }
  const described = taskOf(config, metadata, path);
  if (described instanceof CliError) throw described;
  return described;
}

/**
 * The model in the file `bytes` (named `path` in messages) on `backend`: {@linkcode readTask},
 * then the library's `loadModel`, which checks the tensors against the description before
 * building; refused with a one-line `CliError` when its weights are not finite.
 */
export function readTaskModel(bytes: Uint8Array, path: string, backend: BackendName): TaskModel {
  const { spec, task } = readTask(bytes, path);
  let model: Sequential;
  try {
    model = loadModel(bytes, { expect: Sequential, backend });
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
  const found = nonFinite(model.stateDict());
  if (found !== null) {
    model.dispose();
    throw new CliError(
      `${path}: the model's weights are not finite (${found}): the run that wrote it ` +
        "diverged; train again with a lower --lr, or resume from an earlier checkpoint",
    );
  }
  return taskModel(model, spec, task);
}

/** Reads the model file at `path` (see {@linkcode readTaskModel}). */
export async function loadTaskModel(path: string, backend: BackendName): Promise<TaskModel> {
  return readTaskModel(await readInput(path, "model"), path, backend);
}

/** The flags of the commands that run a model (`sample`, `predict`, `explain`). */
export const MODEL_FLAGS: Record<string, FlagSpec> = stringFlags("model", "backend");

/** The help lines of {@linkcode MODEL_FLAGS}. */
export const MODEL_FLAGS_HELP: string =
  `  --model FILE       a model written by train (or saveModel's Sequential with a vocabulary)
  --backend B        ${BACKEND_CHOICES}; default auto
`;

/** The model that `--model` names, on `--backend`. */
export function openModel(values: Record<string, unknown>): Promise<TaskModel> {
  return loadTaskModel(stringFlag(values, "model"), backendFlag(values));
}

/** The file of `model` with `task` as its metadata and `extra` tensors (the optimizer's). */
export function encodeTaskModel(
  model: Sequential,
  task: TaskMetadata,
  extra: Record<string, Tensor> = {},
): Uint8Array {
  // TaskMetadata is JSON (saveModel checks it); its readonly option arrays are not typed as such.
  return saveModel(model, { metadata: task as unknown as ModelMetadata, tensors: extra });
}

/**
 * Logits `(B, T, V)` for token ids `(B, T)`, and the recurrent state after the last step (no
 * `state` for a GRU); `init` continues from a state, so a text is generated a token at a time.
 */
export async function forwardFrom(
  network: TaskModel,
  ids: number[][],
  init?: RecurrentInit,
): Promise<{ logits: TrackedTensor; hidden: Tensor; state?: Tensor }> {
  const embedded = await network.embedding.forward(ids);
  const rnn: RecurrentLayer = network.rnn;
  const { output, hidden, state } = await rnn.forward(embedded, init);
  return { logits: await network.head.forward(output), hidden, state };
}

/** The first value of `tensors` that is NaN or infinite, as `NaN in name[i]`; `null` if none. */
export function nonFinite(tensors: Record<string, Tensor>): string | null {
  for (const [name, t] of Object.entries(tensors)) {
    const at = t.data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) return `${t.data[at]} in ${name}[${at}]`;
  }
  return null;
}
